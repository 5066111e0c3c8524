"""lineage and the trajectory screen

A training may start from its parent candidate's trained policy (``trainings.warm_start_from_id``, with the task's
``continue_from_parent`` option as it was: ``trainings.continue_from_parent``); a candidate records the PPO steps of
its own policy and of its ancestors' (``candidates.steps_own``, ``candidates.steps_ancestors``) and the trajectory
screen's verdict on its reward (``candidates.screen``). Rows recorded before have none of these (NULL).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


CANDIDATE_COLUMNS = (
    lambda: sa.Column('screen', sa.JSON(), nullable=True),
    lambda: sa.Column('steps_own', sa.Integer(), nullable=True),
    lambda: sa.Column('steps_ancestors', sa.Integer(), nullable=True),
)


def upgrade() -> None:
    with op.batch_alter_table('trainings') as batch:
        batch.add_column(sa.Column('warm_start_from_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('continue_from_parent', sa.Boolean(), nullable=True))
        batch.create_foreign_key(
            'fk_trainings_warm_start_from_id', 'trainings', ['warm_start_from_id'], ['id'], ondelete='SET NULL'
        )
    # Plain ADD COLUMN: on SQLite a batch would copy the table and drop the old one, and dropping it deletes the
    # trainings and feedback that refer to its rows (ON DELETE CASCADE).
    for column in CANDIDATE_COLUMNS:
        op.add_column('candidates', column())


def downgrade() -> None:
    for column in reversed(CANDIDATE_COLUMNS):
        name = column().name
        if op.get_bind().dialect.name == 'sqlite':  # SQLite 3.35+ drops a plain column in place (see upgrade)
            op.execute(f'ALTER TABLE candidates DROP COLUMN {name}')
        else:
            op.drop_column('candidates', name)
    with op.batch_alter_table('trainings') as batch:
        batch.drop_constraint('fk_trainings_warm_start_from_id', type_='foreignkey')
        batch.drop_column('continue_from_parent')
        batch.drop_column('warm_start_from_id')
