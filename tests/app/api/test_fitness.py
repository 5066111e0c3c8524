"""A task whose fitness is 'propose', through the REST API: the proposal (made by the offline designer, checked and
measured in the real sandbox), a person's approval, edit or request for another, and the records of each.

The dispatcher only records what the API schedules; the tests run the steps it asked for themselves (start, then
the proposing step), so every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import pytest

from app.search.machine import steps
from app.search.machine.factory import proposer_factory
from envs.fitness import METRICS
from tests.app.api.harness import API, Api
from tests.app.dashboard.harness import log_in
from tests.support.tasks import TINY
from workers.engine.measure import measure_fitness

BACKWARDS = TINY | {"description": "make the cheetah run backwards", "fitness": "propose"}
JUMP_HIGH = """import numpy as np


def compute_fitness(traj):
    \"\"\"Highest torso height above the starting height, m.\"\"\"
    return float(np.max(traj.z_position) - traj.z_position[0])
"""


def proposed(api: Api, headers: dict, body: dict = BACKWARDS) -> int:
    """Submit ``body``, run the steps the API scheduled (start, then the proposal); the run's id."""
    res = api.client.post(f"{API}/tasks", json=body, headers=headers)
    assert res.status_code == 201, res.text
    run_id = res.json()["run_id"]
    work_off(api, run_id)
    return run_id


def work_off(api: Api, run_id: int) -> None:
    """Run the start and proposing steps the API (or a previous step) scheduled for ``run_id``, in order."""
    done = 0
    while done < len(api.dispatcher.calls):
        step, arg = api.dispatcher.calls[done]
        done += 1
        if arg != run_id:
            continue
        if step == "start":
            steps.start_step(api.sf, run_id, api.dispatcher, api.settings)
        elif step == "propose_fitness":
            steps.propose_step(api.sf, run_id, api.settings, proposer_factory(api.sf, api.settings))


def run_of(api: Api, headers: dict, run_id: int) -> dict:
    res = api.client.get(f"{API}/runs/{run_id}", headers=headers)
    assert res.status_code == 200, res.text
    return res.json()


def test_a_propose_task_waits_with_a_proposal_that_measures_backward_distance(api: Api) -> None:
    alice = api.user("alice")
    run_id = proposed(api, alice)
    run = run_of(api, alice, run_id)
    assert run["status"] == "waiting_fitness" and run["progress"]["iteration"] == 0
    assert [c for c in api.dispatcher.calls if c[0] == "design"] == [], "nothing is designed before the approval"
    p = run["proposed_fitness"]
    assert (p["status"], p["origin"], p["name"]) == ("proposed", "offline", "backward_distance")
    assert p["author"] == "offline designer (no LLM)" and "'backwards'" in p["meaning"]
    assert "def compute_fitness(traj)" in p["source"] and p["decided_by"] is None

    # What a person sees: its values on five random-policy episodes, the same ones the sandbox measured; the
    # distance travelled backwards is exactly minus the forward distance of those episodes.
    m = p["measurement"]
    assert m["episodes"] == 5 and m["steps"] == [100] * 5 and m["varies"] is True
    forward = measure_fitness("HalfCheetah-v5", METRICS["forward_distance"].source, episodes=5, max_steps=100)
    assert m["values"] == pytest.approx([-v for v in forward["values"]], abs=1e-9)
    assert m["mean"] == pytest.approx(sum(m["values"]) / 5)

    # Resuming is not a way around the approval.
    res = api.client.post(f"{API}/runs/{run_id}/resume", headers=alice)
    assert res.status_code == 409 and "approve it, edit it or ask for another" in res.json()["error"]["message"]


