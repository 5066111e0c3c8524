"""What the designer is given for the next iteration, read from the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.db.models import Candidate, Run
from app.search.design.critic import screen_trains
from app.search.design.designers import DesignContext, Parent
from app.search.design.diagnostics import findings, run_findings
from app.search.records.candidates import label, summarize
from app.search.records.runs import pending_feedback
from app.search.rules.fitness import fitness_of
from app.search.rules.options import options_of
from app.search.rules.states import CANDIDATE_ERRORS, CandidateStatus
from envs import get_spec
from envs.describe import describe


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
        run_diagnostics=run_findings(run),
    )
    best = session.get(Candidate, run.best_candidate_id) if run.best_candidate_id else None
    start = options_of(task).start_from
    seed = session.get(Candidate, start) if best is None and start else None
    if best is not None and best.code:
        ctx.parent = Parent(
            best.id,
            best.code,
            best.fitness or 0.0,
            best.reflection or "(no reflection)",
            best.design or {},
            findings(best),
            label=label(best),
        )
    elif seed is not None and seed.code:  # a new run from an earlier one: its best is where the search starts
        ctx.parent = Parent(
            seed.id,
            seed.code,
            seed.fitness or 0.0,
            seed.reflection or "(no reflection)",
            seed.design or {},
            findings(seed),
            label=f"{label(seed)} of run {seed.run_id}",
        )
    for fb in pending_feedback(session, run_id=run.id, iteration=index):
        fb.used_in_iteration = index
        ctx.feedback.append(
            {"candidate_id": fb.candidate_id, "candidate": label(fb.candidate), "rating": fb.rating, "text": fb.text}
        )
    last = next((it for it in reversed(run.iterations) if it.index < index), None)
    if last is not None:
        for c in last.candidates:
            screened_out = c.screen is not None and not screen_trains(c.screen)
            if c.status in CANDIDATE_ERRORS and screened_out:  # not trained: the screen says why, in words
                ctx.screened.append({"id": c.id, "label": label(c), "text": str(c.screen.get("text"))})  # type: ignore[union-attr]
            elif c.status in CANDIDATE_ERRORS and c.error:
                ctx.errors.append({"id": c.id, "label": label(c), "error": c.error})
            else:
                # rewards the screen refused before a repair are still worth not repeating
                for note in c.critic or []:
                    if note.get("stage") == "screen" and not screen_trains(note):
                        ctx.screened.append(
                            {"id": c.id, "label": label(c), "text": f"(fixed by a repair) {note['text']}"}
                        )
                # errors that a repair fixed are still worth not repeating
                for note in c.critic or []:
                    if note.get("stage") == "check" and note.get("verdict") == "rejected":
                        ctx.errors.append(
                            {"id": c.id, "label": label(c), "error": f"(fixed by a repair) {note['text']}"}
                        )
            if c.status == CandidateStatus.TRAINED and (best is None or c.id != best.id):
                ctx.others.append({"id": c.id, "label": label(c), "summary": summarize(c)})
    return ctx


def iteration_record(ctx: DesignContext) -> dict[str, Any]:
    """What to store on the iteration about its context (audit and dashboard)."""
    return {
        "parent_id": ctx.parent.id if ctx.parent else None,
        "feedback": ctx.feedback,
        "errors": ctx.errors,
        "screened": ctx.screened,
        "others": ctx.others,
    }
