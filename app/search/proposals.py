"""Proposed fitness: the proposing step, the checks every proposal goes through, and the records.

A task whose fitness is 'propose' starts here instead of searching: its start step schedules
the proposing step (LLM queue), which asks the run's designer for a fitness program, checks
it like any program (static rules, sandboxed dry run) and measures it on random-policy
episodes in the sandbox; the run then waits ('waiting_fitness') for a person's decision
(``app.search.approval``). Every proposal stays on the run's record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import after_commit, session_scope
from app.db.models import FitnessProposal, Run, Task, utcnow
from app.errors import LLMError
from app.search.dispatch import Dispatcher
from app.search.options import FITNESS_PROGRAM_CHARS, options_of
from app.search.proposers import Draft, Earlier, FitnessAsk, ProposerFactory
from app.search.service import fail_run, set_status
from app.search.states import (
    FITNESS_PROPOSE,
    FITNESS_PROPOSED,
    PROPOSAL_OPEN,
    Origin,
    ProposalStatus,
    RunStatus,
)
from envs import get_spec
from envs.describe import describe
from workers.engine.evaluate import sandbox_measure
from workers.program.text import clip
from workers.sandbox.runner import Outcome

MEASURE_EPISODES = 5
"""Random-policy episodes a proposal is measured on."""
CHECK_WALL_SECONDS = 120.0
"""Wall-clock limit of one proposal's sandboxed dry run and measurement."""
REPAIRS = 1
"""Times an LLM's proposal that the checks refused goes back to it with the message, within one proposing step."""
LEASE_SECONDS = 1800.0
"""A proposing step older than this is taken to have died with its worker; the sweep's next start proposes again."""
NO_REASON = "(no reason given) Propose a different way to measure the task."


def awaits_fitness(task: Task) -> bool:
    """Whether the task's fitness is still to be proposed and approved (the search cannot start before)."""
    return task.fitness_name == FITNESS_PROPOSE


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


# ------------------------------------------------------------------------------------------------ the step


@dataclass
class Checked:
    """A draft after the static check, the sandboxed dry run and the measurement."""

    draft: Draft
    status: ProposalStatus
    error: str | None = None
    dry_run: dict = field(default_factory=dict)
    measurement: dict = field(default_factory=dict)


def check_program(env: str, source: str | None, settings: Settings, *, max_steps: int | None) -> Checked:
    """``source`` checked like every program, then measured on random-policy episodes (all in the sandbox)."""
    draft = Draft(Origin.PERSON, "", FITNESS_PROPOSED, "", source)
    return _check(env, draft, settings, max_steps=max_steps)


def _check(env: str, draft: Draft, settings: Settings, *, max_steps: int | None) -> Checked:
    if draft.source is None:
        return Checked(draft, ProposalStatus.BROKEN, draft.error or "the answer held no program")
    if len(draft.source) > FITNESS_PROGRAM_CHARS:
        return Checked(draft, ProposalStatus.BROKEN, f"the program is longer than {FITNESS_PROGRAM_CHARS:,} characters")
    limits = settings.sandbox_limits(wall_seconds=CHECK_WALL_SECONDS)
    res = sandbox_measure(env, draft.source, limits, episodes=MEASURE_EPISODES, max_steps=max_steps)
    if res.outcome != Outcome.OK:
        return Checked(draft, ProposalStatus.BROKEN, res.error or f"the checks ended with '{res.outcome}'")
    return Checked(
        draft, ProposalStatus.PROPOSED, None, res.payload.get("report", {}), res.payload.get("measurement", {})
    )


def _earlier(rows: list[FitnessProposal]) -> list[Earlier]:
    """The run's proposals that were not taken, with why, for the next prompt."""
    out = []
    for p in rows:
        if p.status == ProposalStatus.REJECTED:
            why = p.note or NO_REASON
            if p.error:
                why += f"\n\n(The checks had also refused it: {p.error})"
            out.append(Earlier(p.origin, p.name, p.answer, why, by_person=True))
        elif p.status == ProposalStatus.BROKEN:
            out.append(Earlier(p.origin, p.name, p.answer, p.error or "it did not pass the checks", by_person=False))
    return out


@dataclass
class _Claim:
    claim_id: int
    env: str
    max_steps: int | None
    ask: FitnessAsk


