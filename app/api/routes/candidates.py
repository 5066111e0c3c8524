"""GET /candidates/{id}, artifact and code downloads, POST feedback."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, PlainTextResponse, Response

from app.api import access, present
from app.api.deps import CurrentUser, SessionDep
from app.api.schemas import UNAUTHORIZED, CandidateOut, FeedbackIn, FeedbackOut, Responses
from app.errors import NotFound
from app.export import wrapper_module
from app.search.service import add_feedback

router = APIRouter(prefix="/candidates", tags=["candidates"], responses=UNAUTHORIZED)
NOT_FOUND: Responses = {404: {"description": "no such candidate or file"}}
MEDIA = {
    ".mp4": "video/mp4",
    ".zip": "application/zip",
    ".json": "application/json",
    ".py": "text/x-python",
    ".pkl": "application/octet-stream",
}
PYTHON_FILE: Responses = {
    200: {"description": "a Python module", "content": {"text/x-python": {"schema": {"type": "string"}}}}
}
ARTIFACT_FILE: Responses = {
    200: {
        "description": "the file, as the training wrote it",
        "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in MEDIA.values()},
    }
}
# Downloads declare response_class=Response so that FastAPI documents their error answers as JSON, not as files.


@router.get("/{candidate_id}", response_model=CandidateOut, responses=NOT_FOUND)
def get_candidate(candidate_id: int, user: CurrentUser, session: SessionDep) -> CandidateOut:
    """Code, status, error, critic notes, reflection, fitness, component statistics, trainings, artifact links."""
    return present.candidate_out(session, access.candidate_or_404(session, candidate_id=candidate_id, user=user))


@router.get("/{candidate_id}/reward.py", response_class=Response, responses={**PYTHON_FILE, **NOT_FOUND})
def get_reward_file(candidate_id: int, user: CurrentUser, session: SessionDep) -> PlainTextResponse:
    """The reward program as a .py file."""
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    if not c.code:
        raise NotFound(f"candidate {candidate_id} has no program (the designer's answer held none)")
    return PlainTextResponse(
        c.code, media_type="text/x-python", headers={"Content-Disposition": f'attachment; filename="reward_{c.id}.py"'}
    )


@router.get("/{candidate_id}/wrapper.py", response_class=Response, responses={**PYTHON_FILE, **NOT_FOUND})
def get_wrapper_file(candidate_id: int, user: CurrentUser, session: SessionDep) -> PlainTextResponse:
    """The reward as a ready Gymnasium wrapper module."""
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    if not c.code:
        raise NotFound(f"candidate {candidate_id} has no program")
    return PlainTextResponse(
        wrapper_module(c.code, env=c.run.task.env, candidate_id=c.id),
        media_type="text/x-python",
        headers={"Content-Disposition": f'attachment; filename="reward_wrapper_{c.id}.py"'},
    )


@router.get(
    "/{candidate_id}/artifacts/{training_id}/{name}", response_class=Response, responses={**ARTIFACT_FILE, **NOT_FOUND}
)
def get_artifact(
    candidate_id: int, training_id: int, name: str, user: CurrentUser, session: SessionDep
) -> FileResponse:
    """A file a training produced: video.mp4, policy.zip, vecnormalize.pkl, result.json, reward.py."""
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    t = next((t for t in c.trainings if t.id == training_id), None)
    if t is None or not t.artifacts_dir or name not in present.ARTIFACT_NAMES:
        raise NotFound(f"no artifact '{name}' for training {training_id} of candidate {candidate_id}")
    path = Path(t.artifacts_dir) / name
    if not path.is_file():
        raise NotFound(f"training {training_id} did not produce '{name}'")
    return FileResponse(
        path,
        media_type=MEDIA.get(path.suffix, "application/octet-stream"),
        filename=f"candidate-{c.id}-training-{t.id}-{name}",
    )


@router.post("/{candidate_id}/feedback", status_code=201, response_model=FeedbackOut, responses=NOT_FOUND)
def post_feedback(candidate_id: int, body: FeedbackIn, user: CurrentUser, session: SessionDep) -> FeedbackOut:
    """Tell the designer what you saw; the next iteration's prompt carries it."""
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    fb = add_feedback(session, candidate=c, text=body.text, rating=body.rating, user_id=user.id)
    return present.feedback_out(fb, user)
