"""GET and POST /runs/{id}/fitness: the proposed fitness of a 'propose' task, and a person's decision on it."""

from __future__ import annotations

from fastapi import APIRouter

from app.search.records.proposals import proposals_of
from app.search.service import decide
from app.web import access, present
from app.web.deps import CurrentUser, DispatcherDep, SessionDep, SettingsDep
from app.web.schemas import UNAUTHORIZED, FitnessDecision, ProposalOut, Responses, RunOut

router = APIRouter(prefix="/runs", tags=["fitness"], responses=UNAUTHORIZED)

NOT_FOUND: Responses = {404: {"description": "no such run"}}
DECISION: Responses = {
    409: {"description": "the run does not wait for a fitness decision, or the proposal did not pass the checks"},
    422: {"description": "not exactly one decision, or an edited program that the checks refuse (with why)"},
}


@router.get("/{run_id}/fitness", response_model=list[ProposalOut], responses=NOT_FOUND)
def list_proposals(run_id: int, user: CurrentUser, session: SessionDep) -> list[ProposalOut]:
    """Every fitness proposal of the run, oldest first: who made it, what it measured, who decided what, when."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    return [present.proposal_out(p) for p in proposals_of(session, run.id)]


@router.post("/{run_id}/fitness", response_model=RunOut, responses={**NOT_FOUND, **DECISION})
def post_fitness(
    run_id: int,
    body: FitnessDecision,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
) -> RunOut:
    """Decide on the proposed fitness while the run is 'waiting_fitness': `{"approve": true}` starts the search
    with it; `{"source": "<program>"}` replaces it with your program once that passes the checks (422 with the
    checker's message otherwise); `{"repropose": true, "note": "why"}` asks for another."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    decide(
        session,
        run=run,
        approve_it=body.approve,
        source=body.source,
        again=body.repropose,
        note=body.note,
        user_id=user.id,
        who=user.name,
        settings=settings,
        dispatcher=dispatcher,
    )
    return present.run_out(session, run, settings)
