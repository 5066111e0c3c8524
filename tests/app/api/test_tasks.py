"""POST /tasks, GET /tasks, GET /tasks/{id}: creating a task starts its run once the transaction has committed;
bad input gets a 422 that names the field and says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import Run, Task
from tests.app.api.harness import API, Api, RecordingDispatcher, make_api
from tests.support.tasks import TINY

FITNESS_PROGRAM = """
import numpy as np

def compute_fitness(traj):
    return float(np.mean(traj.x_velocity))
"""


class CommitCheckingDispatcher(RecordingDispatcher):
    """Looks the run up in a session of its own when asked to start it: the row must already be committed."""

    def __init__(self, sf: sessionmaker) -> None:
        super().__init__()
        self.sf = sf
        self.seen: list[str | None] = []

    def start(self, run_id: int) -> None:
        with session_scope(self.sf) as s:
            run = s.get(Run, run_id)
            self.seen.append(run.status if run else None)
        super().start(run_id)


def count_tasks(api: Api) -> int:
    with session_scope(api.sf) as s:
        return s.scalar(select(func.count(Task.id)))


def test_post_task_creates_a_queued_run_and_starts_it_after_the_commit(api: Api) -> None:
    alice = api.user("alice")
    api.app.state.dispatcher = dispatcher = CommitCheckingDispatcher(api.sf)
    r = api.client.post(f"{API}/tasks", headers=alice, json=TINY)
    assert r.status_code == 201, r.text
    task = r.json()
    assert isinstance(task["id"], int) and isinstance(task["run_id"], int)
    assert task["status"] == "queued" and task["owner"] == "alice" and task["designer"] == "offline"
    assert (task["env"], task["fitness"], task["timesteps"]) == ("HalfCheetah-v5", "forward_distance", 2048)
    # stored as the run will use them: what was given, and every default filled in
    assert task["options"]["train"].items() >= TINY["options"]["train"].items()
    assert task["options"]["train"]["video_steps"] == 300 and task["options"]["max_repairs"] == 2
    assert dispatcher.calls == [("start", task["run_id"])]
    assert dispatcher.seen == ["queued"], "the run was sent to the workers before its row was committed"


def test_list_and_get_tasks_newest_first(api: Api) -> None:
    alice = api.user("alice")
    ids = [
        api.client.post(f"{API}/tasks", headers=alice, json={**TINY, "description": f"task {i}"}).json()["id"]
        for i in range(3)
    ]
    r = api.client.get(f"{API}/tasks", headers=alice)
    assert r.status_code == 200
    assert [t["id"] for t in r.json()] == ids[::-1]
    assert [t["id"] for t in api.client.get(f"{API}/tasks?limit=1&offset=1", headers=alice).json()] == [ids[1]]
    one = api.client.get(f"{API}/tasks/{ids[0]}", headers=alice).json()
    assert one["description"] == "task 0" and one["status"] == "queued"
    assert api.client.get(f"{API}/tasks/{ids[-1] + 100}", headers=alice).status_code == 404


def test_a_fitness_program_is_accepted_as_custom_fitness(api: Api) -> None:
    alice = api.user("alice")
    r = api.client.post(f"{API}/tasks", headers=alice, json={**TINY, "fitness": FITNESS_PROGRAM})
    assert r.status_code == 201, r.text
    assert r.json()["fitness"] == "custom" and "compute_fitness" in r.json()["fitness_source"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"env": "Cheetah-v1"}, "env", ["unknown env 'Cheetah-v1'", "HalfCheetah-v5"]),
        ({"fitness": "speed"}, "fitness", ["unknown fitness 'speed'", "forward_distance", "compute_fitness(traj)"]),
        (
            {"fitness": "def compute_fitness(traj):\n    import os\n    return 1.0\n"},
            "fitness",
            ["line 2", "importing `os` is not allowed"],
        ),
        ({"fitness": "def compute_fitness(traj:\n    return 1.0\n"}, "fitness", ["fitness program"]),
        ({"designer": "llm"}, "designer", ["REWARDSMITH_LLM_MODEL", "designer 'offline'"]),
        ({"description": "   "}, "description", ["describe the behaviour"]),
        (
            {"iterations": 50, "samples": 32, "timesteps": 200_000},
            "timesteps",
            ["320,000,000 steps", "50 iterations × 32 samples × 200,000 steps", "cap of 200,000,000"],
        ),
        ({"timesteps": 6_000_000}, "timesteps", ["timesteps must be an integer from 1,000 to 5,000,000"]),
        ({"options": {"turbo": True}}, "options.turbo", ["Extra inputs are not permitted"]),
        ({"options": {"train": {"gpus": 8}}}, "options.train.gpus", ["Extra inputs are not permitted"]),
        (
            {"options": {"train": {"eval_episodes": 10**6}}},
            "options.train.eval_episodes",
            ["less than or equal to 100"],
        ),
        ({"options": {"train": {"ppo": {"n_envs": 4096}}}}, "options.train.ppo.n_envs", ["less than or equal to 256"]),
        ({"samples": 0}, "samples", ["greater than or equal to 1"]),
        ({"designer": "gpt"}, "designer", ["'llm' or 'offline'"]),
    ],
)
def test_bad_tasks_get_a_422_that_names_the_field(api: Api, change: dict, field: str, words: list[str]) -> None:
    alice = api.user("alice")
    r = api.client.post(f"{API}/tasks", headers=alice, json={**TINY, **change})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_input", field)
    for word in words:
        assert word in error["message"]
    assert count_tasks(api) == 0 and api.dispatcher.calls == []


def test_the_budget_cap_comes_from_the_settings(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path, max_task_timesteps=10_000)
    alice = api.user("alice")
    ok = api.client.post(f"{API}/tasks", headers=alice, json={**TINY, "iterations": 2, "samples": 2, "timesteps": 2500})
    assert ok.status_code == 201, ok.text
    r = api.client.post(f"{API}/tasks", headers=alice, json={**TINY, "iterations": 2, "samples": 2, "timesteps": 2501})
    assert r.status_code == 422
    assert "10,004 steps" in r.json()["error"]["message"] and "cap of 10,000" in r.json()["error"]["message"]


def test_llm_designer_is_accepted_when_an_llm_is_configured(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path, llm_model="fake-model", openai_base_url="http://127.0.0.1:9/v1")
    alice = api.user("alice")
    r = api.client.post(f"{API}/tasks", headers=alice, json={**TINY, "designer": "llm"})
    assert r.status_code == 201, r.text
    assert r.json()["designer"] == "llm"
    default = api.client.post(f"{API}/tasks", headers=alice, json={k: v for k, v in TINY.items() if k != "designer"})
    assert default.json()["designer"] == "llm"


def test_a_body_that_is_not_json_is_a_422(api: Api) -> None:
    alice = api.user("alice")
    r = api.client.post(f"{API}/tasks", headers={**alice, "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_input"


def test_a_body_that_is_not_utf8_is_a_422_in_the_api_error_shape(api: Api) -> None:
    alice = api.user("alice")
    r = api.client.post(
        f"{API}/tasks", headers={**alice, "Content-Type": "application/json"}, content=b'{"env": "\xff\xfe"}'
    )
    assert r.status_code == 422
    assert r.json()["error"] == {
        "code": "invalid_input",
        "field": None,
        "message": "the request body is not valid JSON (send UTF-8 encoded JSON)",
    }
    assert count_tasks(api) == 0


def test_unknown_endpoints_and_methods_answer_in_the_api_error_shape(api: Api) -> None:
    alice = api.user("alice")
    r = api.client.get(f"{API}/taskz", headers=alice)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found" and f"{API}/docs" in r.json()["error"]["message"]
    r = api.client.delete(f"{API}/tasks/1", headers=alice)
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed" and r.headers["allow"] == "GET"
