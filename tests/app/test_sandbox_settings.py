"""The sandbox's settings reach every sandbox the service and the CLI start, and unsafe values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import get_settings
from tests.support.db import make_settings


def test_the_watchdog_and_the_reward_budget_come_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, sandbox_progress_seconds=45, sandbox_reward_cost_ratio=4)
    limits = settings.sandbox_limits()
    assert (limits.progress_seconds, limits.reward_cost_ratio) == (45, 4)
    assert settings.sandbox_limits(wall_seconds=120).progress_seconds == 45  # dry runs too
    monkeypatch.setenv("REWARDSMITH_SANDBOX_PROGRESS_SECONDS", "300")
    monkeypatch.setenv("REWARDSMITH_SANDBOX_REWARD_COST_RATIO", "25")
    get_settings.cache_clear()
    try:
        limits = get_settings().sandbox_limits()
        assert (limits.progress_seconds, limits.reward_cost_ratio) == (300, 25)
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"sandbox_progress_seconds": 10}, "REWARDSMITH_SANDBOX_PROGRESS_SECONDS (10) must be at least 30"),
        ({"sandbox_reward_cost_ratio": 0.5}, "REWARDSMITH_SANDBOX_REWARD_COST_RATIO (0.5) must be at least 1"),
        ({"train_threads": 0}, "REWARDSMITH_TRAIN_THREADS (0) must be between 1 and 256"),
    ],
)
def test_a_watchdog_or_budget_that_would_fail_healthy_trainings_is_refused(
    tmp_path: Path, overrides: dict, words: str
) -> None:
    with pytest.raises(ValidationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        make_settings(tmp_path, **overrides)


def test_the_train_threads_reach_the_training_and_size_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.config as config

    monkeypatch.setattr(config, "usable_cores", lambda: 8)
    settings = make_settings(tmp_path, train_threads=2)
    assert settings.sandbox_limits().threads == 2  # the sandbox passes it to TrainConfig.threads
    assert settings.train_slots == 4, "a worker runs cores / threads trainings at once"
    assert make_settings(tmp_path, train_threads=16).train_slots == 1


@pytest.mark.parametrize(
    ("cpu_max", "cores"),
    [("max 100000\n", 8), ("200000 100000\n", 2), ("150000 100000\n", 2), ("50000 100000\n", 1), ("garbage", 8)],
)
def test_the_usable_cores_follow_a_containers_cpu_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str, cores: int
) -> None:
    """`cpus: 2` on a container (cgroup v2's cpu.max) sizes its worker to 2 trainings, whatever the host has."""
    import os

    from app.config import usable_cores

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(8)))
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert usable_cores(tmp_path / "cpu.max") == cores
    assert usable_cores(tmp_path / "missing") == 8
