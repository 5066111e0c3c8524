"""Jinja2 templates for every LLM call; the only place prompt text lives."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent


@lru_cache
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(name: str, **context: object) -> str:
    """Render ``prompts/<name>.j2`` with ``context``; a missing variable is an error, not an empty string."""
    return _env().get_template(f"{name}.j2").render(**context).strip() + "\n"
