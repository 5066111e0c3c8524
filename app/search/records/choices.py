"""Human selection's records: the choices made so far, the knock-out's groups that wait for one, the scores.

After each iteration the run waits while a knock-out of groups of two to four candidates is
pending (``app.search.design.ranking`` cuts the groups and scores the choices); this module
reads where the knock-out stands from the stored choices, and shows it (``selection_dict``).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Candidate, Iteration, Run, SelectionChoice
from app.search.design.ranking import GROUP_SIZE, Group, bradley_terry, outcomes, partition
from app.search.rules.numbering import iteration_number
from app.search.rules.states import CandidateStatus, IterationStatus, Purpose, RunStatus, Selection, TrainingStatus


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


def _last_done(run: Run) -> Iteration | None:
    last = run.iterations[-1] if run.iterations else None
    return last if last is not None and last.status == IterationStatus.DONE else None


def pending_for(session: Session, run: Run) -> list[Group]:
    """The groups a person can choose in now (none unless the run waits after an iteration under human selection)."""
    it = _last_done(run)
    if run.task.selection != Selection.HUMAN or run.status != RunStatus.WAITING_FEEDBACK or it is None:
        return []
    return pending_groups(session, it)[0]


def choice_dict(c: SelectionChoice) -> dict[str, Any]:
    return {
        "id": c.id,
        "iteration": iteration_number(c.iteration),
        "round": c.round,
        "position": c.position,
        "group": list(c.group),
        "best_id": c.best_id,
        "ranking": list(c.ranking),
        "ranked": c.ranked,
        "none_right": bool(c.none_right),
        "text": c.text,
        "scores": {int(k): v for k, v in (c.scores or {}).items()},
        "chosen_by": c.chosen_by,
        "created_at": c.created_at.isoformat() if c.created_at else None,
    }


def selection_dict(session: Session, run: Run) -> dict[str, Any]:
    """How the run picks its parents, what waits for a person, every choice with its scores (run.json, the API)."""
    made = choices_of(session, run.id)
    return {
        "selection": run.task.selection,
        "pending": [g.as_dict() for g in pending_for(session, run)],
        "choices": [choice_dict(c) for c in made],
        "scores": choice_dict(made[-1])["scores"] if made else {},
        "best_candidate_id": run.best_candidate_id,
    }