def test_approving_the_proposal_makes_it_the_fitness_and_starts_the_search(api: Api) -> None:
    alice = api.user("alice")
    run_id = proposed(api, alice)
    source = run_of(api, alice, run_id)["proposed_fitness"]["source"]
    res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"approve": True}, headers=alice)
    assert res.status_code == 200, res.text
    assert res.json()["status"] == "queued"
    assert api.dispatcher.calls[-1] == ("start", run_id), "started only once the approval was committed"
    work_off(api, run_id)
    assert run_of(api, alice, run_id)["status"] == "running"
    assert api.dispatcher.calls[-1] == ("design", run_id)
    task = api.client.get(f"{API}/tasks/{run_of(api, alice, run_id)['task_id']}", headers=alice).json()
    assert (task["fitness"], task["fitness_source"]) == ("proposed", source)

    [p] = api.client.get(f"{API}/runs/{run_id}/fitness", headers=alice).json()
    assert (p["status"], p["decided_by"]) == ("approved", "alice") and p["decided_at"] >= p["created_at"]
    again = api.client.post(f"{API}/runs/{run_id}/fitness", json={"approve": True}, headers=alice)
    assert again.status_code == 409 and "does not wait for a decision" in again.json()["error"]["message"]


def test_an_edited_program_is_measured_and_shown_before_it_is_approved_and_the_search_starts(api: Api) -> None:
    alice = api.user("alice")
    run_id = proposed(api, alice)
    calls = len(api.dispatcher.calls)
    res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"source": JUMP_HIGH}, headers=alice)
    assert res.status_code == 200, res.text
    # measured on random-policy episodes and shown as the open proposal: the search has not started
    assert res.json()["status"] == "waiting_fitness" and api.dispatcher.calls[calls:] == []
    first, edit = api.client.get(f"{API}/runs/{run_id}/fitness", headers=alice).json()
    assert (first["status"], first["decided_by"]) == ("replaced", "alice")
    assert (edit["status"], edit["origin"], edit["author"], edit["source"]) == (
        "proposed",
        "person",
        "alice",
        JUMP_HIGH,
    )
    assert len(edit["measurement"]["values"]) == 5 and all(v >= 0 for v in edit["measurement"]["values"])
    assert edit["measurement"]["tells_apart"] in ("yes", "no", "cannot tell") and edit["measurement"]["verdict"]
    assert run_of(api, alice, run_id)["proposed_fitness"]["id"] == edit["id"]
    page = log_in(api, "alice").client.get(f"/runs/{run_id}").text
    assert "What it gives on 5 random-policy episodes" in page and 'id="approve-fitness"' in page
    task = api.client.get(f"{API}/tasks/{run_of(api, alice, run_id)['task_id']}", headers=alice).json()
    assert task["fitness_source"] != JUMP_HIGH

    res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"approve": True}, headers=alice)
    assert res.status_code == 200, res.text
    assert res.json()["status"] == "queued" and api.dispatcher.calls[-1] == ("start", run_id)
    assert api.client.get(f"{API}/runs/{run_id}/fitness", headers=alice).json()[1]["status"] == "approved"
    task = api.client.get(f"{API}/tasks/{run_of(api, alice, run_id)['task_id']}", headers=alice).json()
    assert task["fitness_source"] == JUMP_HIGH


BROKEN_EDITS = [
    ("import os\n\ndef compute_fitness(traj):\n    return 0.0\n", "importing `os` is not allowed"),
    ("def compute_fitness(traj):\n    return float(traj.speed[0])\n", "the state has no field 'speed'"),
    ("import numpy as np\n\ndef compute_fitness(traj):\n    return traj.x_velocity\n", "one number per episode"),
    ("def compute_reward(state, action):\n    return 0.0, {}\n", "compute_fitness"),
    ("   ", "the edited fitness program is empty"),
]
"""Static rules, the sandboxed dry run (a missing field, an array instead of a number), the contract's entry point."""


def test_a_broken_edit_is_refused_with_the_checkers_message_and_changes_nothing(api: Api) -> None:
    alice = api.user("alice")
    run_id = proposed(api, alice)
    calls = list(api.dispatcher.calls)
    for source, words in BROKEN_EDITS:
        res = api.client.post(f"{API}/runs/{run_id}/fitness", json={"source": source}, headers=alice)
        assert res.status_code == 422, res.text
        error = res.json()["error"]
        assert error["field"] == "source" and words in error["message"], error
    assert run_of(api, alice, run_id)["status"] == "waiting_fitness" and api.dispatcher.calls == calls
    [p] = api.client.get(f"{API}/runs/{run_id}/fitness", headers=alice).json()
    assert p["status"] == "proposed" and p["decided_by"] is None


