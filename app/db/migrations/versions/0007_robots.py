"""users' robots

A user robot (an uploaded MJCF that a sandboxed compile accepted) is stored with its files, so
that a worker on any host can register it: ``robots`` holds its name, owner, sharing, settings,
the compile's description, a content hash and a rendered picture; ``robot_files`` its files.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01 09:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('robots',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=48), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('shared', sa.Boolean(), nullable=False),
    sa.Column('root_file', sa.String(length=200), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('description', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('picture', sa.LargeBinary(), nullable=True),
    sa.Column('picture_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    with op.batch_alter_table('robots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_robots_owner_id'), ['owner_id'], unique=False)
    op.create_table('robot_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('robot_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['robot_id'], ['robots.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('robot_id', 'path', name='uq_robot_file_path')
    )
    with op.batch_alter_table('robot_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_robot_files_robot_id'), ['robot_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('robot_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_robot_files_robot_id'))
    op.drop_table('robot_files')
    with op.batch_alter_table('robots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_robots_owner_id'))
    op.drop_table('robots')
