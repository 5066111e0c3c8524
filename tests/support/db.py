"""Real databases for tests: a migrated SQLite file per test, and a throw-away PostgreSQL database per session
whose tests each run inside a transaction that is rolled back."""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.db import make_engine
from app.db.migrate import upgrade

PG_ADMIN_URL = os.environ.get("REWARDSMITH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REWARDSMITH_TEST_REDIS", "redis://127.0.0.1:6379")


@contextmanager
def fresh_postgres_database(prefix: str = "rs_test") -> Iterator[str]:
    """Create an empty PostgreSQL database, migrate it, yield its URL, drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_TEMPLATE: list[Path] = []
"""A SQLite file migrated once per test process; each test gets a copy of it (the migrations' own tests migrate
for real)."""


def sqlite_database(directory: Path) -> str:
    """A migrated SQLite file ``rewardsmith.sqlite3`` in ``directory``: a byte copy of one migrated per process, as
    migrating takes ~0.2 s and hundreds of tests want a fresh database."""
    if not _TEMPLATE:
        home = tempfile.mkdtemp(prefix="rs_sqlite_template_")
        atexit.register(shutil.rmtree, home, True)
        template = Path(home) / "template.sqlite3"
        upgrade(f"sqlite:///{template}")
        with sqlite3.connect(template) as conn:  # everything in the main file, nothing in a journal beside it
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _TEMPLATE.append(template)
    path = directory / "rewardsmith.sqlite3"
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE[0], path)
    return f"sqlite:///{path}"


@contextmanager
def committing_database(kind: str, directory: Path, connections: int = 5) -> Iterator[sessionmaker]:
    """Sessions on a database of the caller's own whose transactions commit for real (``kind``: "postgres", a fresh
    database dropped after, or "sqlite", a file in ``directory``): for tests of concurrent transactions, which the
    rolled-back ``pg_sf`` (one connection) cannot hold."""
    if kind == "postgres":
        with fresh_postgres_database("rs_commit") as url:
            engine = make_engine(url, pool_size=connections, max_overflow=5)
            try:
                yield sessionmaker(bind=engine, expire_on_commit=False)
            finally:
                engine.dispose()
    else:
        engine = make_engine(sqlite_database(directory))
        try:
            yield sessionmaker(bind=engine, expire_on_commit=False)
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def pg_sf(pg_url: str) -> Iterator[sessionmaker]:
    """Sessions on PostgreSQL inside one outer transaction that is rolled back after the test."""
    engine = make_engine(pg_url)
    conn = engine.connect()
    outer = conn.begin()
    yield sessionmaker(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    outer.rollback()
    conn.close()
    engine.dispose()


@pytest.fixture
def sqlite_sf(tmp_path: Path) -> sessionmaker:
    """Sessions on a migrated SQLite file of this test's own."""
    return sessionmaker(bind=make_engine(sqlite_database(tmp_path)), expire_on_commit=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_sf(request: pytest.FixtureRequest) -> sessionmaker:
    """Each test that uses it runs on SQLite and on PostgreSQL."""
    return request.getfixturevalue("sqlite_sf" if request.param == "sqlite" else "pg_sf")


def make_settings(tmp_path: Path, **overrides) -> Settings:
    """Settings for a test: its own data directory, no .env file, small limits."""
    values = {
        "data_dir": tmp_path / "data",
        "sandbox_wall_seconds": 300.0,
        "llm_backoff_seconds": 0.05,
        "llm_timeout_seconds": 5.0,
        "llm_max_retries": 3,
        **overrides,
    }
    return Settings(_env_file=None, **values)
