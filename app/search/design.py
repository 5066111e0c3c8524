"""Designing an iteration: ask the designer for K programs, vet them, store them, schedule their training.

The LLM calls and dry runs happen outside any open transaction; the iteration row,
created first, makes a redelivered design step continue the same iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.db import after_commit, session_scope
from app.db.models import Candidate, Iteration, Run
from app.search.context import build_context, iteration_record
from app.search.critic import Vetted, vet
from app.search.dedupe import normalised_hash
from app.search.designers import Designer
from app.search.dispatch import Dispatcher
from app.search.ledger import dispatch_after_commit, new_training, run_usage, sandbox_limits
from app.search.orchestrator import advance
from app.search.service import set_status
from workers.engine.evaluate import sandbox_check

DesignerFactory = Callable[[Run], Designer]
"""Builds the designer a run asked for (``app.search.factory.designer_factory``)."""


def design(
    sf: sessionmaker, run_id: int, dispatcher: Dispatcher, settings: Settings, designer_for: DesignerFactory
) -> None:
    """Design the next iteration: ask the designer for K programs, vet them, store them, schedule their training."""
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        if run is None or run.status != "running" or run.phase != "search":
            return
        task = run.task
        last = run.iterations[-1] if run.iterations else None
        if last is not None and last.status == "designing":
            it = last
        elif last is None or last.status == "done":
            if len(run.iterations) >= task.iterations:
                return
            it = Iteration(run_id=run.id, index=len(run.iterations), status="designing", context={})
            s.add(it)
            s.flush()
        else:
            return
        ctx = build_context(s, run, it.index)
        it.parent_id = ctx.parent.id if ctx.parent else None
        it.context = iteration_record(ctx)
        iteration_id, k = it.id, task.samples
        designer = designer_for(run)
        env, max_repairs = task.env, int(task.options.get("max_repairs", 2))
        review_rounds = 1 if task.options.get("critic_review") else 0

    from app.llm.client import LLMError

    try:
        proposals = designer.propose(ctx, k)
    except LLMError as e:
        _fail_run(
            sf,
            run_id,
            f"the designer could not get an answer from the LLM: {str(e).rstrip('.')}. Once the LLM "
            f"answers again, resume the run (the Resume button on its dashboard page, or "
            f"POST /api/v1/runs/{run_id}/resume); nothing done so far is redone.",
        )
        return
    limits = sandbox_limits(settings, wall=120)

    def check(code: str):
        return sandbox_check(env, code, "reward", limits)

    with ThreadPoolExecutor(max_workers=min(4, max(1, len(proposals)))) as pool:
        vetted = list(
            pool.map(
                lambda p: vet(p, ctx, designer, check=check, max_repairs=max_repairs, review_rounds=review_rounds),
                proposals,
            )
        )
    _store_iteration(sf, run_id, iteration_id, vetted, dispatcher, settings)


def _store_iteration(
    sf: sessionmaker, run_id: int, iteration_id: int, vetted: list[Vetted], dispatcher: Dispatcher, settings: Settings
) -> None:
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        it = s.get(Iteration, iteration_id)
        if it.status != "designing":
            return  # another delivery of this step already stored it
        task = run.task
        known = {
            c.code_hash: c.id
            for c in run.candidates
            if c.code_hash and c.status not in ("rejected", "duplicate") and not c.origin.startswith("baseline")
        }
        halving = bool(task.options.get("successive_halving")) and len(vetted) > 1
        screen_steps = max(1000, int(task.timesteps * float(task.options.get("screen_fraction", 0.25))))
        trainings = []
        for i, v in enumerate(vetted):
            c = Candidate(
                run_id=run.id,
                iteration_id=it.id,
                index=i,
                parent_id=it.parent_id,
                origin=v.origin,
                code=v.code,
                answer=v.answer,
                status=v.status,
                error=v.error,
                critic=v.notes,
                dry_run=v.dry_run,
                design=v.design,
            )
            if v.code:
                c.code_hash = normalised_hash(v.code)
            s.add(c)
            s.flush()
            if v.status != "accepted":
                c.status = "rejected"
                continue
            if c.code_hash in known:
                c.status, c.duplicate_of_id = "duplicate", known[c.code_hash]
                c.error = f"the same program (up to names, comments and layout) as candidate {known[c.code_hash]}"
                continue
            known[c.code_hash] = c.id
            c.status = "queued"
            if halving:
                trainings.append(new_training(s, c, purpose="screen", timesteps=screen_steps, seed=task.seed))
            else:
                trainings.append(new_training(s, c, purpose="full", timesteps=task.timesteps, seed=task.seed))
        it.status = "screening" if halving else "training"
        run.usage = run_usage(s, run.id)
        if run.status != "running":
            for t in trainings:
                t.status = "cancelled"
            return
        dispatch_after_commit(s, dispatcher, trainings)
        if not trainings:
            after_commit(s, lambda: advance(sf, iteration_id, dispatcher, settings))


def _fail_run(sf: sessionmaker, run_id: int, error: str) -> None:
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        if run is not None and run.status == "running":
            set_status(run, "failed", error=error)
            run.usage = run_usage(s, run_id)
