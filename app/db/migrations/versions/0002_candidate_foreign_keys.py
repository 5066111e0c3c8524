"""foreign keys to candidates that 0001 left out on PostgreSQL

runs.best_candidate_id and iterations.parent_id point at candidates, a table created
after theirs, so the models mark these keys use_alter. op.create_table leaves such keys
out of CREATE TABLE and nothing added them afterwards, so on PostgreSQL they never
existed (SQLite writes them inline, so there they do).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 20:10:00
"""

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

KEYS = (("fk_runs_best_candidate_id_candidates", "runs", "best_candidate_id"),
        ("fk_iterations_parent_id_candidates", "iterations", "parent_id"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for name, table, column in KEYS:
        op.create_foreign_key(name, table, "candidates", [column], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for name, table, _ in KEYS:
        op.drop_constraint(name, table, type_="foreignkey")
