"""Time estimates divide by the rate trainings measured here, not by a guess, once there are any."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import sessionmaker

from app.db import session_scope
from app.db.models import Training
from app.search.records.speed import training_rate
from tests.app.api.harness import make_api, seed_finished_run


def test_the_rate_is_the_setting_until_trainings_measure_one(db_sf: sessionmaker, tmp_path: Path) -> None:
    api = make_api(db_sf, tmp_path, train_steps_per_second=4321.0)
    with session_scope(api.sf) as s:
        assert training_rate(s, api.settings, env="Hopper-v5") == (4321.0, "REWARDSMITH_TRAIN_STEPS_PER_SECOND")
    api.user("alice")
    seed_finished_run(api, owner="alice")  # one finished training that measured 900 steps/s
    with session_scope(api.sf) as s:
        rate, source = training_rate(s, api.settings, env="HalfCheetah-v5")
    assert rate == 900.0 and "median of the last 1 trainings" in source


def test_the_rate_is_the_envs_own_never_a_median_across_envs(db_sf: sessionmaker, tmp_path: Path) -> None:
    """A HalfCheetah training's speed says nothing about a Hopper: until a Hopper training has finished, the
    estimate is the setting, named as such; and a training's whole wall-clock time is what a person waits for."""
    api = make_api(db_sf, tmp_path, train_steps_per_second=4321.0)
    api.user("alice")
    seeded = seed_finished_run(api, owner="alice")  # HalfCheetah, 900 steps/s while learning
    with session_scope(api.sf) as s:
        assert training_rate(s, api.settings, env="Hopper-v5") == (4321.0, "REWARDSMITH_TRAIN_STEPS_PER_SECOND")
        t = s.get(Training, seeded.training_id)
        t.result = {**t.result, "wall_seconds": 8.0}  # 2,048 steps in 8 s from start to end
    with session_scope(api.sf) as s:
        rate, source = training_rate(s, api.settings, env="HalfCheetah-v5")
    assert rate == 256.0 and source == "the median of the last 1 trainings of HalfCheetah-v5 here"
