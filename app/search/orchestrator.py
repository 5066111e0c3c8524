"""The search as a state machine in the database: design → (screen →) train → reflect → next iteration → final.

Each step is a function of ids that reads the database, does its work, and records
the outcome; completion hooks are idempotent (guarded by conditional updates), so a
redelivered or duplicated message changes nothing. Long work (LLM calls, training)
runs outside any open transaction.
"""

from __future__ import annotations

import logging
import math

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import after_commit, session_scope
from app.db.models import Candidate, Iteration, Run, Training, utcnow
from app.search.dedupe import normalised_hash
from app.search.dispatch import Dispatcher
from app.search.ledger import dispatch_after_commit, new_training, run_usage
from app.search.reflection import reflect
from app.search.service import set_status
from app.search.states import TRAINING_TERMINAL
from envs import get_spec
from envs.fitness import METRICS

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------- start


def baseline_programs(task) -> list[tuple[str, str]]:
    """(origin, code) of the baselines for a normalized score: the env's reference reward and the fitness as reward."""
    spec = get_spec(task.env)
    metric = METRICS.get(task.fitness_name)
    if (
        task.fitness_source
        or task.fitness_name not in spec.reference_fitness
        or metric is None
        or not metric.sparse_reward
    ):
        return []
    return [("baseline-reference", spec.reference_reward), ("baseline-sparse", metric.sparse_reward)]


