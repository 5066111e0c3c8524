"""View models for the dashboard's pages (plain dicts the templates read)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

import app.dashboard.curves as curves
import app.web.people as web_people
from app.config import Settings
from app.dashboard.learner import table as learner_table
from app.dashboard.people_views import run_people
from app.dashboard.plots import scatter_by_iteration
from app.dashboard.render import code_html, diff_html
from app.db.models import Candidate, Run, Task, User
from app.errors import InvalidInput
from app.search.design.diagnostics import findings
from app.search.records.candidates import describing_training, watched_training
from app.search.records.run_json import designer_label
from app.search.records.runs import pending_feedback
from app.search.rules.fitness import FitnessKind
from app.search.rules.hyperparams import read_hyperparams
from app.search.rules.states import RUN_ACTIVE, CandidateStatus, RunStatus, Selection
from app.search.rules.task import default
from app.search.service import TaskSpec
from app.web import access, files, present
from workers.engine.result import TrainingResult


def run_rows(session: Session, user: User, *, status: str, env: str, q: str, settings: Settings) -> list[dict]:
    query = access.visible_tasks(user).limit(200)
    if env:
        query = query.where(Task.env == env)
    if q:
        query = query.where(Task.description.ilike(f"%{q}%"))
    rows = []
    for task in session.scalars(query):
        for run in reversed(task.runs):
            if status and run.status != status:
                continue
            out = present.run_out(session, run, settings)
            rows.append(
                {
                    "run": out,
                    "task": task,
                    "status": run.status,
                    "owner": owner.name if (owner := task.owner_id and session.get(User, task.owner_id)) else "cli",
                }
            )
    return rows


DEFAULT_FORM = {  # the new-task form as it first appears: the task's own defaults (TaskSpec), and an env to start from
    "env": "HalfCheetah-v5",
    "description": "",
    "fitness_kind": FitnessKind.METRIC,
    "metric": default("fitness"),
    "fitness_program": "",
    "designer": "",
    "iterations": default("iterations"),
    "samples": default("samples"),
    "timesteps": default("timesteps"),
    "seed": default("seed"),
    "wait_for_feedback": default("wait_for_feedback"),
    "successive_halving": default("options.successive_halving"),
    "baselines": default("options.baselines"),
    "final_seeds": default("options.final_seeds"),
    "continue_from_parent": default("options.continue_from_parent"),
    "trajectory_screen": default("options.trajectory_screen"),
    "episode_steps": "",
    "eval_episodes": default("options.train.eval_episodes"),
    "video": True,  # a person reviews rewards by watching them: the form asks for a video unless unticked
    "human_selection": default("selection") == Selection.HUMAN,
    "hyperparams": "",
}


FORM_INT_DIGITS = 10
"""Form numbers are stored in 32-bit columns; longer ones are refused before anything computes with them."""


def runs_list(session: Session, user: User, *, status: str, env: str, q: str, settings: Settings) -> dict:
    """The runs list as the page and its live table both show it: rows, the filters, whether any run is active."""
    rows = run_rows(session, user, status=status, env=env, q=q, settings=settings)
    return {
        "rows": rows,
        "filters": {"status": status, "env": env, "q": q},
        "active": any(r["status"] in RUN_ACTIVE for r in rows),
    }


def form_int(raw: object, *, field: str, label: str) -> int:
    """A whole number typed into a form, or InvalidInput (422) saying what was wrong."""
    text = str(raw if raw is not None else "").strip()
    digits = text.removeprefix("-").removeprefix("+")
    if not digits.isascii() or not digits.isdigit():
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise InvalidInput(f"{label} must be a whole number, got '{shown}'", field=field)
    if len(digits.lstrip("0")) > FORM_INT_DIGITS or abs(int(digits)) > access.MAX_ID:
        raise InvalidInput(f"{label} is too large: at most {access.MAX_ID:,}", field=field)
    return int(text)


def _int(values: dict, key: str, label: str) -> int:
    return form_int(values.get(key, ""), field=key, label=label)


CHECKBOXES = (
    "wait_for_feedback",
    "successive_halving",
    "baselines",
    "continue_from_parent",
    "trajectory_screen",
    "video",
    "human_selection",
)
"""Form fields sent only when ticked."""


def form_values(submitted: dict) -> dict:
    """The form as submitted, over the defaults; an unticked checkbox is not sent, so it reads as False."""
    return {**DEFAULT_FORM, **submitted, **{k: k in submitted for k in CHECKBOXES}}


def task_spec_from_form(values: dict) -> TaskSpec:
    fitness = values.get("metric", "forward_distance")
    if values.get("fitness_kind") == "program":
        fitness = values.get("fitness_program", "")
    elif values.get("fitness_kind") == FitnessKind.PROPOSE:
        fitness = FitnessKind.PROPOSE
    train: dict = {
        "eval_episodes": _int(values, "eval_episodes", "Evaluation episodes"),
        "video": bool(values.get("video")),
    }
    if str(values.get("episode_steps", "")).strip():
        train["episode_steps"] = _int(values, "episode_steps", "Episode length cap")
    hyperparams = str(values.get("hyperparams") or "")
    if hyperparams.strip():  # the same schema as the API's options.train.ppo and the CLI's --hyperparams
        train["ppo"] = read_hyperparams(hyperparams, env=str(values.get("env", "")), source="PPO hyperparameters")
    return TaskSpec.parse(
        {
            "env": values.get("env", ""),
            "description": values.get("description", ""),
            "fitness": fitness,
            "designer": values.get("designer") or None,
            "iterations": _int(values, "iterations", "Iterations"),
            "samples": _int(values, "samples", "Candidates per iteration"),
            "timesteps": _int(values, "timesteps", "Timesteps"),
            "seed": _int(values, "seed", "Seed"),
            "wait_for_feedback": bool(values.get("wait_for_feedback")),
            "selection": Selection.HUMAN if values.get("human_selection") else Selection.FITNESS,
            "options": {
                "successive_halving": bool(values.get("successive_halving")),
                "baselines": bool(values.get("baselines")),
                "final_seeds": _int(values, "final_seeds", "Final seeds"),
                "continue_from_parent": bool(values.get("continue_from_parent")),
                "trajectory_screen": bool(values.get("trajectory_screen")),
                "train": train,
            },
        }
    )


def fitness_plot(run: Run) -> str:
    best = run.best_candidate_id
    pts = [
        (c.iteration.index, c.fitness, f"#{c.id}", c.id == best)
        for c in run.candidates
        if c.iteration is not None and c.fitness is not None
    ]
    return scatter_by_iteration(
        pts,
        title=f"fitness ({run.task.fitness_name}) of each candidate",
        y_label=run.task.fitness_name,
        references=curves.baseline_references(run),
    )


def run_view(session: Session, run: Run, settings: Settings) -> dict:
    out = present.run_out(session, run, settings)
    best = session.get(Candidate, run.best_candidate_id) if run.best_candidate_id else None
    baselines = [c for c in run.candidates if c.origin.is_baseline]
    return {
        "run": run,
        "out": out,
        "task": run.task,
        "iterations": run.iterations,
        "best": best,
        "baselines": baselines,
        "plot": fitness_plot(run),
        "curves": curves.run_fitness_curves(run),
        "pending_feedback": len(pending_feedback(session, run_id=run.id)),
        "designer": designer_label(run, settings.llm_model),
        "live": run.status in RUN_ACTIVE,
        "people": run_people(session, run),
    }


def component_plots(result: TrainingResult, run: Run | None = None) -> list[str]:
    """A training's charts (``curves.candidate_plots``), against ``run``'s baselines where given."""
    return curves.candidate_plots(result, references=curves.baseline_references(run) if run is not None else None)


def candidate_live(c: Candidate) -> dict:
    """The candidate page's live part: its charts and learner table from the training a person watches (the one
    running now, its checkpoints streaming in), and whether the page should keep polling."""
    watched = watched_training(c)
    result = (watched.result or {}) if watched else {}
    return {
        "c": c,
        "plots": component_plots(result, c.run),
        "learner": learner_table(result, findings(c)),
        "watched": watched,
        "polling": c.run.status in RUN_ACTIVE
        and (c.status in (CandidateStatus.QUEUED, CandidateStatus.TRAINING, CandidateStatus.PENDING)),
    }


def candidate_view(session: Session, c: Candidate, settings: Settings) -> dict:
    main = describing_training(c)
    result = (main.result or {}) if main else {}
    parent = session.get(Candidate, c.parent_id) if c.parent_id else None
    links = present.artifacts(c, store=files.artifact_store(settings), base="")
    video = next((a for a in reversed(links) if a.name == "video.mp4"), None)
    siblings = list(session.scalars(select(Candidate).where(Candidate.run_id == c.run_id).order_by(Candidate.id)))
    return {
        "c": c,
        "task": c.run.task,
        "run": c.run,
        "code": code_html(c.code),
        "parent": parent,
        "diff": diff_html(parent.code, c.code, f"candidate {parent.id}", f"candidate {c.id}") if parent else None,
        **candidate_live(c),
        "result": result,
        "episodes": result.get("episodes", []),
        "fitness": result.get("fitness"),
        "links": links,
        "video": video,
        "video_seconds": web_people.video_seconds(c) if video else None,
        "main": main,
        "diagnostics": findings(c),
        "siblings": siblings,
        "feedback": c.feedback,
        "waiting": c.run.status == RunStatus.WAITING_FEEDBACK,
    }


def compare_view(session: Session, a: Candidate, b: Candidate, settings: Settings) -> dict:
    sides = []
    for c in (a, b):
        main = describing_training(c)
        result = (main.result or {}) if main else {}
        links = present.artifacts(c, store=files.artifact_store(settings), base="")
        sides.append(
            {
                "c": c,
                "code": code_html(c.code),
                "plots": component_plots(result, c.run),
                "video": next((x for x in reversed(links) if x.name == "video.mp4"), None),
                "fitness": result.get("fitness"),
            }
        )
    return {
        "sides": sides,
        "overlay": curves.overlay([a, b]),
        "diff": diff_html(a.code, b.code, f"candidate {a.id}", f"candidate {b.id}"),
    }
