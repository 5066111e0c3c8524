"""GET /runs/{id}, cancel, resume, and the run's candidates."""

from __future__ import annotations

from fastapi import APIRouter

from app.search.service import cancel_run, resume_run
from app.web import access, present
from app.web.deps import CurrentUser, DispatcherDep, SessionDep, SettingsDep
from app.web.schemas import UNAUTHORIZED, CandidateSummary, Responses, RunOut

router = APIRouter(prefix="/runs", tags=["runs"], responses=UNAUTHORIZED)

NOT_FOUND: Responses = {404: {"description": "no such run"}}
CONFLICT: Responses = {409: {"description": "not allowed from the run's current status"}}


@router.get("/{run_id}", response_model=RunOut, responses=NOT_FOUND)
def get_run(run_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> RunOut:
    """Status, progress, best candidate, token usage and final figures of a run."""
    return present.run_out(session, access.run_or_404(session, run_id=run_id, user=user), settings)


@router.post("/{run_id}/cancel", response_model=RunOut, responses={**NOT_FOUND, **CONFLICT})
def post_cancel(run_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> RunOut:
    """Cancel a run; trainings stop at their next checkpoint. Resume continues it."""
    run = cancel_run(session, run=access.run_or_404(session, run_id=run_id, user=user))
    return present.run_out(session, run, settings)


@router.post("/{run_id}/resume", response_model=RunOut, responses={**NOT_FOUND, **CONFLICT})
def post_resume(
    run_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep, dispatcher: DispatcherDep
) -> RunOut:
    """Continue a run that waits for feedback, was cancelled, or failed."""
    run = resume_run(session, run=access.run_or_404(session, run_id=run_id, user=user), dispatcher=dispatcher)
    return present.run_out(session, run, settings)


@router.get("/{run_id}/candidates", response_model=list[CandidateSummary], responses=NOT_FOUND)
def list_candidates(run_id: int, user: CurrentUser, session: SessionDep) -> list[CandidateSummary]:
    """Every candidate of the run (baselines included), in creation order."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    return [present.candidate_summary(c) for c in run.candidates]
