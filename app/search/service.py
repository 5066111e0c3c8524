"""Tasks, runs, feedback: creating and steering searches. Keyword-only functions; callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import after_commit
from app.db.models import Candidate, Feedback, Run, Task, utcnow
from app.errors import Conflict, InvalidInput, RateLimited
from app.search.budget import Budget, baseline_programs, plan
from app.search.dispatch import Dispatcher
from app.search.ledger import run_usage
from app.search.options import (
    DESCRIPTION_CHARS,
    FEEDBACK_CHARS,
    FITNESS_PROGRAM_CHARS,
    ITERATIONS,
    MIN_TIMESTEPS,
    SAMPLES,
    SEED,
    TaskOptions,
    parse_options,
)
from app.search.states import FITNESS_PROPOSE, RUN_TERMINAL, RunPhase, RunStatus, Selection, check_transition
from envs import UnknownEnvError, get_spec
from envs.fitness import METRICS
from workers.program.policy import ProgramRejected, check_source


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
    selection: str = Selection.FITNESS
    """'fitness' (the best fitness is the next parent) or 'human' (a person chooses by watching videos)."""


def resolve_designer(requested: str | None, settings: Settings) -> str:
    if requested is None:
        return "llm" if settings.llm_configured else "offline"
    if requested not in ("llm", "offline"):
        raise InvalidInput(f"designer must be 'llm' or 'offline', not '{requested[:40]}'", field="designer")
    if requested == "llm" and not settings.llm_configured:
        raise InvalidInput(
            "designer 'llm' needs an LLM: set REWARDSMITH_LLM_MODEL and OPENAI_BASE_URL (or OPENAI_API_KEY), "
            "or choose designer 'offline'",
            field="designer",
        )
    return requested


def _fitness(spec: TaskSpec) -> tuple[str, str | None]:
    """(name, source) of the task's fitness: a built-in metric, a checked fitness program, or 'propose' (a program
    proposed from the description, which a person approves before the search starts)."""
    fitness = (spec.fitness or "").strip()
    if fitness in METRICS or fitness == FITNESS_PROPOSE:
        return fitness, None
    if len(fitness) > FITNESS_PROGRAM_CHARS:
        raise InvalidInput(f"the fitness program is limited to {FITNESS_PROGRAM_CHARS:,} characters", field="fitness")
    if "def compute_fitness" in fitness:
        try:
            check_source(fitness, "fitness")
        except ProgramRejected as e:
            raise InvalidInput(str(e), field="fitness") from None
        return "custom", fitness
    raise InvalidInput(
        f"unknown fitness '{fitness[:60]}': give a built-in metric ({', '.join(METRICS)}), a fitness program "
        f"defining compute_fitness(traj), or '{FITNESS_PROPOSE}' to have one proposed from the description",
        field="fitness",
    )


def _selection(spec: TaskSpec, options: TaskOptions) -> tuple[Selection, TaskOptions]:
    """The task's selection, and its options as that selection needs them (a video of every trained candidate for a
    person to watch)."""
    try:
        selection = Selection(spec.selection or Selection.FITNESS)
    except ValueError:
        raise InvalidInput(
            f"selection must be 'fitness' or 'human', not '{str(spec.selection)[:40]}'", field="selection"
        ) from None
    if selection == Selection.HUMAN and not options.train.video:
        options = options.model_copy(update={"train": options.train.model_copy(update={"video": True})})
    return selection, options


def _bounded(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
        raise InvalidInput(f"{name} must be an integer from {low:,} to {high:,}, got {shown}", field=name)
    return value


def task_budget(spec: TaskSpec, settings: Settings) -> Budget:
    """Every training the task's run would do and their steps; InvalidInput for out-of-bounds settings."""
    try:
        env = get_spec(spec.env)
    except UnknownEnvError as e:
        raise InvalidInput(str(e), field="env") from None
    iterations = _bounded("iterations", spec.iterations, *ITERATIONS)
    samples = _bounded("samples", spec.samples, *SAMPLES)
    timesteps = _bounded("timesteps", spec.timesteps, MIN_TIMESTEPS, settings.max_timesteps_per_training)
    name, source = _fitness(spec)
    return plan(
        iterations=iterations,
        samples=samples,
        timesteps=timesteps,
        options=parse_options(spec.options),
        baselines=len(baseline_programs(env.name, name, source)),
    )


