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
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    settings = make_settings(tmp_path, train_threads=2)
    assert settings.sandbox_limits().threads == 2  # the sandbox passes it to TrainConfig.threads
    assert settings.train_slots == 4, "a worker runs cores / threads trainings at once"
    assert make_settings(tmp_path, train_threads=16).train_slots == 1
