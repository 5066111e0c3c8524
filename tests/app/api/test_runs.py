"""GET /runs/{id}, POST cancel and resume (409 where the state machine forbids), GET /runs/{id}/candidates."""

from __future__ import annotations

import pytest

from app.db import session_scope
from app.db.models import Run
from app.search.records.run_json import run_dict
from tests.app.api.harness import API, Api, run_row, seed_finished_run
from tests.app.dashboard.harness import log_in
from tests.support.tasks import TINY


def new_run(api: Api, headers: dict) -> int:
    r = api.client.post(f"{API}/tasks", headers=headers, json=TINY)
    assert r.status_code == 201, r.text
    return r.json()["run_id"]


def test_a_new_run_is_queued_with_empty_progress(api: Api) -> None:
    alice = api.user("alice")
    run_id = new_run(api, alice)
    r = api.client.get(f"{API}/runs/{run_id}", headers=alice)
    assert r.status_code == 200
    run = r.json()
    assert (run["status"], run["phase"]) == ("queued", "search")
    assert (run["best_candidate_id"], run["best_fitness"]) == (None, None)
    assert run["progress"] == {
        "iteration": 0,
        "iterations": 1,
        "candidates": {},
        "trainings_done": 0,
        "trainings_total": 1,  # what the run will do, known before it starts
        "timesteps_trained": 0,
        "timesteps_total": 2048,
        "elapsed_seconds": None,
        "eta_seconds": 2048 / api.settings.train_steps_per_second,
        "rate": api.settings.train_steps_per_second,
        "rate_source": "REWARDSMITH_TRAIN_STEPS_PER_SECOND",
        "tokens": None,  # an offline designer: no LLM
        "cost": None,
    }
    assert run["usage"] == {} and run["designer"].startswith("offline")


def test_a_finished_run_reports_best_candidate_progress_and_usage(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    run = api.client.get(f"{API}/runs/{seeded.run_id}", headers=alice).json()
    assert run["status"] == "succeeded" and run["finished_at"] is not None
    assert (run["best_candidate_id"], run["best_fitness"]) == (seeded.candidate_id, 12.5)
    assert run["progress"]["candidates"] == {"trained": 1, "rejected": 1}
    assert (run["progress"]["trainings_done"], run["progress"]["trainings_total"]) == (1, 1)
    assert run["progress"]["timesteps_trained"] == 2048
    assert run["usage"]["total_tokens"] == 1100 and run["usage"]["requests"] == 2


def test_run_candidates_lists_every_candidate_in_creation_order(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    r = api.client.get(f"{API}/runs/{seeded.run_id}/candidates", headers=alice)
    assert r.status_code == 200
    assert [(c["id"], c["status"], c["iteration"]) for c in r.json()] == [
        (seeded.candidate_id, "trained", 1),
        (seeded.rejected_id, "rejected", 1),
    ]
    assert r.json()[1]["error"].startswith("the program does not parse")


def test_cancel_then_resume_changes_the_stored_status_and_resumes_the_run(api: Api) -> None:
    alice = api.user("alice")
    run_id = new_run(api, alice)
    r = api.client.post(f"{API}/runs/{run_id}/cancel", headers=alice)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["finished_at"] is not None
    assert run_row(api, run_id).status == "cancelled"

    r = api.client.post(f"{API}/runs/{run_id}/resume", headers=alice)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "running" and r.json()["finished_at"] is None
    assert run_row(api, run_id).status == "running"
    assert api.dispatcher.calls[-1] == ("resume", run_id)


@pytest.mark.parametrize(
    ("status", "action", "words"),
    [
        ("queued", "resume", "is queued"),
        ("cancelled", "cancel", "from 'cancelled' to 'cancelled'"),
        ("running", "resume", "from 'running' to 'running'"),
        ("succeeded", "cancel", "from 'succeeded' it can go to: running"),
        ("succeeded", "resume", "continue it for more iterations"),
    ],
)
def test_illegal_transitions_are_409_and_change_nothing(api: Api, status: str, action: str, words: str) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice", status=status)
    before = list(api.dispatcher.calls)
    r = api.client.post(f"{API}/runs/{seeded.run_id}/{action}", headers=alice)
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "conflict" and words in r.json()["error"]["message"]
    assert run_row(api, seeded.run_id).status == status
    assert api.dispatcher.calls == before


def test_unknown_runs_are_404(api: Api) -> None:
    alice = api.user("alice")
    for method, path in (
        ("GET", "/runs/4242"),
        ("POST", "/runs/4242/cancel"),
        ("POST", "/runs/4242/resume"),
        ("GET", "/runs/4242/candidates"),
        ("GET", f"/runs/{2**70}"),
        ("GET", "/runs/0"),
    ):
        r = api.client.request(method, f"{API}{path}", headers=alice)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "not_found"


def test_the_api_run_json_and_the_pages_number_the_first_iteration_1(api: Api) -> None:
    """One convention everywhere: the API said 0 where the page said 1."""
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    c = api.client.get(f"{API}/candidates/{seeded.candidate_id}", headers=alice).json()
    with session_scope(api.sf) as s:
        doc = run_dict(s, s.get(Run, seeded.run_id))
    assert c["iteration"] == 1 and doc["iterations"][0]["iteration"] == 1
    assert doc["best_candidate"]["iteration"] == 1 and "index" not in doc["iterations"][0]
    page = log_in(api, "alice").client.get(f"/candidates/{seeded.candidate_id}").text
    assert f"(iteration {c['iteration']}," in page
