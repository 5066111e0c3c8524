"""Database engine, sessions, and work that must wait for a commit."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache, partial
from typing import Any

from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

log = logging.getLogger(__name__)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout so threads and processes can share it.

    JSON columns are written as strict JSON: a NaN or infinity is refused where it is stored, rather than kept as a
    bare ``NaN`` that PostgreSQL rejects and other readers cannot parse.
    """
    kwargs.setdefault("json_serializer", partial(json.dumps, allow_nan=False))
    if url.startswith("sqlite"):
        private_sqlite(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _record: Any) -> None:  # pragma: no cover - trivial
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def private_sqlite(url: str) -> None:
    """Create the SQLite database file of ``url`` readable by its owner only (0600), and take group and other
    permissions off an existing one and its -wal, -shm and -journal files: the database holds every user's tasks
    and the hashes of their tokens. SQLite creates -wal and -shm with the database file's permissions."""
    database = make_url(url.removeprefix("sqla+")).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    try:
        os.close(os.open(database, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError:  # no such directory, or not ours: SQLite reports it when it connects
        return
    for path in (database, f"{database}-wal", f"{database}-shm", f"{database}-journal"):
        try:
            mode = os.stat(path).st_mode
            if mode & 0o077:
                os.chmod(path, mode & 0o700)
        except OSError:
            continue


@lru_cache
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=make_engine(url), expire_on_commit=False)


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    """The session factory for ``url`` (default: the configured database)."""
    if url is None:
        from app.config import get_settings

        url = get_settings().resolved_database_url
    return _factory(url)


@contextmanager
def session_scope(factory: sessionmaker[Session] | None = None) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error; after-commit work runs after."""
    session = (factory or session_factory())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Run ``fn`` once the current transaction commits (e.g. enqueue a task that reads new rows); dropped on rollback."""
    session.info.setdefault("after_commit", []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    """The rows are committed whatever happens here; a failed enqueue is logged and the sweep picks the work up."""
    pending = session.info.pop("after_commit", [])
    for fn in pending:
        try:
            fn()
        except Exception:
            log.exception("work scheduled after a commit could not be started; the periodic sweep will retry it")


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop("after_commit", None)
