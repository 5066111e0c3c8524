"""Human selection: a person watches an iteration's trained candidates and picks the best of each group.

After each iteration the run waits ('waiting_feedback') while a knock-out of groups of two to
four candidates is pending: the iteration's trained candidates and its parent (so that the
person judges whether the new ones beat it), grouped in round 0, then the winners in round 1,
until one is left. Every choice adds pairwise outcomes (the best beat each other one; a whole
ranking gives every pair), and the run's candidates are scored by Bradley–Terry over all
outcomes so far; the scores are stored with the choice, and the best-scored candidate is the
run's best and the next parent. The person's choice wins over the fitness. The last choice of
an iteration continues the run; a sentence given with a choice is the chosen candidate's
feedback, so the next prompt carries it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Candidate, Iteration, Run, SelectionChoice
from app.errors import Conflict, InvalidInput
from app.search.dispatch import Dispatcher
from app.search.options import FEEDBACK_CHARS
from app.search.service import add_feedback, resume_run, set_status
from app.search.states import CandidateStatus, IterationStatus, Purpose, RunStatus, Selection, TrainingStatus

GROUP_SIZE = (2, 4)
"""Candidates shown together: at least two, at most four."""
PRIOR_GAMES = 1.0
"""Bradley–Terry prior: each candidate gets this many virtual wins and losses against a reference of strength 1,
so that one who won every comparison still has a finite score."""
BT_STEPS = 1000


@dataclass(frozen=True)
class Group:
    """Candidates to compare: ``position`` within knock-out ``round`` of ``iteration``."""

    iteration: int
    round: int
    position: int
    candidates: tuple[int, ...]

    def as_dict(self) -> dict:
        return {
            "iteration": self.iteration,
            "round": self.round,
            "position": self.position,
            "candidates": list(self.candidates),
        }


def partition(ids: list[int]) -> list[list[int]]:
    """``ids`` in order, cut into as few groups as fit in ``GROUP_SIZE``, as even as can be (5 → 3 + 2)."""
    if len(ids) < GROUP_SIZE[0]:
        return []
    count = math.ceil(len(ids) / GROUP_SIZE[1])
    base, extra = divmod(len(ids), count)
    out, start = [], 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        out.append(ids[start : start + size])
        start += size
    return out


def outcomes(choice: SelectionChoice) -> list[tuple[int, int]]:
    """(winner, loser) pairs of one choice: the best beat every other; a ranking orders every pair."""
    if choice.ranked:
        order = list(choice.ranking)
        return [(a, b) for i, a in enumerate(order) for b in order[i + 1 :]]
    return [(choice.best_id, other) for other in choice.group if other != choice.best_id]


def bradley_terry(pairs: Iterable[tuple[int, int]]) -> dict[int, float]:
    """Bradley–Terry strengths (log scale; 0 is the prior's reference) from (winner, loser) pairs, fitted by
    Hunter's minorise–maximise iteration with ``PRIOR_GAMES`` virtual games per candidate."""
    wins: Counter[int] = Counter()
    games: dict[int, Counter[int]] = defaultdict(Counter)
    for winner, loser in pairs:
        wins[winner] += 1
        games[winner][loser] += 1
        games[loser][winner] += 1
    strength = dict.fromkeys(games, 1.0)
    for _ in range(BT_STEPS):
        new = {
            i: (wins[i] + PRIOR_GAMES)
            / (
                sum(n / (strength[i] + strength[j]) for j, n in games[i].items())
                + 2 * PRIOR_GAMES / (strength[i] + 1.0)
            )
            for i in strength
        }
        done = all(abs(math.log(new[i] / strength[i])) < 1e-12 for i in strength)
        strength = new
        if done:
            break
    return {i: round(math.log(p), 6) for i, p in sorted(strength.items())}


# ------------------------------------------------------------------------------------------------ the knock-out


def entrants(session: Session, it: Iteration) -> list[int]:
    """Who is compared after iteration ``it``: its parent, then its trained candidates (those trained on the full
    budget, when successive halving stopped some after screening)."""
    own = [c for c in it.candidates if c.status == CandidateStatus.TRAINED and c.fitness is not None]
    full = [c for c in own if any(t.purpose == Purpose.FULL and t.status == TrainingStatus.OK for t in c.trainings)]
    ids = [c.id for c in (full or own)]
    parent = session.get(Candidate, it.parent_id) if it.parent_id else None
    if parent is not None and parent.status == CandidateStatus.TRAINED and parent.id not in ids:
        ids.insert(0, parent.id)
    return ids


def choices_of(session: Session, run_id: int) -> list[SelectionChoice]:
    return list(
        session.scalars(select(SelectionChoice).where(SelectionChoice.run_id == run_id).order_by(SelectionChoice.id))
    )


def pending_groups(session: Session, it: Iteration) -> tuple[list[Group], int | None]:
    """The groups of ``it``'s knock-out that wait for a choice (the current round's), and its winner once none do."""
    made = {(c.round, c.position): c.best_id for c in choices_of(session, it.run_id) if c.iteration == it.index}
    current, rnd = entrants(session, it), 0
    while len(current) >= GROUP_SIZE[0]:
        groups = partition(current)
        waiting = [Group(it.index, rnd, pos, tuple(g)) for pos, g in enumerate(groups) if made.get((rnd, pos)) not in g]
        if waiting:
            return waiting, None
        current = [made[(rnd, pos)] for pos in range(len(groups))]
        rnd += 1
    return [], current[0] if current else None


def apply_scores(session: Session, run: Run) -> dict[int, float]:
    """Bradley–Terry scores over every choice of the run; the best-scored candidate becomes the run's best (ties:
    the higher fitness, then the earlier candidate)."""
    scores = bradley_terry(pair for c in choices_of(session, run.id) for pair in outcomes(c))
    if scores:
        fitness = {c.id: c.fitness for c in run.candidates}
        run.best_candidate_id = max(scores, key=lambda i: (scores[i], fitness.get(i) or -math.inf, -i))
    return scores


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


def _last_done(run: Run) -> Iteration | None:
    last = run.iterations[-1] if run.iterations else None
    return last if last is not None and last.status == IterationStatus.DONE else None


def pending_for(session: Session, run: Run) -> list[Group]:
    """The groups a person can choose in now (none unless the run waits after an iteration under human selection)."""
    it = _last_done(run)
    if run.task.selection != Selection.HUMAN or run.status != RunStatus.WAITING_FEEDBACK or it is None:
        return []
    return pending_groups(session, it)[0]


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
    user_id: int | None,
    who: str,
    dispatcher: Dispatcher,
) -> SelectionChoice:
    """Record a person's choice in one pending group (the best, or a ranking best first), with an optional
    sentence; rescore the run; continue it when it was the iteration's last pending group."""
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
    if ranking is not None:
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
    chosen = session.get(Candidate, best)
    assert chosen is not None
    fb = add_feedback(session, candidate=chosen, text=text, rating=None, user_id=user_id) if text else None
    choice = SelectionChoice(
        run_id=run.id,
        iteration=match.iteration,
        round=match.round,
        position=match.position,
        group=list(match.candidates),
        best_id=best,
        ranking=ranking or [best, *(c for c in match.candidates if c != best)],
        ranked=ranking is not None,
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


# ------------------------------------------------------------------------------------------------ records


def choice_dict(c: SelectionChoice) -> dict:
    return {
        "id": c.id,
        "iteration": c.iteration,
        "round": c.round,
        "position": c.position,
        "group": list(c.group),
        "best_id": c.best_id,
        "ranking": list(c.ranking),
        "ranked": c.ranked,
        "text": c.text,
        "scores": {int(k): v for k, v in (c.scores or {}).items()},
        "chosen_by": c.chosen_by,
        "created_at": c.created_at.isoformat() if c.created_at else None,
    }


def selection_dict(session: Session, run: Run) -> dict:
    """How the run picks its parents, what waits for a person, every choice with its scores (run.json, the API)."""
    made = choices_of(session, run.id)
    return {
        "selection": run.task.selection,
        "pending": [g.as_dict() for g in pending_for(session, run)],
        "choices": [choice_dict(c) for c in made],
        "scores": choice_dict(made[-1])["scores"] if made else {},
        "best_candidate_id": run.best_candidate_id,
    }
