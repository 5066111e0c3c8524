"""A candidate's row as the steps and the pages read it: the training that describes it, how prompts name it, the
one line the next prompt gets about it, and its figures for the run's diagnostics."""

from __future__ import annotations

from collections.abc import Iterable

from app.db.models import Candidate, Training
from app.search.design.diagnostics import Code, findings, kinds
from app.search.design.run_diagnosis import Scored
from app.search.rules.states import CandidateStatus, Origin, Purpose, TrainingStatus

DESCRIBING_PURPOSES = (Purpose.FULL, Purpose.SCREEN, Purpose.BASELINE)
"""Which training describes a candidate, in order of preference: the full budget, else screening, else a baseline's
(final re-evaluations on other seeds never do)."""


def describing_training(c: Candidate) -> Training | None:
    """The training whose statistics describe ``c``: the latest successful one of the first purpose in
    ``DESCRIBING_PURPOSES`` that has one; else its latest training of those purposes (failed, say), else None.

    ``run.json``, the API and the dashboard all describe a candidate by this training.
    """
    for purpose in DESCRIBING_PURPOSES:
        for t in reversed(c.trainings):
            if t.purpose == purpose and t.status == TrainingStatus.OK:
                return t
    return next((t for t in reversed(c.trainings) if t.purpose in DESCRIBING_PURPOSES), None)


def watched_training(c: Candidate) -> Training | None:
    """The training whose curves a person watches: the one running now (its checkpoints stream in), else the
    describing one (``describing_training``)."""
    running = (
        t for t in reversed(c.trainings) if t.purpose in DESCRIBING_PURPOSES and t.status == TrainingStatus.RUNNING
    )
    return next(running, None) or describing_training(c)


def label(c: Candidate) -> str:
    """How prompts name a candidate: its round and place in the run ('2.1': round 2, first sample), not its database
    id, so that a re-run of the same task sends the same prompts (and gets its answers from the cache)."""
    if c.iteration is None:
        return c.origin
    return f"{c.iteration.index + 1}.{c.index + 1}"


def summarize(c: Candidate) -> str:
    """One line about a trained candidate for the next prompt."""
    comps = ", ".join((c.dry_run or {}).get("components", [])) or "no components"
    found = ", ".join(f["kind"] for f in findings(c)) or "no issues found"
    fit = f"{c.fitness:.4g}" if c.fitness is not None else "n/a"
    return f"fitness {fit}; components {comps}; diagnostics: {found}"


def scored_of(candidates: Iterable[Candidate]) -> list[Scored]:
    """The designed candidates that were trained and have a fitness (baselines and failures left out)."""
    out = []
    for c in candidates:
        if Origin(c.origin).is_baseline or c.status != CandidateStatus.TRAINED or c.fitness is None:
            continue
        t = describing_training(c)
        cps = (t.result or {}).get("checkpoints", []) if t is not None else []
        curve = [float(cp["fitness"]) for cp in cps if cp.get("fitness") is not None]
        hacking = Code.REWARD_HACKING in kinds(c)
        out.append(Scored(c.id, float(c.fitness), float(c.fitness_std or 0.0), curve, hacking))
    return out
