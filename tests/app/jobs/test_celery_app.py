"""The Celery app's settings for long trainings, and the settings that keep a running training on one worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from celery import Celery
from pydantic import ValidationError

from app.jobs.celery_app import (
    QUEUE_LLM,
    QUEUE_TRAIN,
    TASK_DESIGN,
    TASK_PROPOSE,
    TASK_START,
    TASK_SWEEP,
    TASK_TRAIN,
    configure,
)
from tests.support.db import make_settings as settings_for


def test_long_trainings_are_acknowledged_late_one_at_a_time_within_the_visibility_timeout(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, broker_url="redis://127.0.0.1:6379/3", sandbox_wall_seconds=600, broker_visibility_timeout=900
    )
    conf = configure(Celery("t"), settings).conf
    assert (conf.task_acks_late, conf.task_reject_on_worker_lost, conf.worker_prefetch_multiplier) == (True, True, 1)
    assert conf.task_time_limit == 720 < conf.broker_transport_options["visibility_timeout"] == 900
    assert conf.broker_url == "redis://127.0.0.1:6379/3"
    assert conf.task_routes[TASK_TRAIN] == {"queue": QUEUE_TRAIN}
    for name in (TASK_START, TASK_DESIGN, TASK_PROPOSE, TASK_SWEEP):
        assert conf.task_routes[name] == {"queue": QUEUE_LLM}


def test_the_embedded_broker_lives_in_the_data_directory(tmp_path: Path) -> None:
    conf = configure(Celery("t"), settings_for(tmp_path)).conf
    assert conf.broker_url == f"sqla+sqlite:///{tmp_path / 'data' / 'broker.sqlite3'}"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (
            {"sandbox_wall_seconds": 3600, "broker_visibility_timeout": 3700},
            "REWARDSMITH_BROKER_VISIBILITY_TIMEOUT (3700)",
        ),
        ({"training_lease_seconds": 10}, "must be at least twice REWARDSMITH_TRAINING_HEARTBEAT_SECONDS (10)"),
        ({"training_lease_seconds": 5, "training_heartbeat_seconds": 3}, "REWARDSMITH_TRAINING_LEASE_SECONDS (5)"),
    ],
)
def test_settings_that_would_run_a_training_twice_are_refused(tmp_path: Path, overrides: dict, words: str) -> None:
    with pytest.raises(ValidationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        settings_for(tmp_path, **overrides)
    settings_for(tmp_path, training_lease_seconds=8, training_heartbeat_seconds=2)  # consistent values pass
