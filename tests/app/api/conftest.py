"""Fixtures of the REST API tests (each test that takes ``api`` runs on SQLite and on PostgreSQL)."""

from tests.app.api.harness import api  # noqa: F401
from tests.support.db import db_sf, pg_sf, pg_url, sqlite_sf  # noqa: F401
