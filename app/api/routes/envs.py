"""GET /envs, GET /envs/{env}: the built-in envs and the user robots you may use, with the state description the
designer sees."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import app.search.records.robots as robots
import envs
from app.db.models import User
from app.errors import NotFound
from app.web.deps import CurrentUser, SessionDep
from app.web.robots import api_picture_url, robot_out
from app.web.schemas import UNAUTHORIZED, EnvDetail, EnvSummary, FieldOut, MetricOut
from envs.describe import describe
from envs.fitness import metrics_for
from envs.spec import EnvSpec

router = APIRouter(prefix="/envs", tags=["envs"], responses=UNAUTHORIZED)


def _summary(spec: EnvSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "title": spec.title,
        "summary": spec.summary,
        "planar": spec.planar,
        "reference_fitness": list(spec.reference_fitness),
        "user_robot": spec.robot is not None,
    }


@router.get("", response_model=list[EnvSummary])
def list_envs(user: CurrentUser, session: SessionDep) -> list[EnvSummary]:
    """The envs rewards can be designed for: the built-in ones, then the user robots you may use (yours, those an
    admin shared; admins: all)."""
    built_in = [EnvSummary(**_summary(envs.get_spec(n))) for n in envs.names()]
    mine = robots.visible_robots(session, robots.Viewer.of(user))
    return built_in + [EnvSummary(**_summary(robots.described_spec(r))) for r in mine]


@router.get("/{env}", response_model=EnvDetail, responses={404: {"description": "unknown env"}})
def get_env(env: str, user: CurrentUser, session: SessionDep) -> EnvDetail:
    """One env: its state description, fields, action, termination, the fitness metrics that apply to it and its
    reference reward; for a user robot also its owner, settings, files and what compiling it found."""
    viewer = robots.Viewer.of(user)
    try:
        spec = robots.usable_env(session, name=env, viewer=viewer)
    except envs.UnknownEnvError as e:
        raise NotFound(str(e)) from None
    robot = robots.visible_robot(session, env, viewer) if spec.robot is not None else None
    return EnvDetail(
        **_summary(spec),
        description=describe(spec),
        fields=[FieldOut(name=f.name, shape=f.shape, unit=f.unit, meaning=f.meaning) for f in spec.fields()],
        action=spec.action,
        termination=spec.termination,
        fitness_metrics=[MetricOut(name=m.name, meaning=m.meaning) for m in metrics_for(spec)],
        reference_reward=spec.reference_reward,
        robot=robot_out(
            robot,
            session.get(User, robot.owner_id) if robot.owner_id else None,
            picture_url=api_picture_url(robot.name),
        )
        if robot is not None
        else None,
    )
