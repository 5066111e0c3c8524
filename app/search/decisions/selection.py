"""Human selection: a person watches an iteration's trained candidates and picks the best of each group.

After each iteration the run waits ('waiting_feedback') while a knock-out of groups of two to
four candidates is pending: the iteration's trained candidates and its parent (so that the
person judges whether the new ones beat it), grouped in round 0, then the winners in round 1,
until one is left. Every choice adds pairwise outcomes (the best beat each other one; a whole
ranking gives every pair), and the run's candidates are scored by Bradley–Terry over all
outcomes so far; the scores are stored with the choice, and the best-scored candidate is the
run's best and the next parent. The person's choice wins over the fitness. The last choice of
an iteration continues the run; a sentence given with a choice is the chosen candidate's
feedback, so the next prompt carries it. A person may also say that none of a group is right,
with a sentence (required): no outcome is drawn from it, the group's best by fitness goes on in
the knock-out, and the sentence is feedback the next prompt carries like any other.
"""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Candidate, Iteration, Run, SelectionChoice
from app.errors import Conflict, InvalidInput
from app.search.decisions.control import resume_run
from app.search.decisions.feedback import add_feedback
from app.search.records.choices import apply_scores, pending_for, pending_groups
from app.search.records.dispatch import Dispatcher
from app.search.records.runs import set_status
from app.search.rules.options import FEEDBACK_CHARS
from app.search.rules.states import RunStatus, Selection


def waits_for_choices(session: Session, run: Run, it: Iteration) -> bool:
    """The hook after an iteration closes: under human selection, the person's scores pick the best, and the run
    waits while groups of the iteration wait for a choice."""
    if run.task.selection != Selection.HUMAN:
        return False
    apply_scores(session, run)
    pending, _ = pending_groups(session, it)
    if not pending:
        return False
    set_status(run, RunStatus.WAITING_FEEDBACK)
    return True


def _fitness_best(session: Session, group: list[int]) -> int:
    """The candidate of ``group`` with the highest fitness (ties: the earlier): it goes on when none is right."""
    fitness = {cid: c.fitness for cid in group if (c := session.get(Candidate, cid)) is not None}
    return max(group, key=lambda cid: (fitness.get(cid) if fitness.get(cid) is not None else -math.inf, -cid))


def _ids(values: object, what: str) -> list[int]:
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise InvalidInput(f"{what} must be a list of candidate ids", field=what)
    return values


def choose(
    session: Session,
    *,
    run: Run,
    group: list[int],
    best: int | None = None,
    ranking: list[int] | None = None,
    text: str | None = None,
    none_right: bool = False,
    user_id: int | None,
    who: str,
    dispatcher: Dispatcher,
) -> SelectionChoice:
    """Record a person's choice in one pending group (the best, or a ranking best first), with an optional
    sentence, or that none of the group is right (``none_right``, with a sentence); rescore the run; continue it
    when it was the iteration's last pending group."""
    if run.task.selection != Selection.HUMAN:
        raise Conflict(f"run {run.id} selects by fitness, not by a person's choices ('selection' is 'fitness')")
    session.execute(select(Run.id).where(Run.id == run.id).with_for_update())  # one choice at a time per run
    session.refresh(run)
    pending = pending_for(session, run)
    if not pending:
        raise Conflict(
            f"run {run.id} waits for no choice now (it is '{run.status}'); choices are made after an iteration, "
            "while the run is 'waiting_feedback'"
        )
    group = _ids(group, "group")
    match = next((g for g in pending if sorted(g.candidates) == sorted(group)), None)
    if match is None:
        shown = "; ".join(str(list(g.candidates)) for g in pending)
        raise InvalidInput(f"{group[:8]} is not a group that waits for a choice; these do: {shown}", field="group")
    if none_right:
        if best is not None or ranking is not None:
            raise InvalidInput("'none_right' says that no candidate is the best: leave out 'best' and 'ranking'")
        best = _fitness_best(session, list(match.candidates))
    elif ranking is not None:
        ranking = _ids(ranking, "ranking")
        if sorted(ranking) != sorted(match.candidates):
            raise InvalidInput("a ranking must list every candidate of the group once, best first", field="ranking")
        if best is not None and best != ranking[0]:
            raise InvalidInput("'best' must be the first of the ranking (or leave it out)", field="best")
        best = ranking[0]
    if best is None or best not in match.candidates:
        raise InvalidInput(f"choose the best of the group {list(match.candidates)} ('best')", field="best")
    text = (text or "").strip() or None
    if text is not None and len(text) > FEEDBACK_CHARS:
        raise InvalidInput(f"the sentence is limited to {FEEDBACK_CHARS:,} characters", field="text")
    if none_right and text is None:
        raise InvalidInput(
            "say in a sentence what none of them does right (the next iteration's prompt carries it)", field="text"
        )
    chosen = session.get(Candidate, best)
    assert chosen is not None
    said = f"None of these is right: {text}" if none_right else text
    fb = add_feedback(session, candidate=chosen, text=said or "", rating=None, user_id=user_id) if said else None
    choice = SelectionChoice(
        run_id=run.id,
        iteration=match.iteration,
        round=match.round,
        position=match.position,
        group=list(match.candidates),
        best_id=best,
        ranking=ranking or [best, *(c for c in match.candidates if c != best)],
        ranked=ranking is not None,
        none_right=none_right,
        text=text,
        feedback_id=fb.id if fb else None,
        user_id=user_id,
        chosen_by=who,
        scores={},
    )
    session.add(choice)
    session.flush()
    choice.scores = {str(k): v for k, v in apply_scores(session, run).items()}
    if not pending_for(session, run):
        resume_run(session, run=run, dispatcher=dispatcher)
    return choice