def validate(spec: TaskSpec, settings: Settings) -> dict:
    """The task's column values, or InvalidInput naming the field and what to do."""
    description = (spec.description or "").strip()
    if not description:
        raise InvalidInput(
            "describe the behaviour in words, e.g. 'make the cheetah run backwards'", field="description"
        )
    if len(description) > DESCRIPTION_CHARS:
        raise InvalidInput(
            f"the description has {len(description):,} characters; keep it under {DESCRIPTION_CHARS:,}",
            field="description",
        )
    budget = task_budget(spec, settings)
    seed = _bounded("seed", spec.seed, *SEED)
    if budget.timesteps > settings.max_task_timesteps:
        raise InvalidInput(
            f"this task would train {budget.timesteps:,} steps ({budget.explain()}), above the cap of "
            f"{settings.max_task_timesteps:,} (REWARDSMITH_MAX_TASK_TIMESTEPS); lower the iterations, samples, "
            "timesteps or final seeds, or turn baselines off",
            field="timesteps",
        )
    fitness_name, fitness_source = _fitness(spec)
    selection, options = _selection(spec, parse_options(spec.options))
    return {
        "env": spec.env,
        "description": description,
        "fitness_name": fitness_name,
        "fitness_source": fitness_source,
        "designer": resolve_designer(spec.designer, settings),
        "iterations": spec.iterations,
        "samples": spec.samples,
        "timesteps": spec.timesteps,
        "seed": seed,
        "wait_for_feedback": bool(spec.wait_for_feedback),
        "options": options.model_dump(mode="json"),
        "selection": selection,
    }


def check_task_rate(session: Session, *, owner_id: int, settings: Settings) -> None:
    """RateLimited when the user created ``task_rate_per_minute`` tasks in the last minute."""
    since = utcnow() - timedelta(seconds=60)
    recent = session.scalar(select(func.count(Task.id)).where(Task.owner_id == owner_id, Task.created_at >= since))
    if (recent or 0) >= settings.task_rate_per_minute:
        raise RateLimited(
            f"at most {settings.task_rate_per_minute} tasks per minute (REWARDSMITH_TASK_RATE_PER_MINUTE); "
            "wait a minute and submit again",
            retry_after=60,
        )


def create_task(
    session: Session, *, spec: TaskSpec, owner_id: int | None, settings: Settings, dispatcher: Dispatcher
) -> tuple[Task, Run]:
    """The one way to create a task (API, dashboard, CLI): the rate limit, every bound and the whole budget are
    checked here; the task is stored with its first run, which starts once the transaction commits.

    ``owner_id`` None is the local command line, which has no user and no rate limit.
    """
    if owner_id is not None:
        check_task_rate(session, owner_id=owner_id, settings=settings)
    task = Task(owner_id=owner_id, **validate(spec, settings))
    run = Run(task=task, status=RunStatus.QUEUED, usage={}, final={})
    session.add_all([task, run])
    session.flush()
    run_id = run.id
    after_commit(session, lambda: dispatcher.start(run_id))
    return task, run


def set_status(run: Run, target: RunStatus, *, error: str | None = None) -> None:
    """Move ``run`` along its state machine (IllegalTransition → 409 otherwise)."""
    check_transition(f"run {run.id}", run.status, target)
    run.status = target
    if target == RunStatus.RUNNING:
        run.started_at = run.started_at or utcnow()
        run.error = None
        run.finished_at = None
    if target in RUN_TERMINAL:
        run.finished_at = utcnow()
    if error is not None:
        run.error = error


def fail_run(session: Session, *, run_id: int, error: str) -> None:
    """Mark a running or queued run failed with ``error`` (what happened and what to do); a settled run is left."""
    run = session.get(Run, run_id)
    if run is not None and run.status in (RunStatus.RUNNING, RunStatus.QUEUED):
        set_status(run, RunStatus.FAILED, error=error)
        run.usage = run_usage(session, run_id)


def cancel_run(session: Session, *, run: Run) -> Run:
    """Stop a run: queued trainings will not start, running ones are stopped at their next checkpoint."""
    set_status(run, RunStatus.CANCELLED)
    return run


def resume_run(session: Session, *, run: Run, dispatcher: Dispatcher) -> Run:
    """Continue a run that waits for feedback, was cancelled, or failed; nothing done so far is redone."""
    if run.status == RunStatus.QUEUED:
        raise Conflict(
            f"run {run.id} is queued: it starts by itself as soon as a worker takes it; there is nothing to resume"
        )
    if run.status == RunStatus.FAILED and run.phase == RunPhase.DONE:
        raise Conflict(
            f"run {run.id} ended with no candidate that could be trained, so there is nothing left to "
            "resume: submit the task again, perhaps with another description, designer or budget"
        )
    if run.task.fitness_name == FITNESS_PROPOSE:  # no fitness approved yet: back to the decision, or propose again
        from app.search.approval import resume_unapproved

        return resume_unapproved(session, run=run, dispatcher=dispatcher)
    set_status(run, RunStatus.RUNNING)
    run_id = run.id
    after_commit(session, lambda: dispatcher.resume(run_id))
    return run


def add_feedback(
    session: Session, *, candidate: Candidate, text: str, rating: int | None, user_id: int | None
) -> Feedback:
    """Record a person's view of a candidate; the next iteration's prompt carries it."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput("feedback text is empty; say what the policy does wrong or right", field="text")
    if len(text) > FEEDBACK_CHARS:
        raise InvalidInput(f"feedback is limited to {FEEDBACK_CHARS:,} characters", field="text")
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
    taken = Feedback.used_in_iteration == iteration if iteration is not None else false()
    query = select(Feedback).where(Feedback.run_id == run_id, or_(unused, taken)).order_by(Feedback.id)
    return list(session.scalars(query))
