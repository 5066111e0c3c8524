"""A run as one JSON document: ``run.json`` of `rewardsmith run`, the benchmarks' records, the tests' view."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

import app.search.design.learner as learner
import app.search.design.verdict as verdict
from app.config import Settings
from app.db.models import Candidate, Run
from app.search.design.diagnostics import findings, run_findings
from app.search.design.offline import LABEL as OFFLINE_LABEL
from app.search.records.candidates import describing_training
from app.search.records.choices import selection_dict
from app.search.records.progress import run_progress
from app.search.records.proposals import proposal_dict, proposals_of
from app.search.records.runs import summary
from app.search.rules.numbering import iteration_number
from app.search.rules.states import DesignerKind


def designer_label(run: Run, model: str | None) -> str:
    """Who designed the run's candidates, as every page names it."""
    return OFFLINE_LABEL if run.task.designer == DesignerKind.OFFLINE else f"LLM designer ({model or 'unknown model'})"


def lineage_dict(c: Candidate) -> dict[str, Any] | None:
    """The steps behind a candidate's policy: its own, its ancestors' (when it started from its parent's policy), and
    their total; None before it trained."""
    if c.steps_own is None:
        return None
    ancestors = c.steps_ancestors or 0
    return {
        "steps_own": c.steps_own,
        "steps_ancestors": ancestors,
        "steps_total": c.steps_own + ancestors,
        "started_from": "its parent's policy" if ancestors else "scratch",
    }


def candidate_dict(c: Candidate, *, with_code: bool = True) -> dict[str, Any]:
    """A candidate as ``run.json`` has it: its outcome, its trainings, and (``with_code``) its program."""
    main = describing_training(c)
    out: dict[str, Any] = {
        "id": c.id,
        "iteration": iteration_number(c.iteration.index) if c.iteration is not None else None,
        "index": c.index,
        "origin": c.origin,
        "parent_id": c.parent_id,
        "status": c.status,
        "error": c.error,
        "fitness": c.fitness,
        "fitness_std": c.fitness_std,
        "critic": c.critic,
        "reflection": c.reflection,
        "diagnostics": findings(c),
        "duplicate_of": c.duplicate_of_id,
        "screen": c.screen,
        "lineage": lineage_dict(c),
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
                "artifacts_key": t.artifacts_key,
                "learner": learner.final(t.result or {}),
                "continue_from_parent": t.continue_from_parent,
                "warm_start_from_training": t.warm_start_from_id,
                "warm_start": (t.result or {}).get("warm_start"),
            }
            for t in c.trainings
        ],
    }
    if main is not None:
        out["components"] = (main.result or {}).get("components", {})
        out["fitness_curve"] = [cp.get("fitness") for cp in (main.result or {}).get("checkpoints", [])]
        out["learner"] = verdict.summary(main.result or {}, findings(c))
    if with_code:
        out["code"] = c.code
    return out


def run_dict(
    session: Session, run: Run, *, model: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Everything about a run: task, iterations with their candidates, the best candidate, usage, final figures,
    and (given the ``settings`` its rate is measured under) its progress: elapsed time, ETA, trainings and steps
    done out of its budget, tokens and cost."""
    task = run.task
    best = session.get(Candidate, run.best_candidate_id) if run.best_candidate_id else None
    doc = {
        "run_id": run.id,
        "task_id": task.id,
        "status": run.status,
        "summary": summary(run),
        "error": run.error,
        "diagnostics": run_findings(run),
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
                "iteration": iteration_number(it.index),
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
    if settings is not None:
        doc["progress"] = run_progress(session, run, settings).as_dict()
    return doc
