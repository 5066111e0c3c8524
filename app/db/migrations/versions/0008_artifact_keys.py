"""artifact keys instead of host paths

A training's files are found by a key in the artifact store (``run-R/candidate-C/training-T/attempt-K``),
the same on every host and every backend, instead of a path on the host that wrote them:
``trainings.artifacts_dir`` becomes ``trainings.artifacts_key``, and ``trainings.stored_files`` records
what was stored there (name → size). Existing paths become keys relative to the data dir's artifacts
root (the part from ``run-R/`` on), so runs recorded before keep their files; a path that does not end
that way (none that rewardsmith wrote) is cleared, and said so.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 17:00:00
"""

import logging
import re
from collections.abc import Callable

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
KEY = re.compile(r"(?:^|/)(run-\d+/candidate-\d+/training-\d+(?:/attempt-\d+)?)/*$")


def _rewrite(column: str, convert: Callable[[int, str], str | None]) -> None:
    trainings = sa.table('trainings', sa.column('id', sa.Integer), sa.column(column, sa.Text))
    conn = op.get_bind()
    rows = conn.execute(sa.select(trainings.c.id, trainings.c[column]).where(trainings.c[column].isnot(None))).all()
    for id_, value in rows:
        conn.execute(trainings.update().where(trainings.c.id == id_).values({column: convert(id_, value)}))


def _key(training_id: int, path: str) -> str | None:
    found = KEY.search(path.replace("\\", "/"))
    if found is None:
        log.warning("training %s: its artifacts path %r is not under an artifacts root; its files are not linked",
                    training_id, path[:300])
        return None
    return found.group(1)


def upgrade() -> None:
    with op.batch_alter_table('trainings') as batch:
        batch.alter_column('artifacts_dir', new_column_name='artifacts_key', existing_type=sa.Text())
        batch.add_column(sa.Column('stored_files', sa.JSON(), nullable=True))
    _rewrite('artifacts_key', _key)


def downgrade() -> None:
    from app.config import get_settings  # the host paths the older code reads are under this data dir

    root = get_settings().data_dir / "artifacts"
    _rewrite('artifacts_key', lambda _, key: str(root / key))
    with op.batch_alter_table('trainings') as batch:
        batch.drop_column('stored_files')
        batch.alter_column('artifacts_key', new_column_name='artifacts_dir', existing_type=sa.Text())
