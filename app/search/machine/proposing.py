"""The proposing step: a fitness program proposed from the task's sentence, checked and measured, then a person's.

A task whose fitness is 'propose' starts here instead of searching: its start step schedules
this step (LLM queue), which asks the run's designer for a fitness program, checks it like
any program (static rules, sandboxed dry run) and measures it on random-policy episodes in
the sandbox; the run then waits ('waiting_fitness') for a person's decision
(``app.search.decisions.approval``). Every proposal stays on the run's record
(``app.search.records.proposals``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import sessionmaker

from app.config import Settings
from app.db import session_scope
from app.db.models import FitnessProposal, Run, utcnow
from app.errors import LLMError
from app.search.decisions.sandbox_jobs import Measured, measure
from app.search.design.proposers import Draft, Earlier, FitnessAsk, FitnessProposer
from app.search.records.proposals import proposals_of
from app.search.records.runs import fail_run, set_status
from app.search.rules.fitness import awaits_fitness
from app.search.rules.options import options_of
from app.search.rules.states import Origin, ProposalStatus, RunStatus
from envs import get_spec
from envs.describe import describe
from workers.program.text import clip

REPAIRS = 1
"""Times an LLM's proposal that the checks refused goes back to it with the message, within one proposing step."""
LEASE_SECONDS = 1800.0
"""A proposing step older than this is taken to have died with its worker; the sweep's next start proposes again."""
NO_REASON = "(no reason given) Propose a different way to measure the task."

ProposerFactory = Callable[[Run], FitnessProposer]
"""Builds who proposes a run's fitness (``app.search.machine.factory.proposer_factory``)."""


@dataclass
class Checked:
    """A draft after the static check, the sandboxed dry run and the measurement."""

    draft: Draft
    measured: Measured


def _check(env: str, draft: Draft, settings: Settings, *, max_steps: int | None) -> Checked:
    if draft.source is None:
        return Checked(draft, Measured(ProposalStatus.BROKEN, draft.error or "the answer held no program"))
    return Checked(draft, measure(env, draft.source, settings, max_steps=max_steps))


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
            if checked.measured.status == ProposalStatus.PROPOSED or not proposer.repairs:
                break
            error = checked.measured.error or ""
            claim.ask.earlier.append(Earlier(draft.origin, draft.name, draft.answer, error, False))
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
            d, m = checked.draft, checked.measured
            row.origin, row.author, row.name, row.meaning = d.origin, d.author, d.name, d.meaning
            row.source, row.answer, row.status, row.error = d.source, d.answer, m.status, m.error
            row.dry_run, row.measurement, row.created_at = m.dry_run, m.measurement, utcnow()
        s.add_all(rows[1:])
        if run.status == RunStatus.QUEUED:
            set_status(run, RunStatus.WAITING_FITNESS)
        if llm_error is not None:
            run.error = (
                f"the LLM gave no answer to the request to fix its proposal ({clip(str(llm_error), 300)}); "
                "edit the proposal, or ask for another once the LLM answers again"
            )
