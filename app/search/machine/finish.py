"""The end of a run: re-evaluate the best candidate on more seeds, then the final figures.

``final_figures`` compares the best candidate with the baselines trained at the same budget
and seed; every comparison is judged against a noise band from the seeds' spread
(``app.search.design.noise``), and the normalized score is only given where its denominator
(the reference above the fitness used as reward) is larger than that noise.
"""

from __future__ import annotations

import statistics

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

import app.search.design.noise as noise
from app.db import after_commit, session_scope
from app.db.models import Candidate, Run, Training
from app.search.design.diagnostics import Code, RunFinding, run_findings, stored
from app.search.records.dispatch import Dispatcher
from app.search.records.ledger import dispatch_after_commit, new_training, policy_of, refresh_usage
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
    made += lineage_evaluations(s, best, task.seed, options_of(task).final_seeds)
    if reference is not None and options_of(task).baselines:
        made += reference_to_lineage_steps(s, best, reference, task.seed, options_of(task).final_seeds)
    dispatch_after_commit(s, dispatcher, made)
    if not made:
        run_id = run.id
        after_commit(s, lambda: maybe_finish(sf, run_id))


def lineage_evaluations(s: Session, best: Candidate, seed: int, seeds: int) -> list[Training]:
    """When the best candidate's policy started from its parent's: that policy, as it is, evaluated on the fresh
    seeds (a "training" continued to the steps it already has: it trains nothing, it is measured)."""
    source = policy_of(best)
    if not best.steps_ancestors or source is None:
        return []
    steps = int((source.result or {}).get("timesteps") or source.timesteps)
    return [
        new_training(
            s, best, purpose=Purpose.LINEAGE, timesteps=steps, seed=seed + FINAL_SEED_OFFSET + i, resume_from=source
        )
        for i in range(seeds)
    ]


def reference_to_lineage_steps(
    s: Session, best: Candidate, reference: Candidate, seed: int, seeds: int
) -> list[Training]:
    """When the best candidate's policy has ancestors: the reference reward's baseline policy trained on to the
    lineage's total steps, one continuation per fresh seed (each trains the steps the lineage has beyond the
    baseline's on that seed, then is measured there), so the lineage policy meets a reference of equal steps."""
    if not best.steps_ancestors:
        return []
    baseline = next(
        (
            t
            for t in reference.trainings
            if t.purpose == Purpose.BASELINE and t.status == TrainingStatus.OK and t.artifacts_key
        ),
        None,
    )
    if baseline is None:
        return []
    total = (best.steps_own or 0) + best.steps_ancestors
    return [
        new_training(
            s,
            reference,
            purpose=Purpose.LINEAGE,
            timesteps=total,
            seed=seed + FINAL_SEED_OFFSET + i,
            resume_from=baseline,
        )
        for i in range(seeds)
    ]