def start(sf: sessionmaker, run_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    """queued → running; schedule the baselines and the first design."""
    with session_scope(sf) as s:
        # Locked: the start message and a sweep that finds the run still queued may both get here at once; without
        # the lock both would schedule baselines and a design.
        run = s.get(Run, run_id, with_for_update=True)
        if run is None or run.status != "queued":
            return
        set_status(run, "running")
        task = run.task
        if task.options.get("baselines"):
            made = []
            for origin, code in baseline_programs(task):
                c = Candidate(run_id=run.id, origin=origin, code=code, code_hash=normalised_hash(code), status="queued")
                s.add(c)
                s.flush()
                made.append(new_training(s, c, purpose="baseline", timesteps=task.timesteps, seed=task.seed))
            dispatch_after_commit(s, dispatcher, made)
        after_commit(s, lambda: dispatcher.design(run_id))


def kick(sf: sessionmaker, run_id: int, dispatcher: Dispatcher, settings: Settings, *, full: bool = True) -> None:
    """Re-schedule trainings whose worker died (stale heartbeat); with ``full`` (resume) also queued and cancelled
    trainings and whatever step the run waits for: a design, the close of an iteration, the finish."""
    stale_before = utcnow().timestamp() - settings.training_lease_seconds
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        if run is None or run.status != "running":
            return
        pending = []
        for t in s.scalars(
            select(Training).where(Training.run_id == run_id, Training.status.in_(("queued", "cancelled", "running")))
        ):
            if t.status == "running":
                if t.heartbeat_at is not None and t.heartbeat_at.timestamp() > stale_before:
                    continue
            elif not full:
                continue
            if t.status == "cancelled":
                t.status = "queued"
            pending.append(t)
        dispatch_after_commit(s, dispatcher, pending)
        if not full:
            return
        last = run.iterations[-1] if run.iterations else None
        if (
            run.phase == "search"
            and last is not None
            and last.status == "done"
            and last.index + 1 >= run.task.iterations
        ):
            # the last iteration ended while the run was stopped: go on to the final evaluation
            if not _finalize(s, run, dispatcher):
                after_commit(s, lambda: maybe_finish(sf, run_id))
        elif run.phase == "search" and (last is None or last.status in ("designing", "done")):
            after_commit(s, lambda: dispatcher.design(run_id))
        elif run.phase == "search" and not pending:
            last_id = last.id
            after_commit(s, lambda: advance(sf, last_id, dispatcher, settings))
        elif run.phase == "final" and not pending:
            after_commit(s, lambda: maybe_finish(sf, run_id))


# ------------------------------------------------------------------------------------ training results


def record_training(s: Session, t: Training, task) -> None:
    """Carry a finished training's outcome to its candidate (fitness, status, reflection)."""
    c = t.candidate
    if t.purpose == "final":
        return
    if t.status == "ok":
        fit = t.result.get("fitness") or {}
        c.fitness, c.fitness_std = fit.get("mean"), fit.get("std")
        c.status = "screened" if t.purpose == "screen" else "trained"
        c.error = None
        r = reflect(t.result, fitness_name=task.fitness_name)
        c.reflection, c.diagnostics = r.text, {"items": r.diagnostics}
        if t.result.get("dry_run"):
            c.dry_run = t.result["dry_run"]
    else:
        c.status = "rejected" if t.status == "rejected" else t.status
        c.error = t.error


def training_finished(sf: sessionmaker, training_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    """The completion hook of one training: update its candidate, then advance the iteration or the run."""
    with session_scope(sf) as s:
        t = s.get(Training, training_id)
        if t is None or t.status not in TRAINING_TERMINAL:
            return
        run = s.get(Run, t.run_id)
        record_training(s, t, run.task)
        run.usage = run_usage(s, run.id)
        iteration_id = t.candidate.iteration_id
        purpose = t.purpose
    if purpose in ("screen", "full") and iteration_id is not None:
        advance(sf, iteration_id, dispatcher, settings)
    else:
        maybe_finish(sf, t.run_id)


def _claim(s: Session, it: Iteration, expected: str, target: str) -> bool:
    """Move the iteration from ``expected`` to ``target`` unless someone else already did (conditional update)."""
    res = s.execute(update(Iteration).where(Iteration.id == it.id, Iteration.status == expected).values(status=target))
    return res.rowcount == 1


def advance(sf: sessionmaker, iteration_id: int, dispatcher: Dispatcher, settings: Settings) -> None:
    """When every training of an iteration has ended: continue the screened best half, or close the iteration."""
    with session_scope(sf) as s:
        it = s.get(Iteration, iteration_id)
        if it is None:
            return
        run = it.run
        trainings = list(s.scalars(select(Training).join(Candidate).where(Candidate.iteration_id == it.id)))
        # a cancelled training is trained again when the run resumes: until then the iteration is not over
        if any(t.status not in TRAINING_TERMINAL or t.status == "cancelled" for t in trainings):
            return
        if it.status == "screening":
            if not _claim(s, it, "screening", "training"):
                return
            if not _continue_best_half(s, it, run, dispatcher):
                after_commit(s, lambda: advance(sf, iteration_id, dispatcher, settings))
            return
        if it.status != "training" or not _claim(s, it, "training", "done"):
            return
        s.refresh(it)
        it.finished_at = utcnow()
        for c in it.candidates:
            if c.status == "screened":
                c.status = "trained"
        scored = [
            c for c in run.candidates if c.status == "trained" and c.iteration_id is not None and c.fitness is not None
        ]
        # A candidate stopped after screening was measured on a fraction of the budget: it only wins when
        # no candidate reached the full budget.
        full = [c for c in scored if any(t.purpose == "full" and t.status == "ok" for t in c.trainings)]
        scored = full or scored
        if scored:
            run.best_candidate_id = max(scored, key=lambda c: c.fitness).id
        run.usage = run_usage(s, run.id)
        if run.status != "running":
            return
        if it.index + 1 < run.task.iterations:
            if run.task.wait_for_feedback:
                set_status(run, "waiting_feedback")
            else:
                run_id = run.id
                after_commit(s, lambda: dispatcher.design(run_id))
        else:
            if not _finalize(s, run, dispatcher):
                run_id = run.id
                after_commit(s, lambda: maybe_finish(sf, run_id))


def _continue_best_half(s: Session, it: Iteration, run: Run, dispatcher: Dispatcher) -> bool:
    """Continue the better half of the screened candidates to the full budget; False when none is left to train."""
    screened = sorted((c for c in it.candidates if c.status == "screened"), key=lambda c: c.fitness, reverse=True)
    keep = screened[: math.ceil(len(screened) / 2)]
    made = []
    for c in keep:
        screen = next(t for t in reversed(c.trainings) if t.purpose == "screen" and t.status == "ok")
        c.status = "queued"
        made.append(
            new_training(s, c, purpose="full", timesteps=run.task.timesteps, seed=run.task.seed, resume_from=screen)
        )
    for c in screened[len(keep) :]:
        c.status = "trained"
        c.critic = [
            *list(c.critic or []),
            {
                "stage": "successive halving",
                "verdict": "stopped",
                "text": "stopped after screening: its fitness was in the lower half",
            },
        ]
    if run.status != "running":
        for t in made:
            t.status = "cancelled"
        return True
    dispatch_after_commit(s, dispatcher, made)
    return bool(made)


def _finalize(s: Session, run: Run, dispatcher: Dispatcher) -> bool:
    """After the last iteration: re-evaluate the best on more seeds; False when there is nothing to wait for."""
    best = s.get(Candidate, run.best_candidate_id) if run.best_candidate_id else None
    if best is None:
        errors = [c.error for c in run.candidates if c.error][:3]
        set_status(
            run,
            "failed",
            error="no candidate could be trained; the last errors were: " + " | ".join(errors or ["none recorded"]),
        )
        run.phase = "done"
        return True
    run.phase = "final"
    seeds = int(run.task.options.get("final_seeds", 3))
    made = [
        new_training(s, best, purpose="final", timesteps=run.task.timesteps, seed=run.task.seed + 1000 + i)
        for i in range(seeds)
    ]
    dispatch_after_commit(s, dispatcher, made)
    return bool(made)


def maybe_finish(sf: sessionmaker, run_id: int) -> None:
    """When the final re-evaluation and the baselines have ended: the final figures, then succeeded."""
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        if run is None or run.phase != "final" or run.status != "running":
            return
        pending = s.scalar(
            select(func.count(Training.id)).where(
                Training.run_id == run_id,
                Training.purpose.in_(("final", "baseline")),
                Training.status.not_in(TRAINING_TERMINAL),
            )
        )
        if pending:
            return
        res = s.execute(update(Run).where(Run.id == run_id, Run.phase == "final").values(phase="done"))
        if res.rowcount != 1:
            return
        s.refresh(run)
        run.final = final_figures(s, run)
        run.usage = run_usage(s, run_id)
        set_status(run, "succeeded")


def final_figures(s: Session, run: Run) -> dict:
    """The best candidate's fitness over the final seeds and, where baselines ran, its normalized score."""
    best = s.get(Candidate, run.best_candidate_id)
    finals = [t for t in best.trainings if t.purpose == "final" and t.status == "ok"]
    values = [best.fitness] + [t.result["fitness"]["mean"] for t in finals]
    out: dict = {
        "best_candidate_id": best.id,
        "seeds": [run.task.seed] + [t.seed for t in finals],
        "fitness_per_seed": values,
        "fitness_mean": sum(values) / len(values),
        "fitness_std": float((sum((v - sum(values) / len(values)) ** 2 for v in values) / len(values)) ** 0.5),
        "failed_seeds": [t.seed for t in best.trainings if t.purpose == "final" and t.status != "ok"],
    }
    base = {c.origin: c for c in run.candidates if c.origin.startswith("baseline")}
    ref, sparse = base.get("baseline-reference"), base.get("baseline-sparse")
    if ref and ref.fitness is not None and ref.fitness > 0:
        out["fitness_over_reference"] = best.fitness / ref.fitness
    if ref and sparse and ref.fitness is not None and sparse.fitness is not None:
        out["baselines"] = {"reference": ref.fitness, "sparse": sparse.fitness}
        out["normalized_score"], out["normalized_score_note"] = normalized_score(
            best.fitness, ref.fitness, sparse.fitness
        )
    return out


SEPARATION = 0.05
"""The reference and sparse baselines must differ by this share of their magnitude for a normalized score."""


def normalized_score(best: float, reference: float, sparse: float) -> tuple[float | None, str]:
    """Eureka's (F - F_sparse) / (F_reference - F_sparse), or None with the reason when it would be noise."""
    gap = reference - sparse
    if abs(gap) < SEPARATION * max(abs(reference), abs(sparse), 1e-9):
        return None, (
            f"not given: the reference reward ({reference:.4g}) and the fitness used as reward "
            f"({sparse:.4g}) reached about the same fitness, so the ratio would be noise; "
            "compare with the reference reward directly (fitness_over_reference)"
        )
    return (
        best - sparse
    ) / gap, "(F - F_sparse) / (F_reference - F_sparse) at equal budget and seed, F the best candidate's fitness"


def sweep(sf: sessionmaker, dispatcher: Dispatcher, settings: Settings) -> int:
    """Start runs whose start message was lost and kick running ones whose trainings were orphaned."""
    waited = utcnow().timestamp() - settings.sweep_seconds
    with session_scope(sf) as s:
        ids = list(s.scalars(select(Run.id).where(Run.status == "running")))
        queued = [
            r.id for r in s.scalars(select(Run).where(Run.status == "queued")) if r.created_at.timestamp() < waited
        ]
    for run_id in queued:
        start(sf, run_id, dispatcher, settings)
    for run_id in ids:
        kick(sf, run_id, dispatcher, settings, full=False)
    return len(ids) + len(queued)
