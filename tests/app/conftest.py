"""Fixtures of the API and dashboard tests (each test that takes ``api`` runs on SQLite and on PostgreSQL)."""

from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from tests.app.api.harness import Api, make_api


@pytest.fixture
def api(db_sf: sessionmaker, tmp_path: Path) -> Api:
    """The app on this test's database: SQLite, then PostgreSQL (rolled back after the test)."""
    return make_api(db_sf, tmp_path)
