"""Helpers for the REST API tests: create_app on the test's database (SQLite and PostgreSQL), a dispatcher that records
what the API asked to run (nothing trains), users with real tokens, and a finished run with real files to download."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from app.auth import create_user
from app.config import Settings
from app.db import session_scope
from app.db.models import Candidate, Feedback, Iteration, Run, Training, User, utcnow
from app.main import create_app
from app.search.service import create_task
from tests.support.db import make_settings
from tests.support.dispatch import RecordingDispatcher
from tests.support.fixtures import load_fixture
from tests.support.tasks import tiny_spec

API = "/api/v1"


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    sf: sessionmaker
    settings: Settings
    dispatcher: RecordingDispatcher
    tokens: dict[str, str] = field(default_factory=dict)

    def user(self, name: str, *, admin: bool = False) -> dict[str, str]:
        """Create a user (through the same code as `rewardsmith users create`); its Authorization header."""
        with session_scope(self.sf) as s:
            _, token = create_user(s, name=name, admin=admin)
        self.tokens[name] = token
        return {"Authorization": f"Bearer {token}"}


def make_api(sf: sessionmaker, tmp_path: Path, *, broker_check=lambda: "ok", **overrides) -> Api:
    settings = make_settings(tmp_path, **overrides)
    dispatcher = RecordingDispatcher()
    app = create_app(settings, dispatcher=dispatcher, broker_check=broker_check)
    app.state.sf = sf
    return Api(app, TestClient(app), sf, settings, dispatcher)


def _stats(mean: float) -> dict:
    return {"mean": mean, "min": mean - 1.0, "max": mean + 1.0}


RESULT = {
    "fitness": {"mean": 12.5, "std": 0.5, "per_episode": [12.0, 13.0]},
    "steps_per_second": 900.0,
    "timesteps": 2048,
    "components": {"forward": [_stats(0.5), _stats(1.0)], "ctrl_cost": [_stats(-0.2), _stats(-0.1)]},
    "checkpoints": [
        {
            "timesteps": t,
            "fitness": f,
            "components": {"forward": _stats(fw), "ctrl_cost": _stats(cc)},
            "reward": _stats(fw + cc),
            "episodes": 1,
            "episode_return": 10 * f,
            "episode_env_return": 9 * f,
            "episode_length": 100,
            "terminated": 0,
            "truncated": 1,
            "learner": {
                "approx_kl": kl,
                "clip_fraction": 0.02,
                "explained_variance": ev,
                "entropy": 2.5,
                "policy_loss": -0.01,
                "value_loss": 0.3,
                "std": 0.36,
                "learning_rate": 3e-4,
                "updates": 2,
            },
        }
        for t, f, fw, cc, kl, ev in ((1024, 3.0, 0.5, -0.2, 0.004, -0.8), (2048, 12.5, 1.0, -0.1, 0.006, 0.4))
    ],
    "episodes": [
        {
            "seed": 1000,
            "steps": 100,
            "ended": "time limit",
            "env_return": 11.0,
            "distance_x": 12.5,
            "distance_y": 0.0,
            "mean_x_velocity": 2.5,
            "height": _stats(0.6),
            "upright_mean": 0.98,
        }
    ],
}
"""A training's result in the shape the engine writes (see workers/engine), on a tiny budget."""


@dataclass
class Seeded:
    task_id: int
    run_id: int
    candidate_id: int
    training_id: int
    rejected_id: int
    artifacts: Path


def seed_finished_run(api: Api, *, owner: str, status: str = "succeeded") -> Seeded:
    """A task created through the service, whose run went through one iteration: one trained candidate (with files on
    disk, as a training leaves them) and one rejected; the rows are what the search writes, the files real bytes."""
    code = load_fixture("cheetah_forward").split("```python", 1)[1].split("```", 1)[0]
    with session_scope(api.sf) as s:
        owner_id = s.scalar(select(User.id).where(User.name == owner))
        spec = tiny_spec()
        task, run = create_task(
            s, spec=spec, owner_id=owner_id, settings=api.settings, dispatcher=RecordingDispatcher()
        )
        run.status, run.phase, run.started_at = status, "done" if status == "succeeded" else "search", utcnow()
        it = Iteration(run_id=run.id, index=0, status="done", context={})
        s.add(it)
        s.flush()
        good = Candidate(
            run_id=run.id,
            iteration_id=it.id,
            index=0,
            origin="llm",
            code=code,
            status="trained",
            fitness=12.5,
            fitness_std=0.5,
            reflection="forward dominates",
            critic=[],
            dry_run={},
            diagnostics={"items": [{"kind": "dominant", "text": "forward dominates"}]},
        )
        bad = Candidate(
            run_id=run.id,
            iteration_id=it.id,
            index=1,
            origin="llm",
            code="def compute_reward(:",
            status="rejected",
            error="the program does not parse: line 1",
            critic=[],
            dry_run={},
        )
        s.add_all([good, bad])
        s.flush()
        t = Training(
            candidate_id=good.id,
            run_id=run.id,
            purpose="full",
            timesteps=2048,
            seed=0,
            status="ok",
            attempts=1,
            result=RESULT,
        )
        s.add(t)
        s.flush()
        out = api.settings.data_dir / "artifacts" / f"run-{run.id}" / f"candidate-{good.id}" / f"training-{t.id}"
        out.mkdir(parents=True)
        (out / "result.json").write_text(json.dumps({"fitness": {"mean": 12.5}}))
        (out / "reward.py").write_text(code)
        (out / "policy.zip").write_bytes(b"PK\x05\x06" + bytes(18))
        t.artifacts_key = out.relative_to(api.settings.data_dir / "artifacts").as_posix()
        run.best_candidate_id = good.id
        run.usage = {
            "requests": 2,
            "prompt_tokens": 800,
            "completion_tokens": 300,
            "total_tokens": 1100,
            "timesteps_trained": 2048,
        }
        if status == "succeeded":
            run.finished_at = utcnow()
        s.add(Feedback(candidate_id=good.id, run_id=run.id, user_id=owner_id, text="earlier note", rating=3))
        return Seeded(task.id, run.id, good.id, t.id, bad.id, out)


def run_row(api: Api, run_id: int) -> Run:
    """The run as stored (read in a session of its own)."""
    with session_scope(api.sf) as s:
        return s.get(Run, run_id)
