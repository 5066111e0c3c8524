"""Running whole searches in a test: a real SQLite database, real sandboxed PPO on tiny budgets, the LLM behind the
loopback fake OpenAI server, and the in-process dispatcher that `rewardsmith run` uses."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.db import session_scope
from app.db.models import Candidate, Iteration, LLMExchange, Run, Training
from app.search.machine.factory import designer_factory
from app.search.machine.local import LocalDispatcher
from app.search.records.run_json import run_dict
from app.search.service import TaskSpec, create_task, resume_run
from tests.support.db import make_settings
from tests.support.fake_openai import FakeOpenAI

TRAIN = {"eval_episodes": 1, "episode_steps": 100, "checkpoints": 2}
"""Training options small enough for a shared two-core machine."""
MODEL = "fake-model"


def task_spec(**fields) -> TaskSpec:
    """A HalfCheetah task of one iteration with one candidate of 2,048 steps, no final seeds, no baselines."""
    options = {"final_seeds": 0, "baselines": False, "train": dict(TRAIN)} | fields.pop("options", {})
    values = {
        "env": "HalfCheetah-v5",
        "description": "make the cheetah run forward as fast as it can",
        "designer": "llm",
        "iterations": 1,
        "samples": 1,
        "timesteps": 2048,
        "seed": 0,
    } | fields
    return TaskSpec(options=options, **values)


class Search:
    """Submits tasks and works them off in this process, the way the `rewardsmith run` command does."""

    def __init__(self, sf: sessionmaker, tmp_path: Path, server: FakeOpenAI | None = None, **settings) -> None:
        self.sf = sf
        self.tmp_path = tmp_path
        self.server = server
        self.overrides = settings

    def settings(self) -> Settings:
        llm = (
            {"openai_base_url": self.server.base_url, "openai_api_key": "sk-test", "llm_model": MODEL}
            if self.server is not None
            else {}
        )
        return make_settings(self.tmp_path, **(llm | self.overrides))

    def dispatcher(self, max_parallel: int = 2) -> LocalDispatcher:
        settings = self.settings()
        return LocalDispatcher(self.sf, settings, designer_factory(self.sf, settings), max_parallel=max_parallel)

    def submit(self, spec: TaskSpec, dispatcher: LocalDispatcher) -> int:
        with session_scope(self.sf) as s:
            _, run = create_task(s, spec=spec, owner_id=None, settings=self.settings(), dispatcher=dispatcher)
            return run.id

    def settle(self, dispatcher: LocalDispatcher, run_id: int, *, timeout: float = 240.0, on_tick=None) -> str:
        """Work the run off until it is final or waits for feedback; fails the test instead of hanging."""
        deadline = time.monotonic() + timeout

        def tick() -> None:
            if on_tick is not None:
                on_tick()
            if time.monotonic() > deadline:
                with session_scope(self.sf) as s:
                    run = s.get(Run, run_id)
                    state = (
                        run.status,
                        run.phase,
                        [it.status for it in run.iterations],
                        [(t.purpose, t.status) for t in s.scalars(select(Training).where(Training.run_id == run_id))],
                    )
                raise TimeoutError(f"run {run_id} did not settle within {timeout:g} s: {state}")

        return dispatcher.run_until_settled(run_id, on_tick=tick, poll=0.2)

    def run(self, spec: TaskSpec, **kw) -> tuple[int, str]:
        """Submit ``spec`` and work it off; (run id, final status)."""
        d = self.dispatcher()
        run_id = self.submit(spec, d)
        return run_id, self.settle(d, run_id, **kw)

    def resume(self, run_id: int, **kw) -> str:
        d = self.dispatcher()
        with session_scope(self.sf) as s:
            resume_run(s, run=s.get(Run, run_id), dispatcher=d)
        return self.settle(d, run_id, **kw)

    def doc(self, run_id: int) -> dict:
        """The run as `run.json` has it."""
        with session_scope(self.sf) as s:
            return run_dict(s, s.get(Run, run_id), model=MODEL)

    def candidates(self, run_id: int) -> list[dict]:
        """The run's designed candidates (no baselines), in order, as run.json has them."""
        return [c for it in self.doc(run_id)["iterations"] for c in it["candidates"]]

    def exchanges(self, run_id: int) -> list[dict]:
        with session_scope(self.sf) as s:
            rows = s.scalars(select(LLMExchange).where(LLMExchange.run_id == run_id).order_by(LLMExchange.id))
            return [
                {
                    "purpose": e.purpose,
                    "status": e.status,
                    "error": e.error,
                    "attempt": e.attempt,
                    "cached": e.cached,
                    "prompt_tokens": e.prompt_tokens,
                    "completion_tokens": e.completion_tokens,
                    "http_status": (e.response or {}).get("http_status"),
                }
                for e in rows
            ]

    def trainings(self, run_id: int) -> list[Training]:
        with session_scope(self.sf) as s:
            return list(s.scalars(select(Training).where(Training.run_id == run_id).order_by(Training.id)))

    def iterations(self, run_id: int) -> list[Iteration]:
        with session_scope(self.sf) as s:
            return list(s.scalars(select(Iteration).where(Iteration.run_id == run_id).order_by(Iteration.index)))

    def candidate(self, candidate_id: int) -> Candidate:
        with session_scope(self.sf) as s:
            return s.get(Candidate, candidate_id)


def user_prompt(request: dict) -> str:
    """The last user message of a chat-completions request body."""
    return [m["content"] for m in request["messages"] if m["role"] == "user"][-1]


def design_requests(server: FakeOpenAI) -> list[dict]:
    """The requests that asked for a round's programs (not repairs or reviews), in order."""
    return [r for r in server.requests if [m["role"] for m in r["messages"]] == ["system", "user"]]
