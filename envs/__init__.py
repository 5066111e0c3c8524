"""The env registry: every MuJoCo env rewardsmith can design rewards for."""

from __future__ import annotations

import difflib

from envs import ant, halfcheetah, hopper, humanoid, walker2d
from envs.spec import EnvSpec

REGISTRY: dict[str, EnvSpec] = {m.SPEC.name: m.SPEC for m in (halfcheetah, hopper, walker2d, ant, humanoid)}


class UnknownEnvError(ValueError):
    """An env name that is not in the registry."""


def get_spec(name: str) -> EnvSpec:
    """The registered env ``name``; the error names the closest match and lists all."""
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise UnknownEnvError(
            f"unknown env '{name}'.{hint} Known envs: {', '.join(REGISTRY)} (see `rewardsmith envs`)."
        ) from None


def names() -> list[str]:
    return list(REGISTRY)
