"""A finished run is not a dead end: it is continued for more iterations, the feedback given after it ended going
into the next prompt, or a new run starts from its best program; feedback never promises what will not happen."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import Candidate, Feedback, Run, Task
from app.search.service import add_feedback, continue_run
from tests.app.api.harness import API, Api, seed_finished_run
from tests.app.dashboard.harness import log_in
from tests.app.search.harness import Search, design_requests, task_spec, user_prompt
from tests.support.fake_openai import FakeOpenAI
from tests.support.fixtures import load_fixture


def test_continuing_a_succeeded_run_adds_iterations_and_schedules_it(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    r = api.client.post(f"{API}/runs/{seeded.run_id}/resume", headers=alice)
    assert r.status_code == 409 and "continue it for more iterations" in r.json()["error"]["message"]
    r = api.client.post(f"{API}/runs/{seeded.run_id}/continue", headers=alice, json={"iterations": 2})
    assert r.status_code == 200, r.text
    run = r.json()
    assert (run["status"], run["phase"], run["progress"]["iterations"], run["final"]) == ("running", "search", 3, {})
    assert ("resume", seeded.run_id) in api.dispatcher.calls
    r = api.client.post(f"{API}/runs/{seeded.run_id}/continue", headers=alice, json={"iterations": 1})
    assert r.status_code == 409 and "only a run that succeeded" in r.json()["error"]["message"]


@pytest.mark.parametrize("iterations, words", [(0, "greater than or equal to 1"), (50, "iterations must be from 1")])
def test_continuing_is_bounded(api: Api, iterations: int, words: str) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    r = api.client.post(f"{API}/runs/{seeded.run_id}/continue", headers=alice, json={"iterations": iterations})
    assert r.status_code == 422 and words in r.text
    with session_scope(api.sf) as s:
        assert s.get(Run, seeded.run_id).status == "succeeded"


def test_a_new_run_from_a_finished_one_starts_from_its_best_with_edited_settings(api: Api) -> None:
    alice = api.user("alice")
    api.user("bob")
    seeded = seed_finished_run(api, owner="alice")
    body = {"iterations": 2, "timesteps": 4096, "description": "run forward, faster"}
    r = api.client.post(f"{API}/runs/{seeded.run_id}/new-run", headers=alice, json=body)
    assert r.status_code == 201, r.text
    task = r.json()
    assert (task["iterations"], task["timesteps"], task["description"]) == (2, 4096, "run forward, faster")
    assert task["options"]["start_from"] == seeded.candidate_id and task["run_id"] != seeded.run_id
    assert task["options"]["final_seeds"] == 0  # the rest as it was
    bob = {"Authorization": f"Bearer {api.tokens['bob']}"}
    r = api.client.post(
        f"{API}/tasks", headers=bob, json={**task_body(), "options": {"start_from": seeded.candidate_id}}
    )
    assert r.status_code == 422 and "is not one of yours" in r.text


def task_body() -> dict:
    from tests.support.tasks import TINY

    return dict(TINY)


def test_the_dashboard_continues_a_finished_run_and_feedback_says_what_will_happen(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    browser = log_in(api, "alice")
    r = browser.post(f"/candidates/{seeded.candidate_id}/feedback", {"text": "keep the torso level"})
    page = browser.client.get(r.headers["location"]).text
    assert "the next iteration&#x27;s prompt will carry your feedback" not in page
    assert "this run has ended (succeeded), so no iteration will read it yet" in page
    run_page = browser.client.get(f"/runs/{seeded.run_id}").text
    assert "Continue this run" in run_page and "2 note(s) waiting" in run_page  # the seeded note and this one
    live = browser.htmx("POST", f"/ui/runs/{seeded.run_id}/continue", data={"iterations": "1"}).text
    assert "running" in live
    with session_scope(api.sf) as s:
        run = s.get(Run, seeded.run_id)
        assert (run.status, s.get(Task, run.task_id).iterations) == ("running", 2)
    r = browser.htmx("POST", f"/ui/runs/{seeded.run_id}/new-run", data={"samples": "2"})
    assert r.status_code == 204 and r.headers["HX-Redirect"].startswith("/runs/")


@pytest.mark.slow
def test_a_continued_run_carries_the_feedback_given_after_it_ended(sqlite_sf: sessionmaker, tmp_path) -> None:
    with FakeOpenAI() as server:
        server.script([load_fixture("cheetah_forward")])
        search = Search(sqlite_sf, tmp_path, server)
        run_id, status = search.run(task_spec(iterations=1))
        assert status == "succeeded"
        [c] = search.candidates(run_id)
        local = search.attach(run_id)
        with session_scope(search.sf) as s:
            fb = add_feedback(
                s, candidate=s.get(Candidate, c["id"]), text="stride with both legs", rating=2, user_id=None
            )
            fb_id = fb.id
            continue_run(
                s, run=s.get(Run, run_id), iterations=1, settings=search.settings(), dispatcher=local.dispatcher
            )
        server.script([load_fixture("cheetah_forward_v2")])
        assert search.settle(local) == "succeeded"
    second = user_prompt(design_requests(server)[-1])
    assert "On candidate 1.1 (rating 2/5): stride with both legs" in second
    with session_scope(search.sf) as s:
        assert s.get(Feedback, fb_id).used_in_iteration == 1
        run = s.get(Run, run_id)
        assert [it.index for it in run.iterations] == [0, 1] and run.final["best_candidate_id"] is not None
