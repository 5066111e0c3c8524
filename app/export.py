"""Exports of a reward: a ready Gymnasium wrapper module."""

from __future__ import annotations

from prompts import _env


def wrapper_module(code: str, *, env: str, candidate_id: int) -> str:
    """A Python module that wraps ``env`` with the reward ``code`` (see prompts/wrapper_module.py.j2)."""
    return _env().get_template("wrapper_module.py.j2").render(code=code, env=env, candidate_id=candidate_id) + "\n"
