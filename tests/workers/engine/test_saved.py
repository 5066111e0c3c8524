"""A saved training is continued without running anything its files could carry: policy.zip and vecnormalize.pkl
replaced by pickles that would run code are refused unread, and the real ones load."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import envs
from envs.spec import PPODefaults
from workers.engine.batched import BatchedEnv
from workers.engine.evaluate import evaluate_reward
from workers.engine.model import build_model, new_ppo, save
from workers.engine.result import SavedFileError
from workers.engine.saved import load_normalization, load_parameters, saved_timesteps
from workers.engine.wrapper import ContractReward
from workers.program.program import load_program
from workers.sandbox.runner import Limits

SMALL = {"n_envs": 2, "n_steps": 64, "batch_size": 64, "n_epochs": 1, "net_arch": (8, 8)}


class MakesMarker:
    """Unpickling this creates the directory ``marker``: what a hostile file would do, made visible."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.mkdir, (str(self.marker),))


def small() -> PPODefaults:
    return replace(envs.get_spec("Hopper-v5").ppo, **SMALL)


def contract() -> ContractReward:
    spec = envs.get_spec("Hopper-v5")
    program = load_program(spec.reference_reward)
    return ContractReward(BatchedEnv(spec, [0, 1], needs=program.attributes), program)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """policy.zip and vecnormalize.pkl of an (untrained) SB3 PPO, as a training saves them."""
    model = build_model(contract(), small(), seed=0)
    model.venv.reset()
    save(model, tmp_path)
    return tmp_path


def test_the_files_a_training_saves_load_back(saved: Path) -> None:
    venv = load_normalization(saved / "vecnormalize.pkl", contract())
    assert isinstance(venv, VecNormalize) and venv.training and venv.obs_rms.mean.shape == (11,)
    model = new_ppo(venv, small(), seed=0)
    load_parameters(model, saved / "policy.zip")
    assert saved_timesteps(saved / "policy.zip") == 0


def test_a_vecnormalize_pkl_that_would_run_code_is_refused_unread(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for hostile in (MakesMarker(marker), {"obs_rms": MakesMarker(marker)}):
        (saved / "vecnormalize.pkl").write_bytes(pickle.dumps(hostile))
        with pytest.raises(SavedFileError, match=r"vecnormalize.pkl .* is not a saved VecNormalize .*posix\.mkdir"):
            load_normalization(saved / "vecnormalize.pkl", contract())
        assert not marker.exists()


def _rezip(path: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in {**members, **replace}.items():
            archive.writestr(name, data)


def test_a_policy_zip_that_would_run_code_is_refused_unread(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    model = new_ppo(load_normalization(saved / "vecnormalize.pkl", contract()), small(), seed=0)
    policy = saved / "policy.zip"
    original = policy.read_bytes()
    cases = {
        "a pickle, not a zip": lambda: policy.write_bytes(pickle.dumps(MakesMarker(marker))),
        "weights that are a pickle": lambda: _rezip(policy, {"policy.pth": pickle.dumps(MakesMarker(marker))}),
        "a member SB3 does not write": lambda: _rezip(policy, {"evil.pkl": pickle.dumps(MakesMarker(marker))}),
    }
    for why, spoil in cases.items():
        policy.write_bytes(original)
        spoil()
        with pytest.raises(SavedFileError, match=r"^policy.zip of the training to continue ") as refused:
            load_parameters(model, policy)
        assert "it was not loaded" in str(refused.value), why
        assert not marker.exists(), why


def test_a_pickled_entry_in_the_policys_data_is_never_unpickled(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    policy = saved / "policy.zip"
    with zipfile.ZipFile(policy) as archive:
        data = json.loads(archive.read("data"))
    hostile = {":type:": "<class 'x'>", ":serialized:": base64.b64encode(pickle.dumps(MakesMarker(marker))).decode()}
    _rezip(policy, {"data": json.dumps({**data, "observation_space": hostile, "num_timesteps": 4096}).encode()})
    model = new_ppo(load_normalization(saved / "vecnormalize.pkl", contract()), small(), seed=0)
    load_parameters(model, policy)
    assert saved_timesteps(policy) == 4096
    assert not marker.exists()
    with pytest.raises(ValueError):  # SB3's own loader unpickles that entry (then finds no space in it)
        PPO.load(policy, device="cpu")
    assert marker.exists(), "the hostile entry is real: SB3's loader ran it"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["policy.zip", "vecnormalize.pkl"])
def test_continuing_from_a_hostile_file_fails_cleanly_and_runs_nothing(name: str, tmp_path: Path) -> None:
    spec = envs.get_spec("Hopper-v5")
    first, second = tmp_path / "first", tmp_path / "second"
    limits = Limits(wall_seconds=300, progress_seconds=60)
    options = {"episode_steps": 100, "eval_episodes": 1, "checkpoints": 1, "ppo": {**SMALL, "net_arch": [8, 8]}}
    common = {
        "env": spec.name,
        "reward_source": spec.reference_reward,
        "fitness_name": None,
        "fitness_source": None,
        "seed": 0,
        "limits": limits,
    }
    done = evaluate_reward(**common, timesteps=1024, out=first, options=options)
    assert done["status"] == "ok", done["error"]
    marker = tmp_path / "ran"
    (first / name).write_bytes(pickle.dumps(MakesMarker(marker)))
    result = evaluate_reward(**common, timesteps=2048, out=second, options={**options, "resume_from": str(first)})
    assert result["status"] == "failed"
    assert result["error"].startswith(f"{name} of the training to continue ") and "it was not loaded" in result["error"]
    assert "traceback" not in result and not marker.exists()
    assert not (second / "policy.zip").exists()
