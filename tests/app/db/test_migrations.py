"""The Alembic migrations build the schema the models describe, on an empty SQLite file and an empty PostgreSQL
database, and can be undone and redone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from app.db.migrate import alembic_config, upgrade
from app.db.models import Base
from tests.support.db import fresh_postgres_database

TABLES = {
    "users",
    "api_tokens",
    "dashboard_sessions",
    "tasks",
    "runs",
    "iterations",
    "candidates",
    "trainings",
    "feedback",
    "llm_exchanges",
    "llm_cache",
    "fitness_proposals",
    "selection_choices",
    "robots",
    "robot_files",
    "webhooks",
    "webhook_deliveries",
    "alembic_version",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with the schema applied by ``upgrade`` (the PostgreSQL one is created empty, then upgraded)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'new' / 'rewardsmith.sqlite3'}"  # the directory does not exist yet either
        upgrade(url)
        yield url
    else:
        with fresh_postgres_database("rs_migrations") as url:
            yield url


def test_upgrade_builds_every_table_at_the_head_revision(empty_url: str) -> None:
    engine = create_engine(empty_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT version_num FROM alembic_version")) == head
        upgrade(empty_url)  # running it again (every start does) changes nothing
        assert set(inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_the_models_and_the_migrations_agree(empty_url: str) -> None:
    """What `alembic check` does: autogenerate against the migrated database finds nothing to add or change."""
    engine = create_engine(empty_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"the models differ from the migrations; write a migration for: {diff}"
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(empty_url: str) -> None:
    cfg = alembic_config(empty_url)
    command.downgrade(cfg, "base")
    engine = create_engine(empty_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        upgrade(empty_url)
        assert set(inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_0008_turns_host_paths_into_artifact_keys_and_back(empty_url: str, tmp_path: Path) -> None:
    """Trainings recorded with a host path (before 0008) keep their files: the path becomes the key relative to the
    artifacts root, whatever the data dir was; a path that is not under an artifacts root is cleared. Downgrading
    writes host paths under this process's data dir again."""
    from sqlalchemy.orm import sessionmaker

    from app.db import session_scope
    from app.db.models import Candidate, Training
    from app.search.service import create_task
    from tests.support.db import make_settings
    from tests.support.dispatch import RecordingDispatcher
    from tests.support.tasks import tiny_spec

    engine = create_engine(empty_url)
    try:
        with session_scope(sessionmaker(bind=engine)) as s:
            _, run = create_task(
                s, spec=tiny_spec(), owner_id=None, settings=make_settings(tmp_path), dispatcher=RecordingDispatcher()
            )
            c = Candidate(run_id=run.id, index=0, origin="offline", code="x", status="trained")
            s.add(c)
            s.flush()
            rows = [Training(candidate_id=c.id, run_id=run.id, purpose="full", timesteps=2048) for _ in range(4)]
            s.add_all(rows)
            s.flush()
            ids = [t.id for t in rows]
        command.downgrade(alembic_config(empty_url), "0005")
        paths = {
            ids[0]: f"/srv/old-data/artifacts/run-1/candidate-1/training-{ids[0]}/attempt-2",
            ids[1]: f"relative/data/artifacts/run-1/candidate-1/training-{ids[1]}/",  # before attempts were numbered
            ids[2]: "/somewhere/else/entirely",
            ids[3]: None,
        }
        with engine.begin() as conn:
            for id_, path in paths.items():
                conn.execute(text("UPDATE trainings SET artifacts_dir = :p WHERE id = :i"), {"p": path, "i": id_})
        upgrade(empty_url)
        with engine.connect() as conn:
            got = dict(conn.execute(text("SELECT id, artifacts_key FROM trainings")).all())
            assert conn.scalar(text("SELECT count(*) FROM trainings WHERE stored_files IS NOT NULL")) == 0
        assert got == {
            ids[0]: f"run-1/candidate-1/training-{ids[0]}/attempt-2",
            ids[1]: f"run-1/candidate-1/training-{ids[1]}",
            ids[2]: None,
            ids[3]: None,
        }
        command.downgrade(alembic_config(empty_url), "0005")
        with engine.connect() as conn:
            back = dict(conn.execute(text("SELECT id, artifacts_dir FROM trainings")).all())
        assert back[ids[0]].endswith(f"/artifacts/run-1/candidate-1/training-{ids[0]}/attempt-2")
        assert Path(back[ids[0]]).is_absolute() and back[ids[2]] is None
        upgrade(empty_url)
    finally:
        engine.dispose()