def test_asking_for_another_proposal_sets_this_one_aside_and_the_next_reads_the_note(api: Api) -> None:
    alice = api.user("alice")
    run_id = proposed(api, alice)
    res = api.client.post(
        f"{API}/runs/{run_id}/fitness", json={"repropose": True, "note": "I care how high it jumps"}, headers=alice
    )
    assert res.status_code == 200 and res.json()["status"] == "queued", res.text
    work_off(api, run_id)
    first, second = api.client.get(f"{API}/runs/{run_id}/fitness", headers=alice).json()
    assert (first["status"], first["note"], first["decided_by"]) == ("rejected", "I care how high it jumps", "alice")
    assert (second["status"], second["name"]) == ("proposed", "max_height")
    assert run_of(api, alice, run_id)["status"] == "waiting_fitness"


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({}, 422, 'send exactly one of {"approve": true}'),
        ({"approve": True, "repropose": True}, 422, "got approve, repropose"),
        ({"approve": True, "note": "why"}, 422, "a note goes with a request for another proposal"),
        ({"approve": True, "extra": 1}, 422, "extra"),
    ],
)
def test_a_decision_must_be_exactly_one(api: Api, body: dict, status: int, words: str) -> None:
    alice = api.user("alice")
    run_id = api.client.post(f"{API}/tasks", json=BACKWARDS, headers=alice).json()["run_id"]
    res = api.client.post(f"{API}/runs/{run_id}/fitness", json=body, headers=alice)
    assert res.status_code == status and words in res.json()["error"]["message"], res.text


def test_only_a_waiting_run_of_its_owner_takes_a_decision(api: Api) -> None:
    alice, bob = api.user("alice"), api.user("bob")
    plain = api.client.post(f"{API}/tasks", json=TINY, headers=alice).json()["run_id"]
    res = api.client.post(f"{API}/runs/{plain}/fitness", json={"approve": True}, headers=alice)
    assert res.status_code == 409 and "is 'queued'" in res.json()["error"]["message"]
    assert api.client.get(f"{API}/runs/{plain}", headers=alice).json()["proposed_fitness"] is None
    run_id = proposed(api, alice)
    assert api.client.post(f"{API}/runs/{run_id}/fitness", json={"approve": True}, headers=bob).status_code == 404
    assert api.client.get(f"{API}/runs/{run_id}/fitness", headers=bob).status_code == 404
    assert run_of(api, alice, run_id)["status"] == "waiting_fitness"


def test_a_cancelled_proposal_run_resumes_to_the_decision(api: Api) -> None:
    alice = api.user("alice")
    run_id = proposed(api, alice)
    assert api.client.post(f"{API}/runs/{run_id}/cancel", headers=alice).json()["status"] == "cancelled"
    res = api.client.post(f"{API}/runs/{run_id}/resume", headers=alice)
    assert res.status_code == 200 and res.json()["status"] == "waiting_fitness"
    assert res.json()["proposed_fitness"]["status"] == "proposed"


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"selection": "robot"}, "selection", "'fitness'"),
        ({"fitness": "proposal"}, "fitness", "or 'propose' to have one proposed from the description"),
    ],
)
def test_a_task_with_a_bad_selection_or_fitness_is_refused(api: Api, change: dict, field: str, words: str) -> None:
    res = api.client.post(f"{API}/tasks", json=TINY | change, headers=api.user("alice"))
    assert res.status_code == 422 and res.json()["error"]["field"] == field and words in res.text, res.text


def test_human_selection_records_a_video_of_every_candidate(api: Api) -> None:
    res = api.client.post(f"{API}/tasks", json=TINY | {"selection": "human"}, headers=api.user("alice"))
    assert res.status_code == 201, res.text
    assert res.json()["selection"] == "human" and res.json()["options"]["train"]["video"] is True
