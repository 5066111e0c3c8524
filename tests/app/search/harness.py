"""Running whole searches in a test: a real SQLite database, real sandboxed PPO on tiny budgets, the LLM behind the
loopback fake OpenAI server, and the in-process dispatcher that `rewardsmith run` uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import session_scope
from app.db.models import Candidate, Iteration, LLMExchange, Run, Training
from app.search.records.run_json import run_dict
from app.search.service import LocalRun, TaskSpec, resume_run, run_local
from tests.support.db import make_settings
from tests.support.fake_openai import FakeOpenAI
from tests.support.tasks import tiny_spec

MODEL = "fake-model"


def task_spec(**fields) -> TaskSpec:
    """The tiny task (``tests.support.tasks``), designed by the LLM, as fast as it can (the offline designer and
    the proposer read those words)."""
    return tiny_spec(**{"designer": "llm", "description": "make the cheetah run forward as fast as it can"} | fields)


def running_run(s: Session, spec: TaskSpec, settings: Settings, iteration_status: str) -> tuple[Run, Iteration]:
    """A task's running run with its first iteration in ``iteration_status`` (rows only, no PPO), for tests that
    then add candidates and trainings by hand."""
    from app.search.records.runs import set_status
    from app.search.service import create_task
    from tests.support.dispatch import RecordingDispatcher

    _, run = create_task(s, spec=spec, owner_id=None, settings=settings, dispatcher=RecordingDispatcher())
    set_status(run, "running")
    it = Iteration(run=run, index=0, status=iteration_status, context={})
    s.add(it)
    s.flush()
    return run, it


class Search:
    """Submits tasks and works them off in this process through ``run_local``, as the `rewardsmith run` command does."""

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

    @staticmethod
    def _deadline(timeout: float, on_tick: Callable[[LocalRun], None] | None) -> Callable[[LocalRun], None]:
        """``on_tick``, then a TimeoutError with where the run stands once ``timeout`` has passed: a test fails
        instead of hanging."""
        deadline = time.monotonic() + timeout

        def tick(local: LocalRun) -> None:
            if on_tick is not None:
                on_tick(local)
            if time.monotonic() > deadline:
                with session_scope(local.sf) as s:
                    run = s.get(Run, local.run_id)
                    state = (
                        run.status,
                        run.phase,
                        [it.status for it in run.iterations],
                        [(t.purpose, t.status) for t in s.scalars(select(Training).where(Training.run_id == run.id))],
                    )
                raise TimeoutError(f"run {local.run_id} did not settle within {timeout:g} s: {state}")

        return tick

    def start(
        self, spec: TaskSpec, *, timeout: float = 240.0, on_tick: Callable[[LocalRun], None] | None = None
    ) -> LocalRun:
        """Submit ``spec`` and work it off until it is final or waits for a person."""
        tick = self._deadline(timeout, on_tick)
        return run_local(spec, self.settings(), sf=self.sf, max_parallel=2, on_tick=tick, poll=0.2)

    def run(self, spec: TaskSpec, **kw) -> tuple[int, str]:
        """Submit ``spec`` and work it off; (run id, final status)."""
        local = self.start(spec, **kw)
        return local.run_id, str(local.status)

    def settle(
        self, local: LocalRun, *, timeout: float = 240.0, on_tick: Callable[[LocalRun], None] | None = None
    ) -> str:
        """Work ``local`` off again (after a person's decision, say)."""
        return str(local.settle(on_tick=self._deadline(timeout, on_tick), poll=0.2))

    def attach(self, run_id: int) -> LocalRun:
        return LocalRun.attach(self.sf, self.settings(), run_id, max_parallel=2)

    def resume(self, run_id: int, **kw) -> str:
        local = self.attach(run_id)
        with session_scope(self.sf) as s:
            resume_run(s, run=s.get(Run, run_id), dispatcher=local.dispatcher)
        return self.settle(local, **kw)

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