def maybe_finish(sf: sessionmaker, run_id: int) -> None:
    """When the final re-evaluation and the baselines have ended: the final figures, then succeeded."""
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        if run is None or run.phase != RunPhase.FINAL or run.status != RunStatus.RUNNING:
            return
        pending = s.scalar(
            select(func.count(Training.id)).where(
                Training.run_id == run_id,
                Training.purpose.in_((Purpose.FINAL, Purpose.BASELINE, Purpose.LINEAGE)),
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
        finding = needs_warm_start((run.final or {}).get("lineage") or {})
        if finding is not None:  # after the search's own diagnostics: it is measured on the final seeds
            run.diagnostics = stored([*run_findings(run), finding])
        refresh_usage(s, run)
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
        band = noise.noise_band(list(_per_seed(ref).values()), list(_per_seed(sparse).values()))
        out["normalized_score"], out["normalized_score_note"] = normalized_score(
            best.fitness, ref.fitness, sparse.fitness, band=band
        )
    if ref is not None:
        out["yardstick"] = yardstick(best, ref)
    out["lineage"] = lineage_figures(best, ref, run.task.timesteps)
    return out


def _evaluated(c: Candidate) -> dict[int, float]:
    """Seed -> fitness of ``c``'s own policy evaluated on the fresh seeds (``Purpose.LINEAGE``)."""
    return {
        t.seed: float(fit["mean"])
        for t in c.trainings
        if t.purpose == Purpose.LINEAGE and t.status == TrainingStatus.OK and (fit := t.result.get("fitness"))
    }


def lineage_figures(best: Candidate, reference: Candidate | None, timesteps: int) -> dict:
    """The two things the run delivers, side by side on the same fresh seeds: the best reward retrained from scratch
    (what a user who takes the reward elsewhere gets), and the best lineage policy (started from its ancestors'
    policies) evaluated as it is; each with the steps behind it and the reference reward's figure."""
    own, ancestors = best.steps_own or 0, best.steps_ancestors or 0
    out: dict = {
        "steps_own": own,
        "steps_ancestors": ancestors,
        "steps_total": own + ancestors,
        "scratch_steps": timesteps,
    }
    if not ancestors:
        out["note"] = (
            "the best candidate's policy trained from scratch: the best reward retrained from scratch (the "
            "yardstick) is the whole story"
        )
        return out
    policy, scratch = _evaluated(best), _fresh(best)
    seeds = sorted(set(policy) & set(scratch))
    out["seeds"] = seeds
    if not seeds:
        out["note"] = (
            "not measured: no fresh seed on which both the lineage policy and the retrained reward were measured"
        )
        return out
    out["policy_per_seed"] = [policy[x] for x in seeds]
    out["scratch_per_seed"] = [scratch[x] for x in seeds]
    out["policy_mean"] = statistics.fmean(out["policy_per_seed"])
    out["scratch_mean"] = statistics.fmean(out["scratch_per_seed"])
    equal = _evaluated(reference) if reference is not None else {}
    theirs = _fresh(reference) if reference is not None else {}
    if seeds and all(x in equal for x in seeds):
        out["reference_per_seed"] = [equal[x] for x in seeds]
        out["reference_mean"] = statistics.fmean(out["reference_per_seed"])
        out["reference_steps"] = own + ancestors
        band = noise.noise_band(list(policy.values()), list(equal.values()))
        out["verdict"] = noise.compare(out["policy_mean"] - out["reference_mean"], band)
        said = f"the env's reference reward trained for the lineage's {own + ancestors:,} steps"
    elif all(x in theirs for x in seeds):
        out["reference_mean"] = statistics.fmean(theirs[x] for x in seeds)
        out["reference_steps"] = timesteps
        said = (
            f"the env's reference reward trained for {timesteps:,} steps (not for the lineage's {own + ancestors:,}: "
            "its continuation did not run or failed)"
        )
    else:
        said = "not measured (no baselines, or their trainings failed)"
    out["note"] = (
        f"policy_mean: the best lineage policy ({own:,} steps of its own after {ancestors:,} of its ancestors') "
        f"evaluated on fresh seeds; scratch_mean: the same reward retrained from scratch for {timesteps:,} steps on "
        f"those seeds; reference_mean: {said}, on the same seeds"
    )
    return out


WARM_START_MARGIN = 1.5
"""The lineage policy beats the reward from scratch "by far" at this ratio of their fitness (and by more than
``WARM_START_SHARE`` of the larger's magnitude)."""
WARM_START_SHARE = 0.1


def needs_warm_start(lineage: dict) -> RunFinding | None:
    """The run diagnostic when the best lineage policy beat the same reward trained from scratch by a wide margin."""
    policy, scratch = lineage.get("policy_mean"), lineage.get("scratch_mean")
    if not isinstance(policy, float) or not isinstance(scratch, float):
        return None
    wide = policy - scratch > WARM_START_SHARE * max(abs(policy), abs(scratch), 1e-9) and (
        scratch <= 0 or policy >= WARM_START_MARGIN * scratch
    )
    if not wide:
        return None
    return {
        "code": Code.NEEDS_WARM_START,
        "message": f"the best lineage policy reached fitness {policy:.4g} on fresh seeds, the same reward retrained "
        f"from scratch {scratch:.4g}: the reward works as a stage after its ancestors' rewards (a curriculum), not "
        "on its own",
        "numbers": {"policy_mean": policy, "scratch_mean": scratch, "steps_total": lineage.get("steps_total")},
        "advice": "keep continue_from_parent on; to use the reward elsewhere, train its ancestors' rewards first, or "
        "write one reward that also pays for what the earlier stages taught (standing, then moving)",
    }


def _fresh(c: Candidate) -> dict[int, float]:
    """Seed -> fitness of ``c``'s final re-trainings that succeeded."""
    return {
        t.seed: float(fit["mean"])
        for t in c.trainings
        if t.purpose == Purpose.FINAL and t.status == TrainingStatus.OK and (fit := t.result.get("fitness"))
    }


def _per_seed(c: Candidate) -> dict[int, float]:
    """Seed -> fitness of every full-budget training of ``c`` that succeeded (the search's, the baseline's, the final
    re-trainings'): the spread across seeds that a comparison's noise band is measured from."""
    full = (Purpose.FULL, Purpose.BASELINE, Purpose.FINAL)
    return {
        t.seed: float(fit["mean"])
        for t in c.trainings
        if t.purpose in full and t.status == TrainingStatus.OK and (fit := t.result.get("fitness"))
    }


def yardstick(best: Candidate, reference: Candidate) -> dict:
    """The best candidate against the env's reference reward on the fresh seeds both were re-trained on.

    Neither was selected on these seeds, so the comparison is not flattered by the search's choice.
    ``ratio`` is given only when the reference's mean is positive (a ratio of negative fitness values misleads).
    ``best_at_least_reference`` is True only when the best is above the reference by more than the noise band
    (from each one's spread across all the seeds it was trained on), False when below by more, None otherwise.
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
    band = noise.noise_band(list(_per_seed(best).values()), list(_per_seed(reference).values()))
    verdict = noise.compare(b - r, band)
    return {
        "seeds": seeds,
        "best_per_seed": [mine[x] for x in seeds],
        "reference_per_seed": [theirs[x] for x in seeds],
        "best_mean": b,
        "reference_mean": r,
        "difference": b - r,
        "noise_band": band,
        "verdict": verdict,
        "verdict_note": _YARDSTICK_NOTES[verdict].format(d=b - r, band=band or 0.0),
        "ratio": b / r if r > 0 else None,
        "best_at_least_reference": {noise.Verdict.ABOVE: True, noise.Verdict.BELOW: False}.get(verdict),
    }


_YARDSTICK_NOTES = {
    noise.Verdict.ABOVE: "above the reference reward by {d:.4g}, more than the seeds' noise (±{band:.3g})",
    noise.Verdict.BELOW: "below the reference reward by {d:.4g}, more than the seeds' noise (±{band:.3g})",
    noise.Verdict.WITHIN_NOISE: "as good as the reference reward: the difference ({d:.3g}) is within the seeds' "
    "noise (±{band:.3g})",
    noise.Verdict.CANNOT_TELL: "cannot tell better from worse: each was trained on one seed only, so there is no "
    "spread to judge the difference ({d:.3g}) by (final_seeds 1 or more gives one)",
}


def normalized_score(best: float, reference: float, sparse: float, *, band: float | None) -> tuple[float | None, str]:
    """Eureka's (F - F_sparse) / (F_reference - F_sparse), or None with the reason where its denominator means
    nothing: the reference reward must beat the fitness used as reward by more than the seeds' noise ``band``."""
    gap = reference - sparse
    verdict = noise.compare(gap, band)
    if verdict == noise.Verdict.ABOVE:
        return (best - sparse) / gap, (
            "0 is the fitness used as reward, 1 the env's own reward, at equal budget and seed "
            f"({sparse:.4g} and {reference:.4g}); above 1, the best beat the env's own reward"
        )
    why = {
        noise.Verdict.BELOW: "scored below the fitness used as reward",
        noise.Verdict.WITHIN_NOISE: f"is within the seeds' noise (±{band or 0.0:.3g}) of the fitness used as reward",
        noise.Verdict.CANNOT_TELL: "and the fitness used as reward were each trained on one seed, so their "
        "difference cannot be told from noise",
    }[verdict]
    return None, (
        f"not shown: the env's own reward ({reference:.4g}) {why} ({sparse:.4g}), so the ratio's denominator "
        "means nothing; compare with the reference reward directly"
    )
