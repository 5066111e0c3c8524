"""The end of a run: re-evaluate the best candidate on more seeds, then the final figures.

``final_figures`` compares the best candidate with the baselines trained at the same budget
and seed; the normalized score is only given when it would not be noise.
"""

from __future__ import annotations

import statistics

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import after_commit, session_scope
from app.db.models import Candidate, Run, Training
from app.search.records.dispatch import Dispatcher
from app.search.records.ledger import dispatch_after_commit, new_training, run_usage
from app.search.records.runs import set_status, update_diagnostics
from app.search.rules.options import options_of
from app.search.rules.states import TRAINING_TERMINAL, Origin, Purpose, RunPhase, RunStatus, TrainingStatus

FINAL_SEED_OFFSET = 1000
"""Final re-evaluation seeds are the task's seed + 1000 + i: apart from the seed the search selected on."""


def finalize(s: Session, run: Run, dispatcher: Dispatcher, sf: sessionmaker) -> None:
    """After the last iteration: re-train the best on more seeds (then finish), or fail when nothing was trained."""
    best = s.get(Candidate, run.best_candidate_id) if run.best_candidate_id else None
    if best is None:
        errors = [c.error for c in run.candidates if c.error][:3]
        set_status(
            run,
            RunStatus.FAILED,
            error="no candidate could be trained; the last errors were: " + " | ".join(errors or ["none recorded"]),
        )
        run.phase = RunPhase.DONE
        return
    run.phase = RunPhase.FINAL
    task = run.task
    # the reference reward is re-trained on the same fresh seeds: the yardstick compares the two where neither
    # was selected
    reference = next((c for c in run.candidates if c.origin == Origin.BASELINE_REFERENCE), None)
    programs = [best] + ([reference] if reference is not None and options_of(task).baselines else [])

    def trained(c: Candidate, seed: int) -> bool:  # a continued run does not train a seed twice
        return any(t.purpose == Purpose.FINAL and t.seed == seed and t.status == TrainingStatus.OK for t in c.trainings)

    seeds = [task.seed + FINAL_SEED_OFFSET + i for i in range(options_of(task).final_seeds)]
    made = [
        new_training(s, c, purpose=Purpose.FINAL, timesteps=task.timesteps, seed=seed)
        for seed in seeds
        for c in programs
        if not trained(c, seed)
    ]
    dispatch_after_commit(s, dispatcher, made)
    if not made:
        run_id = run.id
        after_commit(s, lambda: maybe_finish(sf, run_id))


def maybe_finish(sf: sessionmaker, run_id: int) -> None:
    """When the final re-evaluation and the baselines have ended: the final figures, then succeeded."""
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        if run is None or run.phase != RunPhase.FINAL or run.status != RunStatus.RUNNING:
            return
        pending = s.scalar(
            select(func.count(Training.id)).where(
                Training.run_id == run_id,
                Training.purpose.in_((Purpose.FINAL, Purpose.BASELINE)),
                Training.status.not_in(TRAINING_TERMINAL),
            )
        )
        if pending:
            return
        res = s.execute(update(Run).where(Run.id == run_id, Run.phase == RunPhase.FINAL).values(phase=RunPhase.DONE))
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return
        s.refresh(run)
        update_diagnostics(run)
        run.final = final_figures(s, run)
        run.usage = run_usage(s, run_id)
        set_status(run, RunStatus.SUCCEEDED)


def final_figures(s: Session, run: Run) -> dict:
    """The best candidate's fitness over the final seeds and, where baselines ran, its normalized score."""
    best = s.get(Candidate, run.best_candidate_id)
    assert best is not None and best.fitness is not None
    finals = [t for t in best.trainings if t.purpose == Purpose.FINAL and t.status == TrainingStatus.OK]
    values = [best.fitness] + [float(fit["mean"]) for t in finals if (fit := t.result.get("fitness"))]
    out: dict = {
        "best_candidate_id": best.id,
        "seeds": [run.task.seed] + [t.seed for t in finals],
        "fitness_per_seed": values,
        "fitness_mean": statistics.fmean(values),
        "fitness_std": statistics.pstdev(values),
        "failed_seeds": [
            t.seed for t in best.trainings if t.purpose == Purpose.FINAL and t.status != TrainingStatus.OK
        ],
    }
    base = {c.origin: c for c in run.candidates if c.origin.is_baseline}
    ref, sparse = base.get(Origin.BASELINE_REFERENCE), base.get(Origin.BASELINE_SPARSE)
    if ref and ref.fitness is not None and ref.fitness > 0:
        out["fitness_over_reference"] = best.fitness / ref.fitness
    if ref and sparse and ref.fitness is not None and sparse.fitness is not None:
        out["baselines"] = {"reference": ref.fitness, "sparse": sparse.fitness}
        out["normalized_score"], out["normalized_score_note"] = normalized_score(
            best.fitness, ref.fitness, sparse.fitness
        )
    if ref is not None:
        out["yardstick"] = yardstick(best, ref)
    return out


def _fresh(c: Candidate) -> dict[int, float]:
    """Seed -> fitness of ``c``'s final re-trainings that succeeded."""
    return {
        t.seed: float(fit["mean"])
        for t in c.trainings
        if t.purpose == Purpose.FINAL and t.status == TrainingStatus.OK and (fit := t.result.get("fitness"))
    }


def yardstick(best: Candidate, reference: Candidate) -> dict:
    """The best candidate against the env's reference reward on the fresh seeds both were re-trained on.

    Neither was selected on these seeds, so the comparison is not flattered by the search's choice.
    ``ratio`` is given only when the reference's mean is positive (a ratio of negative fitness values misleads).
    """
    mine, theirs = _fresh(best), _fresh(reference)
    seeds = sorted(set(mine) & set(theirs))
    if not seeds:
        return {
            "seeds": [],
            "note": "not measured: no fresh seed on which both the best candidate and the reference reward were "
            "re-trained (final_seeds 0, or those trainings failed)",
        }
    b, r = statistics.fmean(mine[x] for x in seeds), statistics.fmean(theirs[x] for x in seeds)
    return {
        "seeds": seeds,
        "best_per_seed": [mine[x] for x in seeds],
        "reference_per_seed": [theirs[x] for x in seeds],
        "best_mean": b,
        "reference_mean": r,
        "difference": b - r,
        "ratio": b / r if r > 0 else None,
        "best_at_least_reference": b >= r,
    }


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
