"""Downloads from the dashboard (videos, training files, the reward as .py and as a wrapper) behind the dashboard's
session: the REST API takes Bearer tokens only, so the pages cannot link to it. Same access rules, same files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import PlainTextResponse, Response

from app.dashboard.session import PageUser
from app.web import access, files
from app.web.deps import SessionDep, SettingsDep, sound_form_and_query

router = APIRouter(prefix="/candidates", include_in_schema=False, dependencies=[Depends(sound_form_and_query)])


@router.get("/{candidate_id}/reward.py")
def reward_file(candidate_id: int, user: PageUser, session: SessionDep) -> PlainTextResponse:
    return files.reward_response(access.candidate_or_404(session, candidate_id=candidate_id, user=user))


@router.get("/{candidate_id}/wrapper.py")
def wrapper_file(candidate_id: int, user: PageUser, session: SessionDep) -> PlainTextResponse:
    return files.wrapper_response(access.candidate_or_404(session, candidate_id=candidate_id, user=user))


@router.get("/{candidate_id}/bundle.zip")
def bundle(candidate_id: int, user: PageUser, session: SessionDep, settings: SettingsDep) -> Response:
    return files.bundle_response(access.candidate_or_404(session, candidate_id=candidate_id, user=user), settings)


@router.get("/{candidate_id}/artifacts/{training_id}/{name}")
def artifact(
    candidate_id: int,
    training_id: int,
    name: str,
    user: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    range_: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """A training's file; videos play and seek with byte ranges (206)."""
    c = access.candidate_or_404(session, candidate_id=candidate_id, user=user)
    return files.artifact_response(c, training_id=training_id, name=name, settings=settings, range_header=range_)
