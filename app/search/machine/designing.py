"""Designing an iteration: ask the designer for K programs, vet them, store them, schedule their training.

The LLM calls and dry runs happen outside any open transaction; the iteration row,
created first, makes a redelivered design step continue the same iteration.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from app.artifacts.stores import store_of
from app.config import Settings
from app.db import after_commit, session_scope
from app.db.models import Candidate, Iteration, Run
from app.errors import LLMError
from app.search.design.critic import Verdict, Vetted, vet
from app.search.design.dedupe import normalised_hash
from app.search.design.designers import Designer
from app.search.machine.context import build_context, iteration_record
from app.search.machine.iterations import advance, claim_iteration
from app.search.records.dispatch import Dispatcher
from app.search.records.ledger import dispatch_after_commit, new_training, policy_of, refresh_usage
from app.search.records.runs import fail_run
from app.search.records.trajectories import fetch_recorded, recorded_keys
from app.search.rules.budget import added_steps, screen_steps
from app.search.rules.options import options_of
from app.search.rules.states import CandidateStatus, IterationStatus, Purpose, RunPhase, RunStatus, TrainingStatus
from workers.engine.evaluate import sandbox_check
from workers.sandbox.runner import SandboxResult

DesignerFactory = Callable[[Run], Designer]
"""Builds the designer a run asked for (``app.search.machine.factory.designer_factory``)."""

DRY_RUN_WALL_SECONDS = 120.0
"""Wall-clock limit of one candidate's sandboxed dry run."""


def design(
    sf: sessionmaker, run_id: int, dispatcher: Dispatcher, settings: Settings, designer_for: DesignerFactory
) -> None:
    """Design the next iteration: ask the designer for K programs, vet them, store them, schedule their training."""
    try:
        with session_scope(sf) as s:
            run = s.get(Run, run_id, with_for_update=True)  # one delivery of this step at a time
            if run is None or run.status != RunStatus.RUNNING or run.phase != RunPhase.SEARCH:
                return
            task = run.task
            last = run.iterations[-1] if run.iterations else None
            if last is not None and last.status == IterationStatus.DESIGNING:
                it = last
            elif last is None or last.status == IterationStatus.DONE:
                if len(run.iterations) >= task.iterations:
                    return
                it = Iteration(run_id=run.id, index=len(run.iterations), status=IterationStatus.DESIGNING, context={})
                s.add(it)
                s.flush()
            else:
                return
            ctx = build_context(s, run, it.index)
            it.parent_id = ctx.parent.id if ctx.parent else None
            it.context = iteration_record(ctx)
            iteration_id, k = it.id, task.samples
            designer = designer_for(run)
            options = options_of(task)
            env, max_repairs = task.env, options.max_repairs
            review_rounds = 1 if options.critic_review else 0
            recorded = recorded_keys(s, run.id) if options.trajectory_screen else []
    except IntegrityError:
        # Another delivery of this step (a redelivered message beside the recovery's own) opened the iteration first:
        # it designs it. Only SQLite gets here; PostgreSQL's row lock makes this one wait and continue the iteration.
        return

    try:
        proposals = designer.propose(ctx, k)
    except LLMError as e:
        with session_scope(sf) as s:
            fail_run(
                s,
                run_id=run_id,
                error=f"the designer could not get an answer from the LLM: {str(e).rstrip('.')}. Once the LLM "
                f"answers again, resume the run (the Resume button on its dashboard page, or "
                f"POST /api/v1/runs/{run_id}/resume); nothing done so far is redone.",
            )
        return
    limits = settings.sandbox_limits(wall_seconds=DRY_RUN_WALL_SECONDS)
    scratch = settings.data_dir / "work" / f"screen-run-{run_id}-iteration-{iteration_id}"
    trajectories = fetch_recorded(store_of(settings), recorded, scratch) if recorded else []
    parent = ctx.parent.code if ctx.parent is not None else None

    def check(code: str) -> SandboxResult:
        return sandbox_check(env, code, "reward", limits, trajectories=trajectories, parent=parent)

    try:
        with ThreadPoolExecutor(max_workers=min(4, max(1, len(proposals)))) as pool:
            vetted = list(
                pool.map(
                    lambda p: vet(p, ctx, designer, check=check, max_repairs=max_repairs, review_rounds=review_rounds),
                    proposals,
                )
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _store_iteration(sf, run_id, iteration_id, vetted, dispatcher, settings)


def _store_iteration(
    sf: sessionmaker, run_id: int, iteration_id: int, vetted: list[Vetted], dispatcher: Dispatcher, settings: Settings
) -> None:
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        if run is None:
            return
        task = run.task
        options = options_of(task)
        halving = options.successive_halving and len(vetted) > 1
        target = IterationStatus.SCREENING if halving else IterationStatus.TRAINING
        if not claim_iteration(s, iteration_id, IterationStatus.DESIGNING, target):
            return  # another delivery of this step already stored it
        s.refresh(run)  # what follows reads inside the claim's transaction
        it = s.get(Iteration, iteration_id, populate_existing=True)
        assert it is not None
        known = {
            c.code_hash: c.id
            for c in run.candidates
            if c.code_hash
            and c.status not in (CandidateStatus.REJECTED, CandidateStatus.DUPLICATE)
            and not c.origin.is_baseline
        }
        parent = s.get(Candidate, it.parent_id) if it.parent_id else None
        start = policy_of(parent) if options.continue_from_parent else None
        full = added_steps(task.timesteps, options, warm=start is not None)
        screening = screen_steps(full, options.screen_fraction)
        lineage = functools.partial(
            new_training, s, warm_start_from=start, continue_from_parent=options.continue_from_parent
        )
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
                status=CandidateStatus.PENDING,
                error=v.error,
                critic=v.notes,
                dry_run=v.dry_run,
                design=v.design,
                screen=v.screen,
                code_hash=normalised_hash(v.code) if v.code else None,
            )
            s.add(c)
            s.flush()
            if v.status != Verdict.ACCEPTED or c.code_hash is None:
                c.status = CandidateStatus.REJECTED
                continue
            if c.code_hash in known:
                c.status, c.duplicate_of_id = CandidateStatus.DUPLICATE, known[c.code_hash]
                c.error = f"the same program (up to names, comments and layout) as candidate {known[c.code_hash]}"
                continue
            known[c.code_hash] = c.id
            c.status = CandidateStatus.QUEUED
            if halving:
                trainings.append(lineage(c, purpose=Purpose.SCREEN, timesteps=screening, seed=task.seed))
            else:
                trainings.append(lineage(c, purpose=Purpose.FULL, timesteps=full, seed=task.seed))
        refresh_usage(s, run)
        if run.status != RunStatus.RUNNING:
            for t in trainings:
                t.status = TrainingStatus.CANCELLED
            return
        dispatch_after_commit(s, dispatcher, trainings)
        if not trainings:
            after_commit(s, lambda: advance(sf, iteration_id, dispatcher, settings))
