"""A real (tiny) PPO training through the sandbox: result.json, artifacts, failures that name the program's lines, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import envs
from envs.fitness import get_metric
from workers.engine.evaluate import evaluate_reward
from workers.engine.result import TrainingFailed, live_checkpoint
from workers.engine.train import TrainConfig, train
from workers.sandbox.runner import Limits

pytestmark = pytest.mark.slow

TINY_PPO = {"n_envs": 2, "n_steps": 256, "batch_size": 64, "n_epochs": 2, "net_arch": [32, 32]}
TINY = {"episode_steps": 200, "eval_episodes": 2, "checkpoints": 2, "ppo": TINY_PPO}
LEARNER_STATS = {
    "approx_kl",
    "clip_fraction",
    "explained_variance",
    "entropy",
    "policy_loss",
    "value_loss",
    "std",
    "learning_rate",
}


def evaluate(
    env: str, source: str, out: Path, timesteps: int = 2048, events: list | None = None, limits: Limits | None = None
) -> dict:
    return evaluate_reward(
        env=env,
        reward_source=source,
        fitness_name=None,
        fitness_source=None,
        timesteps=timesteps,
        seed=0,
        out=out,
        limits=limits or Limits(wall_seconds=300, progress_seconds=30),
        options=TINY,
        on_event=None if events is None else events.append,
    )


@pytest.mark.parametrize("env", ["HalfCheetah-v5", "Hopper-v5"])
def test_a_tiny_training_writes_result_json_and_the_policy(env: str, tmp_path: Path) -> None:
    source = envs.get_spec(env).reference_reward
    events: list[dict] = []
    result = evaluate(env, source, tmp_path, events=events)
    assert result["status"] == "ok", result["error"]
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["status"] == "ok" and on_disk["error"] is None
    assert on_disk["env"] == env and on_disk["fitness_name"] == "forward_distance"
    fitness = on_disk["fitness"]
    assert set(fitness) == {"mean", "std", "per_episode"}
    assert len(fitness["per_episode"]) == 2 and fitness["mean"] == pytest.approx(np.mean(fitness["per_episode"]))
    # components per checkpoint, as the reflection reads them
    components = on_disk["components"]
    assert set(components) >= {"forward", "ctrl_cost"}
    assert all(len(series) == 2 for series in components.values())
    assert all(c["max"] <= 0.0 for c in components["ctrl_cost"])
    assert [c["timesteps"] for c in on_disk["checkpoints"]] == [1024, 2048]
    assert on_disk["timesteps"] == 2048
    assert on_disk["seconds"] > 0 and on_disk["steps_per_second"] > 0
    assert on_disk["isolation"]["network"] == "isolated (own network namespace)"
    assert (tmp_path / "policy.zip").stat().st_size > 1000 and (tmp_path / "vecnormalize.pkl").stat().st_size > 100
    assert on_disk["artifacts"] == {
        "policy": "policy.zip",
        "normalization": "vecnormalize.pkl",
        "trajectories": "trajectories.npz",
        "tensorboard": "tb",
    }
    with np.load(tmp_path / "trajectories.npz", allow_pickle=False) as kept:  # the final evaluation's episodes
        assert kept["fitness"].tolist() == on_disk["fitness"]["per_episode"]
    assert list((tmp_path / "tb").glob("events.out.tfevents.*")), "SB3's logger wrote TensorBoard event files"
    learner = on_disk["checkpoints"][-1]["learner"]  # SB3 PPO's own statistics, per checkpoint
    assert set(learner) == {*LEARNER_STATS, "updates"} and learner["updates"] >= 1
    assert all(np.isfinite(learner[k]) for k in LEARNER_STATS) and learner["std"] > 0 and learner["entropy"] != 0
    assert (tmp_path / "reward.py").read_text() == source
    assert [e["event"] for e in events if e["event"] != "progress"] == ["start", "checkpoint", "checkpoint"]
    assert events[-1]["timesteps"] == 2048
    progress = [e for e in events if e["event"] == "progress"]  # one before each policy update at least
    assert len(progress) >= 2 and all(e["total"] == 2048 for e in progress)
    # each checkpoint streams out as it happens, whole: the worker's check lets all of it through
    streamed = [e["checkpoint"] for e in events if e["event"] == "checkpoint"]
    assert streamed == on_disk["checkpoints"]
    assert [live_checkpoint(c) for c in streamed] == on_disk["checkpoints"]
    assert all(c["env_reward"]["min"] <= c["env_reward"]["mean"] <= c["env_reward"]["max"] for c in streamed)


def test_the_saved_policy_loads_with_sb3_and_replays_its_evaluation(tmp_path: Path) -> None:
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from envs.make import make_gym_env
    from workers.engine.rollout import eval_seeds, rollout

    spec = envs.get_spec("Hopper-v5")
    result = evaluate("Hopper-v5", spec.reference_reward, tmp_path)
    assert result["status"] == "ok", result["error"]
    # What a user does with the files (this test trusts them: it made them)
    model = PPO.load(tmp_path / "policy.zip", device="cpu")
    norm = VecNormalize.load(str(tmp_path / "vecnormalize.pkl"), DummyVecEnv([lambda: make_gym_env(spec)]))

    def policy(obs: np.ndarray) -> np.ndarray:
        return model.predict(norm.normalize_obs(obs), deterministic=True)[0]

    assert model.num_timesteps == 2048 and policy(np.zeros((1, 11))).shape == (1, 3)
    _, episodes = rollout(spec, policy, eval_seeds(0, 2), max_steps=200)
    assert [e["env_return"] for e in result["episodes"]] == pytest.approx([e.env_return for e in episodes])


# Both break only late in an episode of a batch of two envs (training's batch size, which the dry run now uses too)
# and where an action is exactly at its bound, as the policy's clipped actions often are and the dry run's uniform
# random actions never are: what only the training-time checks can catch.
NAN_LATE = (
    "import numpy as np\n\n\n"
    "def compute_reward(state, action):\n"
    "    late = (state.step >= 150) & (action.shape[0] == 2) & np.any(np.abs(action) >= 1.0, axis=-1)\n"
    "    forward = np.where(late, np.nan, state.x_velocity)\n"
    "    return forward, {'forward': forward}\n"
)

RAISES_LATE = (
    "import numpy as np\n\n\n"
    "def lookup(values, step, n):\n"
    "    table = [0.0] * 150\n"
    "    return values * table[int(np.max(step)) * n]\n\n\n"
    "def compute_reward(state, action):\n"
    "    forward = lookup(state.x_velocity, state.step, (action.shape[0] == 2) * np.any(np.abs(action) >= 1.0))\n"
    "    return forward, {'forward': forward}\n"
)


def test_a_reward_that_turns_nan_during_training_fails_with_what_happened(tmp_path: Path) -> None:
    result = evaluate("HalfCheetah-v5", NAN_LATE, tmp_path)
    assert result["status"] == "failed"
    error = result["error"]
    assert "at training step" in error and "the reward is not finite (NaN or inf)" in error
    assert 'File "' not in error and "workers/" not in error and "site-packages" not in error
    assert 0 < result["timesteps"] < 2048
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk["status"] == "failed" and on_disk["error"] == error
    assert not (tmp_path / "policy.zip").exists()


def test_a_reward_that_raises_during_training_shows_only_its_own_lines(tmp_path: Path) -> None:
    result = evaluate("HalfCheetah-v5", RAISES_LATE, tmp_path)
    assert result["status"] == "failed"
    error = result["error"]
    assert "IndexError: list index out of range" in error
    assert (
        "line 10, in compute_reward: forward = lookup(state.x_velocity, state.step, (action.shape[0] == 2) * "
        "np.any(np.abs(action) >= 1.0))" in error
    )
    assert "line 6, in lookup: return values * table[int(np.max(step)) * n]" in error
    assert 'File "' not in error and "wrapper.py" not in error
    assert "stable_baselines3" not in error and "on_policy_algorithm" not in error, "SB3's frames are not the program's"


def test_training_resumes_from_an_earlier_policy_and_continues_the_step_count(tmp_path: Path) -> None:
    spec = envs.get_spec("Hopper-v5")
    base = dict(
        env=spec.name,
        reward_source=spec.reference_reward,
        fitness_source=get_metric("forward_distance").source,
        episode_steps=100,
        eval_episodes=1,
        checkpoints=2,
        ppo=TINY_PPO,
    )
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    done = train(TrainConfig(**base, timesteps=1024), first, lambda e: None)
    assert done["timesteps"] == 1024 and done["resumed_from_timesteps"] == 0
    events: list[dict] = []
    more = train(TrainConfig(**base, timesteps=2048, resume_from=str(first)), second, events.append)
    assert more["resumed_from_timesteps"] == 1024
    assert more["timesteps"] == 2048
    assert events[0] == {"event": "start", "total": 2048, "n_envs": 2, "resumed_from": 1024}
    assert all(c["timesteps"] > 1024 for c in more["checkpoints"])
    assert (second / "policy.zip").exists() and (second / "vecnormalize.pkl").exists()


def test_a_continued_training_that_already_has_its_budget_trains_no_more(tmp_path: Path) -> None:
    spec = envs.get_spec("HalfCheetah-v5")
    base = {
        "env": "HalfCheetah-v5",
        "reward_source": spec.reference_reward,
        "fitness_source": get_metric("forward_distance").source,
        "seed": 0,
        **TINY,
    }
    first = tmp_path / "first"
    first.mkdir()
    train(TrainConfig(**base, timesteps=1024), first, lambda e: None)
    again = tmp_path / "again"
    again.mkdir()
    result = train(TrainConfig(**base, timesteps=1000, resume_from=str(first)), again, lambda e: None)
    assert result["timesteps"] == 1024 and result["resumed_from_timesteps"] == 1024
    assert result["fitness"]["per_episode"], "it is still evaluated"


def test_a_reward_that_breaks_only_in_the_evaluation_fails_saying_so_and_keeps_the_checkpoints(tmp_path: Path) -> None:
    # Only the evaluation's trajectory analysis calls the reward on a whole episode (steps 1..200 in order, in one
    # batch); dry runs and training see batches whose steps lie close together or are not in order.
    source = (
        "import numpy as np\n\n\ndef compute_reward(state, action):\n"
        "    if action.shape[0] > 150 and np.all(np.diff(state.step) == 1):\n"
        "        return np.zeros(2)[5], {}\n"
        "    return state.x_velocity, {'forward': state.x_velocity}\n"
    )
    config = TrainConfig(
        env="HalfCheetah-v5",
        reward_source=source,
        fitness_source=get_metric("forward_distance").source,
        timesteps=1024,
        seed=0,
        **TINY,
    )
    with pytest.raises(TrainingFailed) as failed:
        train(config, tmp_path, lambda e: None)
    assert str(failed.value).startswith("during the evaluation:") and "IndexError" in str(failed.value)
    assert len(failed.value.partial["checkpoints"]) >= 1


def test_a_reward_that_hangs_late_is_killed_by_the_progress_watchdog_long_before_the_wall_clock(tmp_path: Path) -> None:
    hangs = (
        "import numpy as np\n\n\ndef compute_reward(state, action):\n"
        "    while action.shape[0] == 2 and np.all(state.step > 100) and np.any(np.abs(action) >= 1.0):\n"
        "        pass\n"
        "    return state.x_velocity, {'forward': state.x_velocity}\n"
    )
    events: list[dict] = []
    # 15 s: enough for the child's imports and dry run to reach the start of training on a busy 2-core machine
    result = evaluate(
        "HalfCheetah-v5", hangs, tmp_path, events=events, limits=Limits(wall_seconds=600, progress_seconds=15)
    )
    assert result["status"] == "timeout"
    error = result["error"]
    assert error.startswith("the job reported no training progress for 15 s and was killed")
    assert "(its last report came when training started, " in error and "A reward program that hangs" in error
    assert result["seconds"] < 60
    assert events and events[0]["event"] == "start"


def test_training_reports_progress_at_the_interval_it_is_given(tmp_path: Path) -> None:
    spec = envs.get_spec("HalfCheetah-v5")
    events: list[dict] = []
    config = TrainConfig(
        env=spec.name,
        reward_source=spec.reference_reward,
        fitness_source=get_metric("forward_distance").source,
        timesteps=2048,
        report_seconds=0.02,
        **TINY,
    )
    train(config, tmp_path, events.append)
    progress = [e["timesteps"] for e in events if e["event"] == "progress"]
    assert len(progress) > 2048 // 512 + 4, "more than one per rollout: time-based reports during rollouts"
    assert progress == sorted(progress) and 0 < progress[-1] <= 2048


def test_the_watchdog_says_when_training_last_reported() -> None:
    from workers.sandbox.runner import _Watchdog

    class Done:
        pid = 0

    dog = _Watchdog(Done(), Limits(wall_seconds=600, progress_seconds=120))  # type: ignore[arg-type]
    dog.stop()
    dog.progress({"event": "progress", "timesteps": 40_960, "total": 100_000})
    dog.reason = "progress"
    assert "(its last report came at training step 40,960 of 100,000, 0 s in)" in dog.explain()


BACKWARD = (
    "import numpy as np\n\n\n"
    "def compute_reward(state, action):\n"
    "    backward = -state.x_velocity\n"
    "    ctrl_cost = -0.1 * np.sum(np.square(action), axis=-1)\n"
    "    return backward + ctrl_cost, {'backward': backward, 'ctrl_cost': ctrl_cost}\n"
)


@pytest.mark.parametrize(("source", "sign"), [(envs.get_spec("HalfCheetah-v5").reference_reward, 1), (BACKWARD, -1)])
def test_a_short_training_learns_what_its_reward_asks(source: str, sign: int, tmp_path: Path) -> None:
    config = TrainConfig(
        env="HalfCheetah-v5",
        reward_source=source,
        fitness_source=get_metric("forward_distance").source,
        timesteps=60_000,
        seed=0,
        checkpoints=1,
        eval_episodes=2,
        episode_steps=300,
    )
    result = train(config, tmp_path, lambda e: None)
    assert sign * result["fitness"]["mean"] > 5.0, result["fitness"]


def test_the_video_shows_the_trained_policy(tmp_path: Path) -> None:
    spec = envs.get_spec("Hopper-v5")
    config = TrainConfig(
        env=spec.name,
        reward_source=spec.reference_reward,
        fitness_source=get_metric("forward_distance").source,
        timesteps=1024,
        video=True,
        video_steps=40,
        **{**TINY, "eval_episodes": 1, "checkpoints": 1},
    )
    result = train(config, tmp_path, lambda e: None)
    assert result["artifacts"]["video"] == "video.mp4" and (tmp_path / "video.mp4").stat().st_size > 1000


def test_a_budget_that_is_not_whole_rollouts_is_trained_exactly(tmp_path: Path) -> None:
    spec = envs.get_spec("HalfCheetah-v5")
    config = TrainConfig(
        env=spec.name,
        reward_source=spec.reference_reward,
        fitness_source=get_metric("forward_distance").source,
        timesteps=1200,  # two rollouts of 2 envs x 256 steps, then one of 88 vector steps
        **{**TINY, "eval_episodes": 1},
    )
    result = train(config, tmp_path, lambda e: None)
    assert result["timesteps"] == 1200 and result["checkpoints"][-1]["timesteps"] == 1200
    assert result["checkpoints"][-1]["learner"]["updates"] == 2, (
        "since step 600: the rollout to 1,024 and the shorter one"
    )
