"""A user's robot end to end with real processes: the quadruped uploaded to `rewardsmith serve` (the API, as compose
runs it), then tasks on it worked off by `rewardsmith worker`, a Celery worker that never saw the upload and
registers the robot from PostgreSQL; on Redis, the LLM a loopback server replaying scripted answers.

- an offline-designer task at a tiny budget runs to 'succeeded';
- through the service, at a small budget, a forward reward moves the quadruped forward and a backward one backward
  (tests/workers/engine/test_robot_training.py shows the same on the engine alone).
"""

from __future__ import annotations

import httpx
import pytest

from tests.app.jobs.test_celery_e2e import Stack, redis_db, stack  # noqa: F401 (the fixtures this module uses)
from tests.support.robots import QUADRUPED_XML

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(900)]

ROBOT = "e2e_quadruped"
SMALL_PPO = {"n_envs": 8, "n_steps": 128, "batch_size": 256, "n_epochs": 5, "net_arch": [64, 64], "learning_rate": 1e-3}
"""The engine test's settings (tests/workers/engine/test_robot_training.py), as a task's PPO options."""
RUN = """Here is the reward.

```python
import numpy as np


def compute_reward(state, action):
    run = {sign}state.x_velocity
    ctrl_cost = 0.05 * np.sum(np.square(action), axis=-1)
    return run - ctrl_cost, {{"run": run, "ctrl_cost": -ctrl_cost}}
```
"""


def _task(**changes: object) -> dict:
    return {
        "env": ROBOT,
        "iterations": 1,
        "samples": 1,
        "options": {"final_seeds": 0, "baselines": False},
        **changes,
    }


def test_tasks_on_an_uploaded_robot_run_on_a_worker_that_never_saw_it(stack: Stack) -> None:  # noqa: F811
    r = httpx.post(
        f"{stack.url}/api/v1/envs",
        headers=stack.headers,
        data={"name": ROBOT, "episode_steps": "200"},
        files=[("model", ("quadruped.xml", QUADRUPED_XML, "application/xml"))],
        timeout=180,
    )
    assert r.status_code == 201, r.text
    assert r.json()["picture"] == f"/api/v1/envs/{ROBOT}/picture" and r.json()["settings"]["episode_steps"] == 200
    picture = stack.get(f"/envs/{ROBOT}/picture")
    assert picture[:8] == b"\x89PNG\r\n\x1a\n"
    worker = stack.start_worker()

    offline = stack.post(
        "/tasks",
        _task(
            designer="offline",
            description="make the robot walk forward",
            timesteps=2048,
            options={
                "final_seeds": 0,
                "baselines": False,
                "train": {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2},
            },
        ),
    )
    small = {"eval_episodes": 3, "checkpoints": 2, "ppo": SMALL_PPO}
    stack.llm.script([RUN.format(sign="")])
    forward = stack.post(
        "/tasks",
        _task(
            designer="llm",
            description="walk forward",
            fitness="forward_distance",
            timesteps=10_000,
            options={"final_seeds": 0, "baselines": False, "train": small},
        ),
    )
    stack.wait_for(lambda: stack.llm.remaining == 0, 120, "the forward task's design request")
    stack.llm.script([RUN.format(sign="-")])
    backward = stack.post(
        "/tasks",
        _task(
            designer="llm",
            description="walk backward",
            fitness="backward_distance",
            timesteps=10_000,
            options={"final_seeds": 0, "baselines": False, "train": small},
        ),
    )

    done = {
        name: stack.wait_for_run(t["run_id"], seconds=600)
        for name, t in (("offline", offline), ("forward", forward), ("backward", backward))
    }
    best = stack.get(f"/candidates/{done['offline']['best_candidate_id']}")
    assert best["code"].startswith("# Written by the offline designer (no LLM)")
    assert best["trainings"][0]["status"] == "ok"

    # the LLM was shown the robot as the designer sees it: its own description, bodies and feet
    prompts = [m["content"] for r in stack.llm.requests for m in r["messages"] if m["role"] == "user"]
    assert any(f"# {ROBOT}" in p and "- front_left_foot: a foot" in p and "walk backward" in p for p in prompts)

    moved = {}
    for name in ("forward", "backward"):
        c = stack.get(f"/candidates/{done[name]['best_candidate_id']}")
        assert "run = " + ("-" if name == "backward" else "") + "state.x_velocity" in c["code"]
        moved[name] = [e["distance_x"] for e in c["episodes"]]
    # measured on the engine at 10k steps: +0.45 to +0.7 m forward, -0.45 to -0.7 m backward; resting, under 0.06 m
    assert len(moved["forward"]) == 3 and all(d > 0.2 for d in moved["forward"]), moved
    assert len(moved["backward"]) == 3 and all(d < -0.2 for d in moved["backward"]), moved
    stack.processes.stop(worker)
