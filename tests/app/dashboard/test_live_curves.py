"""While a training runs, its checkpoints reach the pages: the worker writes each one the sandbox reports to the
training's row (checked field by field, bounded), the candidate page's live part and the run page redraw from them,
and a run's candidates share one chart with the baselines' fitness drawn across it."""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path

from app.config import Settings
from app.db import session_scope
from app.db.models import Candidate, Run, Training
from app.search.machine.training import TrainingJob, _Heartbeat, live_result
from tests.app.api.harness import RESULT, Api, seed_finished_run
from tests.app.dashboard.harness import Browser, log_in
from workers.engine.result import MAX_LIVE_CHECKPOINTS, MAX_LIVE_COMPONENTS, live_checkpoint


def signed_in(api: Api, name: str = "alice") -> Browser:
    api.user(name)
    return log_in(api, name)


def running(api: Api, seeded_run: int, candidate_id: int, training_id: int) -> None:
    """Put the seeded run back to the middle of its training: the run running, the training running, no result."""
    with session_scope(api.sf) as s:
        run = s.get(Run, seeded_run)
        run.status, run.phase, run.finished_at, run.best_candidate_id = "running", "search", None, None
        c = s.get(Candidate, candidate_id)
        c.status, c.fitness, c.fitness_std = "training", None, None
        t = s.get(Training, training_id)
        t.status, t.result, t.attempts = "running", {}, 1


def job(api: Api, run_id: int, training_id: int, tmp_path: Path) -> TrainingJob:
    return TrainingJob(
        training_id=training_id,
        run_id=run_id,
        env="HalfCheetah-v5",
        reward_source="",
        fitness_name="forward_distance",
        fitness_source=None,
        timesteps=2048,
        seed=0,
        key="run-1/candidate-1/training-1/attempt-1",
        work=tmp_path,
        options={},
        attempt=1,
    )


def event(index: int) -> dict:
    """A checkpoint event as the engine sends it (``workers.engine.checkpoints``)."""
    cp = copy.deepcopy(RESULT["checkpoints"][index])
    cp["env_reward"] = {"mean": 0.1 * (index + 1), "min": 0.0, "max": 1.0}
    return {
        "event": "checkpoint",
        "timesteps": cp["timesteps"],
        "total": 2048,
        "fitness": cp["fitness"],
        "checkpoint": cp,
    }


def test_checkpoints_stream_to_the_candidate_and_run_pages_while_the_training_runs(api: Api, tmp_path: Path) -> None:
    browser = signed_in(api)
    seeded = seed_finished_run(api, owner="alice")
    running(api, seeded.run_id, seeded.candidate_id, seeded.training_id)
    settings: Settings = api.settings
    heart = _Heartbeat(api.sf, job(api, seeded.run_id, seeded.training_id, tmp_path), settings)

    page = browser.client.get(f"/candidates/{seeded.candidate_id}").text
    assert f'hx-get="/ui/candidates/{seeded.candidate_id}/live"' in page  # it polls while the training runs
    assert "fitness over training" not in page

    heart.on_event(event(0))  # the sandbox reports its first checkpoint
    live = browser.htmx("GET", f"/ui/candidates/{seeded.candidate_id}/live").text
    assert "Training now: 1,024 of 2,048 steps · 1 checkpoint(s) so far" in live
    assert 'aria-label="fitness over training"' in live and 'aria-label="reward per step over training"' in live
    assert "approx_kl" in live  # the learner's statistics too

    heart.on_event(event(1))
    run_live = browser.htmx("GET", f"/ui/runs/{seeded.run_id}/live").text
    assert "over training, each candidate" in run_live
    curve = re.search(
        r'aria-label="fitness \(forward_distance\) over training, each candidate".*?</svg>', run_live, re.S
    )
    assert curve and curve.group(0).count("<circle") == 2  # both checkpoints of the running candidate
    assert f"#{seeded.candidate_id} it 1 (training)" in curve.group(0)
    with session_scope(api.sf) as s:
        t = s.get(Training, seeded.training_id)
        assert [c["timesteps"] for c in t.result["checkpoints"]] == [1024, 2048]
        assert t.result["progress"] == {"timesteps": 2048, "total": 2048, "fitness": 12.5}


