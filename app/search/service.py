"""Tasks, runs, feedback: creating and steering searches. Keyword-only functions; callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

import envs
from app.config import Settings
from app.db import after_commit
from app.db.models import Candidate, Feedback, Run, Task, utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.search.dispatch import Dispatcher
from app.search.states import check_transition
from envs.fitness import METRICS
from workers.sandbox.policy import ProgramRejected, check_source

TRAIN_OPTIONS = {"eval_episodes", "episode_steps", "checkpoints", "checkpoint_episodes", "video", "video_steps", "ppo"}
DEFAULT_OPTIONS: dict = {
    "successive_halving": False,
    "screen_fraction": 0.25,
    "final_seeds": 3,
    "baselines": True,
    "max_repairs": 2,
    "critic_review": False,
    "train": {},
}


@dataclass
class TaskSpec:
    """What a user asks for; ``validate`` turns it into a task or says exactly what is wrong."""

    env: str
    description: str
    fitness: str = "forward_distance"
    designer: str | None = None
    iterations: int = 3
    samples: int = 4
    timesteps: int = 50_000
    seed: int = 0
    wait_for_feedback: bool = False
    options: dict = field(default_factory=dict)


def resolve_designer(requested: str | None, settings: Settings) -> str:
    if requested is None:
        return "llm" if settings.llm_configured else "offline"
    if requested not in ("llm", "offline"):
        raise InvalidInput(f"designer must be 'llm' or 'offline', not '{requested}'", field="designer")
    if requested == "llm" and not settings.llm_configured:
        raise InvalidInput(
            "designer 'llm' needs an LLM: set REWARDSMITH_LLM_MODEL and OPENAI_BASE_URL (or OPENAI_API_KEY), "
            "or choose designer 'offline'",
            field="designer",
        )
    return requested


def validate(spec: TaskSpec, settings: Settings) -> dict:
    """The task's column values, or InvalidInput naming the field and what to do."""
    try:
        envs.get_spec(spec.env)
    except envs.UnknownEnvError as e:
        raise InvalidInput(str(e), field="env") from None
    description = (spec.description or "").strip()
    if not description:
        raise InvalidInput(
            "describe the behaviour in words, e.g. 'make the cheetah run backwards'", field="description"
        )
    if len(description) > 4000:
        raise InvalidInput(
            f"the description has {len(description)} characters; keep it under 4000", field="description"
        )
    fitness = (spec.fitness or "").strip()
    if fitness in METRICS:
        fitness_name, fitness_source = fitness, None
    elif "def compute_fitness" in fitness:
        try:
            check_source(fitness, "fitness")
        except ProgramRejected as e:
            raise InvalidInput(str(e), field="fitness") from None
        fitness_name, fitness_source = "custom", fitness
    else:
        raise InvalidInput(
            f"unknown fitness '{fitness[:60]}': give a built-in metric ({', '.join(METRICS)}) or a fitness program "
            "defining compute_fitness(traj)",
            field="fitness",
        )
    for name, value, low, high in (
        ("iterations", spec.iterations, 1, 50),
        ("samples", spec.samples, 1, 32),
        ("timesteps", spec.timesteps, 1000, settings.max_timesteps_per_training),
    ):
        if not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"{name} must be an integer from {low:,} to {high:,}, got {value!r}", field=name)
    total = spec.iterations * spec.samples * spec.timesteps
    if total > settings.max_task_timesteps:
        raise InvalidInput(
            f"this task would train {total:,} steps (iterations × samples × timesteps = {spec.iterations} × "
            f"{spec.samples} × {spec.timesteps:,}), above the cap of {settings.max_task_timesteps:,}; "
            "lower one of them",
            field="timesteps",
        )
    options = {**DEFAULT_OPTIONS, **(spec.options or {})}
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise InvalidInput(f"unknown options {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}", field="options")
    bad_train = set(options["train"]) - TRAIN_OPTIONS
    if bad_train:
        raise InvalidInput(
            f"unknown training options {sorted(bad_train)}; known: {sorted(TRAIN_OPTIONS)}", field="options"
        )
    if not 0.05 <= float(options["screen_fraction"]) <= 0.9:
        raise InvalidInput("screen_fraction must be between 0.05 and 0.9", field="options")
    if not 0 <= int(options["final_seeds"]) <= 10:
        raise InvalidInput("final_seeds must be from 0 to 10", field="options")
    return {
        "env": spec.env,
        "description": description,
        "fitness_name": fitness_name,
        "fitness_source": fitness_source,
        "designer": resolve_designer(spec.designer, settings),
        "iterations": spec.iterations,
        "samples": spec.samples,
        "timesteps": spec.timesteps,
        "seed": spec.seed,
        "wait_for_feedback": spec.wait_for_feedback,
        "options": options,
    }


