"""The SQLite database (every user's tasks and the hashes of their tokens) and the embedded broker's file are
created readable by their owner only, with their -wal and -shm files, whatever the umask allows; an existing file
that others may read is tightened when the service opens it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import text

from app.db import make_engine
from app.db.migrate import upgrade
from app.jobs.celery_app import broker_reachable, configure
from tests.support.db import make_settings


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that lets everyone read what is created (0644 files), as on many machines."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_wal_and_shm_are_0600(tmp_path: Path, permissive_umask: None) -> None:
    db = tmp_path / "rewardsmith.sqlite3"
    url = f"sqlite:///{db}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:  # an open connection in WAL mode keeps -wal and -shm
        conn.execute(text("INSERT INTO users (name, is_admin, created_at) VALUES ('a', 0, '2026-01-01')"))
        conn.commit()
        files = [db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(p.exists() for p in files)
        assert {p.name: oct(mode(p)) for p in files} == {p.name: "0o600" for p in files}
    engine.dispose()


def test_an_existing_readable_database_is_tightened(tmp_path: Path, permissive_umask: None) -> None:
    db = tmp_path / "rewardsmith.sqlite3"
    upgrade(f"sqlite:///{db}")
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db}{suffix}")
        path.touch()
        path.chmod(0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert [oct(mode(Path(f"{db}{s}"))) for s in ("", "-wal", "-shm")] == ["0o600"] * 3


def test_the_embedded_brokers_file_is_0600(tmp_path: Path, permissive_umask: None) -> None:
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    probe = configure(Celery("probe"), settings)
    assert broker_reachable(timeout=5.0, app=probe) == "ok"
    assert oct(mode(settings.data_dir / "broker.sqlite3")) == "0o600"
