"""GET /candidates/{id}, artifact and code downloads, POST feedback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import PlainTextResponse, Response

from app.search.service import add_feedback
from app.web import access, files, present
from app.web.deps import CurrentUser, SessionDep, SettingsDep
from app.web.schemas import UNAUTHORIZED, CandidateOut, FeedbackIn, FeedbackOut, Responses

router = APIRouter(prefix="/candidates", tags=["candidates"], responses=UNAUTHORIZED)
NOT_FOUND: Responses = {404: {"description": "no such candidate or file"}}
PYTHON_FILE: Responses = {
    200: {"description": "a Python module", "content": {"text/x-python": {"schema": {"type": "string"}}}}
}
ARTIFACT_FILE: Responses = {
    200: {
        "description": "the file, as the training wrote it",
        "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in files.MEDIA.values()},
    },
    206: {
        "description": "the byte range the Range header asked for",
        "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in files.MEDIA.values()},
    },
    416: {"description": "the range starts past the end of the file"},
    503: {"description": "the artifact store cannot be reached"},
}
# Downloads declare response_class=Response so that FastAPI documents their error answers as JSON, not as files.


@router.get("/{candidate_id}", response_model=CandidateOut, responses=NOT_FOUND)
def get_candidate(candidate_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> CandidateOut:
    """Code, status, error, critic notes, reflection, fitness, component statistics, trainings, artifact links."""
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    return present.candidate_out(session, c, store=files.artifact_store(settings))


@router.get("/{candidate_id}/reward.py", response_class=Response, responses={**PYTHON_FILE, **NOT_FOUND})
def get_reward_file(candidate_id: int, user: CurrentUser, session: SessionDep) -> PlainTextResponse:
    """The reward program as a .py file."""
    return files.reward_response(access.candidate_or_404(session, candidate_id=candidate_id, user=user))


@router.get("/{candidate_id}/wrapper.py", response_class=Response, responses={**PYTHON_FILE, **NOT_FOUND})
def get_wrapper_file(candidate_id: int, user: CurrentUser, session: SessionDep) -> PlainTextResponse:
    """The reward as a ready Gymnasium wrapper module."""
    return files.wrapper_response(access.candidate_or_404(session, candidate_id=candidate_id, user=user))


@router.get(
    "/{candidate_id}/bundle.zip",
    response_class=Response,
    responses={200: {"description": "a zip", "content": {"application/zip": {}}}, **NOT_FOUND},
)
def get_bundle(candidate_id: int, user: CurrentUser, session: SessionDep, settings: SettingsDep) -> Response:
    """The export bundle: the reward as a Gymnasium wrapper, the trained policy (policy.zip, vecnormalize.pkl) and
    enjoy.py, which runs it with plain Gymnasium + Stable-Baselines3 and prints the fitness (no rewardsmith needed)."""
    return files.bundle_response(access.candidate_or_404(session, candidate_id=candidate_id, user=user), settings)


@router.get(
    "/{candidate_id}/artifacts/{training_id}/{name}", response_class=Response, responses={**ARTIFACT_FILE, **NOT_FOUND}
)
def get_artifact(
    candidate_id: int,
    training_id: int,
    name: str,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    range_: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """A file a training produced: video.mp4, policy.zip (``PPO.load``), vecnormalize.pkl (``VecNormalize.load``),
    result.json, reward.py. A ``Range: bytes=start-end`` header gets that part (206), as video players ask."""
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    return files.artifact_response(c, training_id=training_id, name=name, settings=settings, range_header=range_)


@router.post("/{candidate_id}/feedback", status_code=201, response_model=FeedbackOut, responses=NOT_FOUND)
def post_feedback(candidate_id: int, body: FeedbackIn, user: CurrentUser, session: SessionDep) -> FeedbackOut:
    """Tell the designer what you saw; the next iteration's prompt carries it."""
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    fb = add_feedback(session, candidate=c, text=body.text, rating=body.rating, user_id=user.id)
    return present.feedback_out(fb, user)