def _claim(sf: sessionmaker, run_id: int, proposer_origin: Origin, author: str) -> _Claim | None:
    """Mark the run's proposal as being made, unless another delivery of this step is making it."""
    with session_scope(sf) as s:
        run = s.get(Run, run_id, with_for_update=True)
        if run is None or run.status != RunStatus.QUEUED or not awaits_fitness(run.task):
            return None
        rows = proposals_of(s, run_id)
        busy = [p for p in rows if p.status == ProposalStatus.PROPOSING]
        fresh_after = utcnow() - timedelta(seconds=LEASE_SECONDS)
        if any(p.created_at > fresh_after for p in busy):
            return None
        for p in busy:  # abandoned by a worker that died: it never held a program
            s.delete(p)
        claim = FitnessProposal(
            run_id=run_id,
            origin=proposer_origin,
            author=author,
            status=ProposalStatus.PROPOSING,
            name="…",
            meaning="",
            dry_run={},
            measurement={},
        )
        s.add(claim)
        s.flush()
        task = run.task
        ask = FitnessAsk(run_id, task.env, describe(get_spec(task.env)), task.description, _earlier(rows))
        return _Claim(claim.id, task.env, options_of(task).train.episode_steps, ask)


def propose(sf: sessionmaker, run_id: int, settings: Settings, proposer_for: ProposerFactory) -> None:
    """Propose the run's fitness: ask, check and measure (an LLM's refused proposal goes back to it once), store
    every draft, and let the run wait for a person."""
    with session_scope(sf) as s:
        run = s.get(Run, run_id)
        if run is None or run.status != RunStatus.QUEUED or not awaits_fitness(run.task):
            return
        proposer = proposer_for(run)
    claim = _claim(sf, run_id, Origin.LLM if proposer.repairs else Origin.OFFLINE, proposer.label)
    if claim is None:
        return
    drafts: list[Checked] = []
    llm_error: LLMError | None = None
    try:
        for _ in range(1 + REPAIRS):
            try:
                draft = proposer.propose(claim.ask)
            except LLMError as e:
                llm_error = e
                break
            checked = _check(claim.env, draft, settings, max_steps=claim.max_steps)
            drafts.append(checked)
            if checked.status == ProposalStatus.PROPOSED or not proposer.repairs:
                break
            claim.ask.earlier.append(Earlier(draft.origin, draft.name, draft.answer, checked.error or "", False))
    except BaseException:
        _release(sf, claim.claim_id)  # so that resuming the failed run proposes again at once
        raise
    _store(sf, run_id, claim.claim_id, drafts, llm_error)


def _release(sf: sessionmaker, claim_id: int) -> None:
    with session_scope(sf) as s:
        claim = s.get(FitnessProposal, claim_id)
        if claim is not None and claim.status == ProposalStatus.PROPOSING:
            s.delete(claim)


def _store(sf: sessionmaker, run_id: int, claim_id: int, drafts: list[Checked], llm_error: LLMError | None) -> None:
    with session_scope(sf) as s:
        run = s.get(Run, run_id, with_for_update=True)
        claim = s.get(FitnessProposal, claim_id)
        if run is None or claim is None or claim.status != ProposalStatus.PROPOSING:
            return  # another delivery of this step took it over
        if not drafts:
            s.delete(claim)
            reason = str(llm_error).rstrip(".") if llm_error else "no proposal was made"
            fail_run(
                s,
                run_id=run_id,
                error=f"the designer could not propose a fitness: {reason}. Once the LLM answers again, resume "
                f"the run (its Resume button, or POST /api/v1/runs/{run_id}/resume) to have one proposed.",
            )
            return
        rows = [claim] + [FitnessProposal(run_id=run_id) for _ in drafts[1:]]
        for row, checked in zip(rows, drafts, strict=True):
            d = checked.draft
            row.origin, row.author, row.name, row.meaning = d.origin, d.author, d.name, d.meaning
            row.source, row.answer, row.status, row.error = d.source, d.answer, checked.status, checked.error
            row.dry_run, row.measurement, row.created_at = checked.dry_run, checked.measurement, utcnow()
        s.add_all(rows[1:])
        if run.status == RunStatus.QUEUED:
            set_status(run, RunStatus.WAITING_FITNESS)
        if llm_error is not None:
            run.error = (
                f"the LLM gave no answer to the request to fix its proposal ({clip(str(llm_error), 300)}); "
                "edit the proposal, or ask for another once the LLM answers again"
            )


# ------------------------------------------------------------------------------------------------ records


def proposal_dict(p: FitnessProposal) -> dict:
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
