"""run diagnostics

Whether a run's search could tell its candidates apart and learned anything at all
(``app.search.run_diagnostics``): a JSON document on the run, ``{"items": [...]}``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 08:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('diagnostics', sa.JSON(), server_default='{}', nullable=False))
    with op.batch_alter_table('runs') as batch:  # existing rows got '{}'; new rows get theirs from the model
        batch.alter_column('diagnostics', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('diagnostics')