def test_a_finished_candidate_without_ended_episodes_still_shows_a_return_curve(api: Api) -> None:
    """64 envs × 30k steps end no episode: the reward per step is drawn, and the episode return says why it is
    empty instead of 'no data yet'."""
    browser = signed_in(api)
    seeded = seed_finished_run(api, owner="alice")
    with session_scope(api.sf) as s:
        t = s.get(Training, seeded.training_id)
        result = copy.deepcopy(RESULT)
        for cp in result["checkpoints"]:
            cp.update(episodes=0, episode_return=None, episode_env_return=None, episode_length=None, truncated=0)
            cp["env_reward"] = {"mean": 0.3, "min": -1.0, "max": 1.0}
        result["ppo"] = {"n_envs": 64}
        t.result = result
    page = browser.client.get(f"/candidates/{seeded.candidate_id}").text
    assert "episode return over training: no data yet" not in page
    assert "no episode has ended yet; each of the 64 envs has run about 32 steps" in page
    per_step = re.search(r'aria-label="reward per step over training".*?</svg>', page, re.S)
    assert per_step and per_step.group(0).count("<circle") == 4  # two checkpoints × (this reward, env's own)
    assert "env&#x27;s own reward 0.3" in per_step.group(0)


def test_what_a_sandbox_reports_is_checked_and_bounded_before_it_reaches_the_database() -> None:
    hostile = {
        "timesteps": 10,
        "fitness": math.nan,
        "reward": {"mean": "1", "min": 0, "max": 1},
        "components": {f"c{i}": {"mean": 1.0, "min": 0.0, "max": 2.0} for i in range(100)}
        | {"x" * 500: {"mean": 1.0, "min": 0.0, "max": 1.0}, "bad\n": {"mean": 1.0, "min": 0.0, "max": 1.0}},
        "learner": {"approx_kl": 0.01, "evil": "<script>", "updates": True},
        "secret": "a" * 10_000,
        "episodes": -3,
    }
    cp = live_checkpoint(hostile)
    assert cp is not None
    assert cp["fitness"] is None and "reward" not in cp and "secret" not in cp and "episodes" not in cp
    assert len(cp["components"]) == MAX_LIVE_COMPONENTS and all(len(n) < 10 for n in cp["components"])
    assert cp["learner"] == {"approx_kl": 0.01}
    assert live_checkpoint({"fitness": 1.0}) is None and live_checkpoint("checkpoint") is None
    assert live_checkpoint({"timesteps": 2**60}) is None

    result: dict = {}
    for step in range(1, 200):
        result = live_result(result, {"timesteps": step, "total": 200, "checkpoint": {"timesteps": step}})
    assert len(result["checkpoints"]) == MAX_LIVE_CHECKPOINTS and result["checkpoints"][-1]["timesteps"] == 199
    # a training started over (a new attempt) drops what the earlier attempt left at or after its steps
    again = live_result(result, {"timesteps": 5, "total": 200, "checkpoint": {"timesteps": 5}})
    assert [c["timesteps"] for c in again["checkpoints"]] == [5]


def test_candidates_of_two_runs_share_one_chart_on_the_compare_page(api: Api) -> None:
    browser = signed_in(api)
    first = seed_finished_run(api, owner="alice")
    second = seed_finished_run(api, owner="alice")
    page = browser.client.get(f"/compare?a={first.candidate_id}&b={second.candidate_id}").text
    chart = re.search(r'aria-label="fitness over training, side by side".*?</svg>', page, re.S)
    assert chart, page[:2000]
    legend = re.findall(r'class="series-label"[^>]*>([^<]*)<', chart.group(0))
    assert legend == [
        f"run {first.run_id} #{first.candidate_id} 12.5",
        f"run {second.run_id} #{second.candidate_id} 12.5",
    ]
