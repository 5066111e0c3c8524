"""A person's decision on a proposed fitness: approve it, replace it with their own program, or ask for another.

Approving it makes it the task's fitness and queues the run again: the same start step then
starts the search. An edited program passes the same checks as a proposal and is measured on
the same random-policy episodes, then waits, shown as the open proposal, for the person to
approve what it measures: an edit never starts the search by itself.
Asking for another queues the proposing step again, with the person's words in the next
prompt. Each decision is stored on the proposal with who and when.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.config import Settings
from app.db import after_commit
from app.db.models import FitnessProposal, Run, utcnow
from app.errors import Conflict, InvalidInput
from app.search.decisions.sandbox_jobs import admit_reproposal, measure_for_person
from app.search.records.dispatch import Dispatcher
from app.search.records.proposals import open_proposal, proposals_of
from app.search.records.runs import set_status
from app.search.rules.fitness import FitnessKind
from app.search.rules.options import NOTE_CHARS, options_of
from app.search.rules.states import PROPOSAL_OPEN, Origin, ProposalStatus, RunStatus
from app.search.rules.task import TaskSpec, columns
from workers.program.text import clip

COMMAND_LINE = "command line"
"""Who decided, when it was `rewardsmith run --approve` or `rewardsmith approve` (no user)."""


def _waiting(run: Run) -> None:
    if run.status != RunStatus.WAITING_FITNESS:
        raise Conflict(
            f"run {run.id} does not wait for a decision on its fitness (it is '{run.status}'); a fitness is "
            "approved, edited or proposed again only while the run is 'waiting_fitness'"
        )


def _checked_task(run: Run, source: str, settings: Settings) -> None:
    """The task with ``source`` as its fitness passes every rule a new task does (the program's, the budget's)."""
    try:
        columns(TaskSpec.of_task(run.task, fitness=source), settings)
    except InvalidInput as e:
        raise InvalidInput(e.message, field="source" if e.field == "fitness" else e.field) from None


def _decide(p: FitnessProposal, status: ProposalStatus, *, user_id: int | None, who: str) -> None:
    p.status, p.decided_by_id, p.decided_by, p.decided_at = status, user_id, who, utcnow()


def _queue(session: Session, run: Run, dispatcher: Dispatcher) -> None:
    """Queue the run again; the start step starts the search (fitness approved) or proposes again."""
    set_status(run, RunStatus.QUEUED)
    run.error, run.finished_at = None, None
    run_id = run.id
    after_commit(session, lambda: dispatcher.start(run_id))


def approve(
    session: Session, *, run: Run, user_id: int | None, who: str, settings: Settings, dispatcher: Dispatcher
) -> FitnessProposal:
    """Approve the open proposal as it is: it becomes the task's fitness and the search starts."""
    _waiting(run)
    p = open_proposal(session, run.id)
    if p is None:
        raise Conflict(f'run {run.id} has no proposal to approve; ask for one ({{"repropose": true}})')
    if p.status == ProposalStatus.BROKEN or p.source is None:
        raise Conflict(
            f"proposal {p.id} did not pass the checks, so it cannot be approved: {clip(p.error or '', 600)} "
            'Send a corrected program ({"source": "..."}) or ask for another proposal ({"repropose": true}).'
        )
    _checked_task(run, p.source, settings)
    run.task.fitness_name, run.task.fitness_source = FitnessKind.PROPOSED, p.source
    _decide(p, ProposalStatus.APPROVED, user_id=user_id, who=who)
    _queue(session, run, dispatcher)
    return p


