"""Pytest fixtures for the fake LLM and its scripted answers.

Registered for every test by ``tests/conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI

LLM_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llm"
"""Scripted answers (one assistant message per ``.md`` file), copied from the project's shared fixtures."""


def load_fixture(name: str) -> str:
    """The text of ``tests/fixtures/llm/<name>.md`` (``name`` with or without ``.md``)."""
    path = LLM_FIXTURES / (name if name.endswith(".md") else f"{name}.md")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in LLM_FIXTURES.glob("*.md") if p.stem != "README"))
        raise FileNotFoundError(f"no LLM fixture {path}; known: {known}")
    return path.read_text(encoding="utf-8")


def fixture_names() -> list[str]:
    """Every scripted answer's name (the README excluded)."""
    return sorted(p.stem for p in LLM_FIXTURES.glob("*.md") if p.stem != "README")


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    """A started fake OpenAI server with an empty script (answers 500 'script exhausted' until scripted)."""
    with FakeOpenAI() as server:
        yield server
