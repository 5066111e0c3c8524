"""Fitness proposals as records: a run's proposals, the one a person has yet to decide on, and how they are shown."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import after_commit
from app.db.models import FitnessProposal, Run
from app.search.records.dispatch import Dispatcher
from app.search.rules.states import PROPOSAL_OPEN


def proposals_of(session: Session, run_id: int) -> list[FitnessProposal]:
    """Every proposal of the run, oldest first."""
    return list(
        session.scalars(select(FitnessProposal).where(FitnessProposal.run_id == run_id).order_by(FitnessProposal.id))
    )


def open_proposal(session: Session, run_id: int) -> FitnessProposal | None:
    """The newest proposal a person has yet to decide on (checked, or refused by the checks)."""
    rows = [p for p in proposals_of(session, run_id) if p.status in PROPOSAL_OPEN]
    return rows[-1] if rows else None


def schedule_proposal(session: Session, run: Run, dispatcher: Dispatcher) -> None:
    """Propose the run's fitness once the transaction commits (the start step's hook for a 'propose' task)."""
    run_id = run.id
    after_commit(session, lambda: dispatcher.propose_fitness(run_id))


def proposal_dict(p: FitnessProposal) -> dict[str, Any]:
    """A proposal as run.json, the API and the dashboard show it."""
    return {
        "id": p.id,
        "status": p.status,
        "origin": p.origin,
        "author": p.author,
        "name": p.name,
        "meaning": p.meaning,
        "source": p.source,
        "error": p.error,
        "measurement": p.measurement or {},
        "note": p.note,
        "decided_by": p.decided_by,
        "decided_at": p.decided_at.isoformat() if p.decided_at else None,
        "created_at": p.created_at.isoformat() if p.created_at else None,
        "answer": p.answer,
    }
