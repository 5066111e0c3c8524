"""selection choices: "none of these is right"

A person watching a group of candidates may say that none of them does what was asked, with a
sentence: ``selection_choices.none_right`` marks such a choice (no pairwise outcome is drawn from it).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('selection_choices') as batch:
        batch.add_column(sa.Column('none_right', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('selection_choices') as batch:
        batch.drop_column('none_right')
