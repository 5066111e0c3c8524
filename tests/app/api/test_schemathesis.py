"""Property-based tests of the whole REST API from its OpenAPI document: whatever schemathesis sends (valid and
invalid input, with and without a valid token), the API never answers with a server error, and its answers
match the document (status codes, content types, bodies).

Each operation runs on SQLite and on PostgreSQL, against an app whose database holds a user and a run with
candidates and a training (so small generated ids find rows); POST /tasks goes to a dispatcher that only records.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "rewardsmith-hypothesis")  # not .hypothesis/ in the repository

import schemathesis  # noqa: E402
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from tests.app.api.harness import API, Api, RecordingDispatcher, make_api, seed_finished_run  # noqa: E402

APP = create_app(
    Settings(_env_file=None, data_dir=Path("/nonexistent/rewardsmith")),
    dispatcher=RecordingDispatcher(),
    broker_check=lambda: "ok",
)
"""One app for the whole module (schemathesis sends its probes to the app it loaded the document from); each test
points its state at that test's database and settings."""
schema = schemathesis.openapi.from_asgi(f"{API}/openapi.json", APP)
TOKEN: list[str] = []


@schema.auth(refresh_interval=None)
class BearerToken:
    """Schemathesis sends this test's token, and also tries requests without it and with a wrong one."""

    def get(self, case, ctx) -> str:
        return TOKEN[-1] if TOKEN else "rs_no-user-yet"

    def set(self, case, data: str, ctx) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def seeded_api(db_sf: sessionmaker, tmp_path: Path) -> Api:
    api = make_api(db_sf, tmp_path, task_rate_per_minute=10_000)
    api.user("alice")
    seed_finished_run(api, owner="alice", status="running")
    APP.state.sf, APP.state.settings, APP.state.dispatcher = api.sf, api.settings, api.dispatcher
    TOKEN.append(api.tokens["alice"])
    return api


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@pytest.mark.slow
def test_the_api_keeps_to_its_document_and_never_fails(case, seeded_api: Api) -> None:
    # Two checks are left out. Starlette answers 405 with the methods of the first route that matches the path only
    # (GET and POST /tasks are two routes), so the Allow header cannot list both. And a task that fits the document
    # may still be refused with a 422 the document cannot express: the budget cap on iterations × samples ×
    # timesteps, the per-training limit from the settings, a fitness text that is neither a metric nor a program.
    case.call_and_validate(excluded_checks=[allow_header_conformance, positive_data_acceptance])
