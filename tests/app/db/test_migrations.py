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
