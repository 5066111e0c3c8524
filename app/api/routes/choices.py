"""GET /runs/{id}/comparisons and POST /runs/{id}/choices: human selection through the API."""

from __future__ import annotations

from fastapi import APIRouter

from app.search.service import choose
from app.web import access, files
from app.web.deps import CurrentUser, DispatcherDep, SessionDep, SettingsDep
from app.web.people import comparisons_out
from app.web.schemas import UNAUTHORIZED, ChoiceIn, ComparisonsOut, Responses

router = APIRouter(prefix="/runs", tags=["selection"], responses=UNAUTHORIZED)

NOT_FOUND: Responses = {404: {"description": "no such run"}}
CHOICE: Responses = {
    409: {"description": "the run does not select by a person's choices, or waits for none now"},
    422: {"description": "not a pending group, or a best (ranking) that is not of the group"},
}


@router.get("/{run_id}/comparisons", response_model=ComparisonsOut, responses=NOT_FOUND)
def get_comparisons(run_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> ComparisonsOut:
    """The groups of candidates that wait for your choice (with their videos), every choice so far and the scores."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    return comparisons_out(session, run, store=files.artifact_store(settings))


@router.post("/{run_id}/choices", status_code=201, response_model=ComparisonsOut, responses={**NOT_FOUND, **CHOICE})
def post_choice(
    run_id: int,
    body: ChoiceIn,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    dispatcher: DispatcherDep,
) -> ComparisonsOut:
    """Choose the best of one pending group (`best`), or rank it (`ranking`, best first), with an optional sentence
    (`text`, carried to the next prompt); or say that none of them is right (`none_right`, with `text`: the fitness
    picks the one that goes on). The last choice of an iteration continues the run."""
    run = access.run_or_404(session, run_id=run_id, user=user)
    choose(
        session,
        run=run,
        group=body.group,
        best=body.best,
        ranking=body.ranking,
        text=body.text,
        none_right=body.none_right,
        user_id=user.id,
        who=user.name,
        dispatcher=dispatcher,
    )
    return comparisons_out(session, run, store=files.artifact_store(settings))