def replace(
    session: Session,
    *,
    run: Run,
    source: str,
    user_id: int | None,
    who: str,
    settings: Settings,
    dispatcher: Dispatcher,
) -> FitnessProposal:
    """A person's own (edited) program replaces the proposal once it passes the same checks, and is shown with its
    values on random-policy episodes as the open proposal; the run keeps waiting until it is approved.

    The program is measured in the sandbox outside the caller's transaction (which is committed first), on one of
    the person's slots (RateLimited when none is free); the run must still wait for a decision afterwards.
    InvalidInput (field 'source') with the checker's message when it does not pass.
    """
    _waiting(run)
    if not (source or "").strip():
        raise InvalidInput("the edited fitness program is empty; send the whole program", field="source")
    _checked_task(run, source, settings)  # the static rules and the budget, before anything runs
    checked = measure_for_person(
        session,
        settings=settings,
        user_id=user_id,
        env=run.task.env,
        source=source,
        max_steps=options_of(run.task).train.episode_steps,
    )
    if checked.status != ProposalStatus.PROPOSED:
        raise InvalidInput(checked.error or "the program did not pass the checks", field="source")
    session.refresh(run, with_for_update=True)  # a new transaction: someone may have decided meanwhile
    _waiting(run)
    for p in proposals_of(session, run.id):
        if p.status in PROPOSAL_OPEN:
            _decide(p, ProposalStatus.REPLACED, user_id=user_id, who=who)
    edit = FitnessProposal(
        run_id=run.id,
        origin=Origin.PERSON,
        author=who,
        user_id=user_id,
        name=FitnessKind.PROPOSED,
        meaning=f"a program written or edited by {who}",
        source=source,
        dry_run=checked.dry_run,
        measurement=checked.measurement,
    )
    session.add(edit)  # status 'proposed': approved like any proposal, once the person has seen what it measures
    session.flush()
    return edit


def repropose(
    session: Session,
    *,
    run: Run,
    note: str | None,
    user_id: int | None,
    who: str,
    settings: Settings,
    dispatcher: Dispatcher,
) -> None:
    """Set the open proposal aside (with the person's reason) and have another proposed; the reason goes into the
    next prompt (the offline designer reads its words). Conflict when the run has had as many proposals as one run
    may have; RateLimited when the person asked for too many in the last hour, or already waits for as many
    proposals as they have slots."""
    _waiting(run)
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_CHARS:
        raise InvalidInput(f"the note is limited to {NOTE_CHARS:,} characters", field="note")
    session.refresh(run, with_for_update=True)  # one request at a time per run: the second finds it queued
    _waiting(run)
    admit_reproposal(session, run=run, user_id=user_id, settings=settings)
    for p in proposals_of(session, run.id):
        if p.status in PROPOSAL_OPEN:
            p.note = note
            _decide(p, ProposalStatus.REJECTED, user_id=user_id, who=who)
    _queue(session, run, dispatcher)


def decide(
    session: Session,
    *,
    run: Run,
    approve_it: bool = False,
    source: str | None = None,
    again: bool = False,
    note: str | None = None,
    user_id: int | None,
    who: str,
    settings: Settings,
    dispatcher: Dispatcher,
) -> FitnessProposal | None:
    """One decision on the open proposal (POST /runs/{id}/fitness): approve it, replace it with ``source``, or ask
    for another; exactly one."""
    chosen = [
        name for name, given in (("approve", approve_it), ("source", source is not None), ("repropose", again)) if given
    ]
    if len(chosen) != 1:
        raise InvalidInput(
            'send exactly one of {"approve": true}, {"source": "<the edited program>"} or {"repropose": true} '
            f'(with an optional "note"); got {", ".join(chosen) or "none"}',
            field=chosen[0] if chosen else None,
        )
    if note is not None and not again:
        raise InvalidInput("a note goes with a request for another proposal ('repropose')", field="note")
    if approve_it:
        return approve(session, run=run, user_id=user_id, who=who, settings=settings, dispatcher=dispatcher)
    if source is not None:
        return replace(
            session, run=run, source=source, user_id=user_id, who=who, settings=settings, dispatcher=dispatcher
        )
    repropose(session, run=run, note=note, user_id=user_id, who=who, settings=settings, dispatcher=dispatcher)
    return None


def resume_unapproved(session: Session, *, run: Run, dispatcher: Dispatcher) -> Run:
    """Resume a cancelled or failed run whose fitness was never approved: back to waiting for a decision when a
    proposal is open, else propose again."""
    if run.status == RunStatus.WAITING_FITNESS:
        raise Conflict(
            f"run {run.id} waits for a decision on its proposed fitness: approve it, edit it or ask for another "
            f"(POST /api/v1/runs/{run.id}/fitness, or the run's page); it starts by itself after that"
        )
    if open_proposal(session, run.id) is not None:
        set_status(run, RunStatus.WAITING_FITNESS)
        run.error, run.finished_at = None, None
    else:
        _queue(session, run, dispatcher)
    return run
