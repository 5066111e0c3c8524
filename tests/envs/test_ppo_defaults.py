"""Each env's PPO defaults are the settings its learning curves chose (benchmarks/results/ppo_defaults.json)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

import envs

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "ppo_defaults.json"
KEPT: set[str] = set()
"""Built-in envs whose defaults no learning curves chose (none now). Ant, HalfCheetah and Humanoid kept RL Zoo's
settings, sized for the engine, because their curves chose them: no alternative won beyond the seeds' spread."""
TUNED = [name for name in envs.REGISTRY if name not in KEPT]


def _plain(value: object) -> object:
    """JSON's view of a setting: tuples as lists, inside dicts too."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@pytest.fixture(scope="module")
def curves() -> dict:
    return json.loads(RESULTS.read_text())


@pytest.mark.parametrize("env", TUNED)
def test_the_defaults_are_what_the_learning_curves_chose(curves: dict, env: str) -> None:
    measured = curves["envs"][env]
    summary = measured["summary"]
    chosen = summary["chosen"]
    assert not curves["quick"] and measured["seeds"] >= 2, "chosen from a real run, with a spread over seeds"
    assert chosen in summary["configs"] and (chosen == "default" or summary["verdicts"][chosen]["better"])
    expected = {**measured["defaults"], **summary["configs"][chosen]["overrides"]}
    assert _plain(asdict(envs.get_spec(env).ppo)) == _plain(expected), (
        f"{env}'s PPODefaults differ from the settings benchmarks/ppo_defaults.py chose ({chosen}): set them, or "
        "rerun the benchmark"
    )
