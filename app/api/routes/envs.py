"""GET /envs, GET /envs/{env}: the registry, with the state description the designer sees."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

import envs
from app.errors import NotFound
from app.web.deps import CurrentUser
from app.web.schemas import UNAUTHORIZED, EnvDetail, EnvSummary, FieldOut, MetricOut
from envs.describe import describe
from envs.fitness import METRICS
from envs.spec import EnvSpec

router = APIRouter(prefix="/envs", tags=["envs"], responses=UNAUTHORIZED)


def _summary(spec: EnvSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "title": spec.title,
        "summary": spec.summary,
        "planar": spec.planar,
        "reference_fitness": list(spec.reference_fitness),
    }


@router.get("", response_model=list[EnvSummary])
def list_envs(user: CurrentUser) -> list[EnvSummary]:
    """The envs rewards can be designed for."""
    return [EnvSummary(**_summary(envs.get_spec(n))) for n in envs.names()]


@router.get("/{env}", response_model=EnvDetail, responses={404: {"description": "unknown env"}})
def get_env(env: str, user: CurrentUser) -> EnvDetail:
    """One env: its state description, fields, action, termination, fitness metrics and reference reward."""
    try:
        spec = envs.get_spec(env)
    except envs.UnknownEnvError as e:
        raise NotFound(str(e)) from None
    return EnvDetail(
        **_summary(spec),
        description=describe(spec),
        fields=[FieldOut(name=f.name, shape=f.shape, unit=f.unit, meaning=f.meaning) for f in spec.fields()],
        action=spec.action,
        termination=spec.termination,
        fitness_metrics=[MetricOut(name=m.name, meaning=m.meaning) for m in METRICS.values()],
        reference_reward=spec.reference_reward,
    )
