"""A run as one JSON document (`run.json`) and the best reward as a file."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import Candidate, Run, Training
from app.search import run_diagnostics
from app.search.offline import LABEL as OFFLINE_LABEL
from app.search.proposals import proposal_dict, proposals_of
from app.search.selection import selection_dict
from app.search.states import Purpose, TrainingStatus

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


def designer_label(run: Run, model: str | None) -> str:
    return OFFLINE_LABEL if run.task.designer == "offline" else f"LLM designer ({model or 'unknown model'})"


def candidate_dict(c: Candidate, *, with_code: bool = True) -> dict:
    main = describing_training(c)
    out = {
        "id": c.id,
        "iteration": c.iteration.index if c.iteration is not None else None,
        "index": c.index,
        "origin": c.origin,
        "parent_id": c.parent_id,
        "status": c.status,
        "error": c.error,
        "fitness": c.fitness,
        "fitness_std": c.fitness_std,
        "critic": c.critic,
        "reflection": c.reflection,
        "diagnostics": (c.diagnostics or {}).get("items", []),
        "duplicate_of": c.duplicate_of_id,
        "trainings": [
            {
                "id": t.id,
                "purpose": t.purpose,
                "seed": t.seed,
                "timesteps": t.timesteps,
                "status": t.status,
                "error": t.error,
                "fitness": (t.result or {}).get("fitness"),
                "attempts": t.attempts,
                "artifacts_dir": t.artifacts_dir,
            }
            for t in c.trainings
        ],
    }
    if main is not None:
        out["components"] = (main.result or {}).get("components", {})
        out["fitness_curve"] = [cp.get("fitness") for cp in (main.result or {}).get("checkpoints", [])]
    if with_code:
        out["code"] = c.code
    return out


def run_dict(session: Session, run: Run, *, model: str | None = None) -> dict:
    """Everything about a run: task, iterations with their candidates, the best candidate, usage, final figures."""
    task = run.task
    best = session.get(Candidate, run.best_candidate_id) if run.best_candidate_id else None
    return {
        "run_id": run.id,
        "task_id": task.id,
        "status": run.status,
        "summary": run_diagnostics.summary(run),
        "error": run.error,
        "diagnostics": run_diagnostics.items_of(run),
        "designer": designer_label(run, model),
        "task": {
            "env": task.env,
            "description": task.description,
            "fitness": task.fitness_name,
            "fitness_source": task.fitness_source,
            "iterations": task.iterations,
            "samples": task.samples,
            "timesteps": task.timesteps,
            "seed": task.seed,
            "options": task.options,
            "selection": task.selection,
        },
        "iterations": [
            {
                "index": it.index,
                "status": it.status,
                "parent_id": it.parent_id,
                "context": it.context,
                "candidates": [candidate_dict(c) for c in it.candidates],
            }
            for it in run.iterations
        ],
        "baselines": [candidate_dict(c, with_code=False) for c in run.candidates if c.origin.is_baseline],
        "best_candidate": candidate_dict(best) if best else None,
        "final": run.final,
        "fitness_proposals": [proposal_dict(p) for p in proposals_of(session, run.id)],
        "selection": selection_dict(session, run),
        "usage": run.usage,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }
