"""A run says how far it has come, honestly: trainings and steps done out of what it will do (known from the start,
not growing as iterations begin), time elapsed, an ETA from a measured rate, and its LLM tokens and cost; the same
figures on the API, in run.json and on the run page."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from app.db import session_scope
from app.db.models import Candidate, LLMExchange, Run, Task, Training, utcnow
from app.search.records.progress import duration, run_progress
from app.search.records.run_json import run_dict
from tests.app.api.harness import API, Api, seed_finished_run
from tests.app.dashboard.harness import log_in
from tests.support.tasks import TINY


def test_the_trainings_total_is_what_the_run_will_do_from_the_start(api: Api) -> None:
    """3 iterations × 2 samples, with successive halving (2 screenings + 1 continued) and 2 final seeds of the best
    alone: 3 × 3 + 2 = 11 trainings, said before the first iteration starts (it used to read 0, then 2/6...)."""
    alice = api.user("alice")
    body = TINY | {"iterations": 3, "samples": 2}
    body["options"] = TINY["options"] | {"successive_halving": True, "final_seeds": 2}
    r = api.client.post(f"{API}/tasks", headers=alice, json=body)
    assert r.status_code == 201, r.text
    run = api.client.get(f"{API}/runs/{r.json()['run_id']}", headers=alice).json()
    assert (run["progress"]["trainings_done"], run["progress"]["trainings_total"]) == (0, 11)
    screen = 1000  # the shortest screening there is (MIN_TIMESTEPS); the continued one adds the rest of 2,048
    assert run["progress"]["timesteps_total"] == 3 * (2 * screen + (2048 - screen)) + 2 * 2048


def test_a_running_run_has_its_elapsed_time_an_eta_from_its_own_rate_and_its_tokens(api: Api) -> None:
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    with session_scope(api.sf) as s:
        run = s.get(Run, seeded.run_id)
        task = s.get(Task, run.task_id)
        task.iterations, task.designer = 2, "llm"  # one more iteration of one 2,048-step training to come
        run.status, run.phase, run.finished_at = "running", "search", None
        run.started_at = utcnow() - timedelta(seconds=100)
        c = s.get(Candidate, seeded.candidate_id)
        second = Training(
            candidate_id=c.id, run_id=run.id, purpose="full", timesteps=2048, seed=1, status="running", attempts=1,
            result={"progress": {"timesteps": 512, "total": 2048}},
        )  # fmt: skip
        s.add(second)
        s.add(
            LLMExchange(
                run_id=run.id, purpose="design", status="ok", prompt_tokens=700, completion_tokens=300, cost=0.25
            )
        )
    with session_scope(api.sf) as s:
        p = run_progress(s, s.get(Run, seeded.run_id), api.settings)
    assert (p.trainings_done, p.trainings_total) == (1, 2)
    assert (p.timesteps_done, p.timesteps_total) == (2048 + 512, 2 * 2048)
    assert p.elapsed_seconds == pytest.approx(100, abs=5)
    assert p.rate == pytest.approx(2560 / p.elapsed_seconds) and p.rate_source == "this run's own rate so far"
    assert p.eta_seconds == pytest.approx((4096 - 2560) / p.rate)
    assert (p.tokens, p.cost) == (1000, 0.25)

    browser = log_in(api, "alice")
    live = browser.htmx("GET", f"/ui/runs/{seeded.run_id}/live").text
    assert "1/2 trainings (at most)" in live and "2,560/4,096 steps" in live
    # the page is drawn some seconds after the run's start was set 100 s back (more on a loaded machine)
    assert re.search(r"1 min (4\d|5\d) s elapsed", live), live[:2000]
    assert "about 1 min" in live and "left" in live and "1,000 LLM tokens ($0.2500)" in live
    with session_scope(api.sf) as s:
        doc = json.loads(json.dumps(run_dict(s, s.get(Run, seeded.run_id), settings=api.settings)))
    assert doc["progress"]["trainings_total"] == 2 and doc["progress"]["eta_seconds"] > 0


def test_an_ended_run_counts_what_it_did_and_has_no_eta(api: Api) -> None:
    alice = api.user("alice")
    seeded = seed_finished_run(api, owner="alice")
    progress = api.client.get(f"{API}/runs/{seeded.run_id}", headers=alice).json()["progress"]
    assert (progress["trainings_done"], progress["trainings_total"], progress["eta_seconds"]) == (1, 1, None)
    assert progress["timesteps_trained"] == progress["timesteps_total"] == 2048


def test_durations_read_as_a_person_says_them() -> None:
    assert [duration(x) for x in (None, 0.4, 42, 95, 3599, 3600 * 2 + 5 * 60)] == [
        "—", "0 s", "42 s", "1 min 35 s", "59 min 59 s", "2 h 05 min",
    ]  # fmt: skip


def test_the_compute_estimate_says_a_duration_and_counts_seeds_in_words(api: Api) -> None:
    from tests.app.dashboard.harness import TASK_FORM

    api.user("alice")
    browser = log_in(api, "alice")
    r = browser.htmx("GET", "/ui/compute", params={**TASK_FORM, "final_seeds": "1"})
    assert "0.0 hours" not in r.text and "1 final seed " in r.text and "final seeds" not in r.text
    assert "s on one worker slot" in r.text
