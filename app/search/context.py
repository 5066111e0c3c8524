"""What the designer is given for the next iteration, read from the database."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.db.models import Candidate, Run, Task
from app.search.designers import DesignContext, Parent
from app.search.options import options_of
from app.search.service import pending_feedback
from app.search.states import CANDIDATE_ERRORS, CandidateStatus
from envs import get_spec
from envs.describe import describe
from envs.fitness import METRICS


def fitness_of(task: Task) -> tuple[str, str, str]:
    """(name, meaning, source) of a task's fitness."""
    if task.fitness_source:
        return task.fitness_name, "a custom fitness program (below)", task.fitness_source
    metric = METRICS[task.fitness_name]
    return metric.name, metric.meaning, metric.source


def build_context(session: Session, run: Run, index: int) -> DesignContext:
    """The Markovian context: task, best-so-far parent with its reflection, unused feedback, last round's errors."""
    task = run.task
    name, meaning, source = fitness_of(task)
    ctx = DesignContext(
        run_id=run.id,
        iteration=index,
        seed=task.seed,
        env=task.env,
        env_description=describe(get_spec(task.env)),
        task=task.description,
        fitness_name=name,
        fitness_meaning=meaning,
        fitness_source=source,
        eval_episodes=options_of(task).train.eval_episodes,
        run_diagnostics=[
            {k: d.get(k) for k in ("code", "message", "advice")} for d in (run.diagnostics or {}).get("items", [])
        ],
    )
    best = session.get(Candidate, run.best_candidate_id) if run.best_candidate_id else None
    if best is not None and best.code:
        ctx.parent = Parent(
            best.id,
            best.code,
            best.fitness or 0.0,
            best.reflection or "(no reflection)",
            best.design or {},
            (best.diagnostics or {}).get("items", []),
            label=label(best),
        )
    for fb in pending_feedback(session, run_id=run.id, iteration=index):
        fb.used_in_iteration = index
        ctx.feedback.append(
            {"candidate_id": fb.candidate_id, "candidate": label(fb.candidate), "rating": fb.rating, "text": fb.text}
        )
    last = next((it for it in reversed(run.iterations) if it.index < index), None)
    if last is not None:
        for c in last.candidates:
            if c.status in CANDIDATE_ERRORS and c.error:
                ctx.errors.append({"id": c.id, "label": label(c), "error": c.error})
            else:
                # errors that a repair fixed are still worth not repeating
                for note in c.critic or []:
                    if note.get("stage") == "check" and note.get("verdict") == "rejected":
                        ctx.errors.append(
                            {"id": c.id, "label": label(c), "error": f"(fixed by a repair) {note['text']}"}
                        )
            if c.status == CandidateStatus.TRAINED and (best is None or c.id != best.id):
                ctx.others.append({"id": c.id, "label": label(c), "summary": summarize(c)})
    return ctx


def label(c: Candidate) -> str:
    """How prompts name a candidate: its round and place in the run ('2.1': round 2, first sample), not its database
    id, so that a re-run of the same task sends the same prompts (and gets its answers from the cache)."""
    if c.iteration is None:
        return c.origin
    return f"{c.iteration.index + 1}.{c.index + 1}"


def summarize(c: Candidate) -> str:
    """One line about a trained candidate for the next prompt."""
    comps = ", ".join((c.dry_run or {}).get("components", [])) or "no components"
    kinds = ", ".join(d["kind"] for d in (c.diagnostics or {}).get("items", [])) or "no issues found"
    fit = f"{c.fitness:.4g}" if c.fitness is not None else "n/a"
    return f"fitness {fit}; components {comps}; diagnostics: {kinds}"


def iteration_record(ctx: DesignContext) -> dict:
    """What to store on the iteration about its context (audit and dashboard)."""
    return {
        "parent_id": ctx.parent.id if ctx.parent else None,
        "feedback": ctx.feedback,
        "errors": ctx.errors,
        "others": ctx.others,
    }
