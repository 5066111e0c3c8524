"""GET /runs/{id}, cancel, resume, and the run's candidates."""

from __future__ import annotations

from fastapi import APIRouter

from app.search.service import cancel_run, continue_run, new_run_from, resume_run
from app.web import access, present
from app.web.deps import CurrentUser, DispatcherDep, SessionDep, SettingsDep
from app.web.schemas import UNAUTHORIZED, CandidateSummary, ContinueIn, NewRunIn, Responses, RunOut, TaskOut

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


@router.post(
    "/{run_id}/continue",
    response_model=RunOut,
    responses={**NOT_FOUND, **CONFLICT, 422: {"description": "too many iterations, or the budget above the cap"}},
)
def post_continue(
    run_id: int,
    body: ContinueIn,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
) -> RunOut:
    """Continue a run that succeeded for more iterations: its best is the next parent, and the feedback given since
    it ended goes into the next iteration's prompt."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    continue_run(session, run=run, iterations=body.iterations, settings=settings, dispatcher=dispatcher)
    return present.run_out(session, run, settings)


@router.post(
    "/{run_id}/new-run",
    status_code=201,
    response_model=TaskOut,
    responses={**NOT_FOUND, **CONFLICT, 422: {"description": "invalid settings"}, 429: {"description": "rate limited"}},
)
def post_new_run(
    run_id: int,
    body: NewRunIn,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
) -> TaskOut:
    """A new task and run like this run's, with the settings in the body changed, whose first iteration starts
    from this run's best reward program."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    task, _ = new_run_from(
        session, run=run, changes=body.changes(), owner_id=user.id, settings=settings, dispatcher=dispatcher
    )
    session.refresh(task)
    return present.task_out(task, user)


@router.get("/{run_id}/candidates", response_model=list[CandidateSummary], responses=NOT_FOUND)
def list_candidates(run_id: int, user: CurrentUser, session: SessionDep) -> list[CandidateSummary]:
    """Every candidate of the run (baselines included), in creation order."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    return [present.candidate_summary(c) for c in run.candidates]