def create_task(
    session: Session, *, spec: TaskSpec, owner_id: int | None, settings: Settings, dispatcher: Dispatcher
) -> tuple[Task, Run]:
    """Validate and store a task with its first run; the run starts once the transaction commits."""
    task = Task(owner_id=owner_id, **validate(spec, settings))
    run = Run(task=task, status="queued", usage={}, final={})
    session.add_all([task, run])
    session.flush()
    run_id = run.id
    after_commit(session, lambda: dispatcher.start(run_id))
    return task, run


def get_run(session: Session, *, run_id: int) -> Run | None:
    return session.get(Run, run_id)


def get_run_or_raise(session: Session, *, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


def set_status(run: Run, target: str, *, error: str | None = None) -> None:
    """Move ``run`` along its state machine (IllegalTransition → 409 otherwise)."""
    check_transition(f"run {run.id}", run.status, target)
    run.status = target
    if target == "running" and run.started_at is None:
        run.started_at = utcnow()
    if target in ("succeeded", "failed", "cancelled"):
        run.finished_at = utcnow()
    if target == "running":
        run.error = None
        run.finished_at = None
    if error is not None:
        run.error = error


def cancel_run(session: Session, *, run: Run) -> Run:
    """Stop a run: queued trainings will not start, running ones are stopped at their next checkpoint."""
    set_status(run, "cancelled")
    return run


def resume_run(session: Session, *, run: Run, dispatcher: Dispatcher) -> Run:
    """Continue a run that waits for feedback, was cancelled, or failed; nothing done so far is redone."""
    if run.status == "queued":
        raise Conflict(
            f"run {run.id} is queued: it starts by itself as soon as a worker takes it; there is nothing to resume"
        )
    if run.status == "failed" and run.phase == "done":
        raise Conflict(
            f"run {run.id} ended with no candidate that could be trained, so there is nothing left to "
            "resume: submit the task again, perhaps with another description, designer or budget"
        )
    set_status(run, "running")
    run_id = run.id
    after_commit(session, lambda: dispatcher.kick(run_id))
    return run


def add_feedback(
    session: Session, *, candidate: Candidate, text: str, rating: int | None, user_id: int | None
) -> Feedback:
    """Record a person's view of a candidate; the next iteration's prompt carries it."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("feedback text is empty; say what the policy does wrong or right", field="text")
    if len(text) > 4000:
        raise InvalidInput("feedback is limited to 4000 characters", field="text")
    if rating is not None and not (isinstance(rating, int) and 1 <= rating <= 5):
        raise InvalidInput("rating must be an integer from 1 to 5", field="rating")
    fb = Feedback(candidate_id=candidate.id, run_id=candidate.run_id, user_id=user_id, text=text, rating=rating)
    session.add(fb)
    session.flush()
    return fb


def pending_feedback(session: Session, *, run_id: int, iteration: int | None = None) -> list[Feedback]:
    """Feedback no iteration has used yet; with ``iteration``, also what that iteration took (so that designing it
    again, after a failed LLM call, still carries it)."""
    unused = Feedback.used_in_iteration.is_(None)
    if iteration is not None:
        unused = unused | (Feedback.used_in_iteration == iteration)
    return list(session.scalars(select(Feedback).where(Feedback.run_id == run_id, unused).order_by(Feedback.id)))
