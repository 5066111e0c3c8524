"""Shared test fixtures: paths, a private working directory (MuJoCo writes its log there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Offscreen rendering (videos) in the test process too, not only in sandbox children (which set it themselves);
# it must be set before mujoco is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")
# rich wraps at the terminal's width, 80 columns when there is none (pytest-xdist workers, CI): tests read whole lines.
os.environ["COLUMNS"] = "200"

pytest_plugins = ["tests.support.db", "tests.support.fixtures", "tests.support.s3"]
"""Fixtures every test module may take by name: databases (``db_sf``, ``pg_sf``, ``sqlite_sf``), the fake LLM, and an
S3-compatible server (``s3``, ``s3_env``)."""

ROOT = Path(__file__).resolve().parents[1]
LLM_FIXTURES = ROOT / "tests" / "fixtures" / "llm"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(autouse=True, scope="session")
def _private_cwd(tmp_path_factory: pytest.TempPathFactory):
    """Run every test from a scratch directory so nothing lands in the repository."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(old)


@pytest.fixture(scope="session")
def llm_fixtures() -> Path:
    return LLM_FIXTURES


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules with slow or browser tests run first (each module kept whole, in its own order), so that the quick
    tests fill the processes' last minutes instead of one process running a minute-long test alone at the end."""
    heavy = {item.module for item in items if item.get_closest_marker("slow") or item.get_closest_marker("browser")}
    items.sort(key=lambda item: item.module not in heavy)
