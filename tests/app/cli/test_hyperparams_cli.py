"""`--hyperparams FILE.yml|json` on `rewardsmith run` and `evaluate`: read with yaml.safe_load, checked by the same
schema as the API, refused naming the file and the key, and applied by the worker (a real tiny training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.search.design.verdict import verdict
from tests.app.cli.test_run_cli import TINY, rewardsmith

SOUND = "import numpy as np\n\n\ndef compute_reward(state, action):\n    return state.x_velocity, {'forward': state.x_velocity}\n"
TINY_PPO = "n_envs: 2\nn_steps: 256\nbatch_size: 128\nn_epochs: 2\nnet_arch: [32, 32]\n"


def evaluate(tmp_path: Path, hyperparams: str, name: str = "ppo.yml"):
    (tmp_path / name).write_text(hyperparams)
    (tmp_path / "reward.py").write_text(SOUND)
    args = [
        "evaluate",
        "--env",
        "HalfCheetah-v5",
        "--reward",
        str(tmp_path / "reward.py"),
        "--out",
        str(tmp_path / "o"),
    ]
    return CliRunner().invoke(cli, [*args, "--hyperparams", str(tmp_path / name)], env={"COLUMNS": "300"})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("learning_rate: 3e-4\n", ["ppo.yml: learning_rate: must be a number or 'lin_<number>'", "!!float"]),
        ("batch_size: 300\n", ["ppo.yml: batch_size 300 must divide", "64 × 64 = 4,096"]),
        ('policy_kwargs: "__import__(\'os\').system(\'touch pwned\')"\n', ["ppo.yml: policy_kwargs: cannot be read", "not a literal"]),
        ("n_steps: 256\nn_stpes: 128\n", ["ppo.yml: unknown option n_stpes; known here: n_envs, n_steps"]),
        ("Hopper-v5: {n_steps: 256}\n", ["holds settings for 'Hopper-v5', and the task's env is HalfCheetah-v5"]),
        ("n_steps: !!python/name:os.system\n", ["is not YAML or JSON"]),
    ],
)  # fmt: skip
def test_evaluate_refuses_bad_hyperparameters_naming_the_file_and_the_key(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    result = evaluate(tmp_path, text)
    assert result.exit_code == 2, result.output
    assert f"--hyperparams {tmp_path / 'ppo.yml'}" in result.output
    for word in words:
        assert word in " ".join(result.output.split()), result.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "pwned").exists()


def test_run_refuses_a_missing_or_bad_file_before_anything_runs(tmp_path: Path) -> None:
    missing = rewardsmith([*TINY, "--out", str(tmp_path / "out"), "--hyperparams", "nope.yml"], tmp_path, None)
    assert missing.returncode == 2 and "hyperparameter file 'nope.yml' does not exist" in missing.stderr
    (tmp_path / "ppo.json").write_text('{"learning_rate": "lin_5"}')
    bad = rewardsmith([*TINY, "--out", str(tmp_path / "out"), "--hyperparams", "ppo.json"], tmp_path, None)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "--hyperparams ppo.json: learning_rate: must be above 0 and at most 1" in " ".join(bad.stderr.split())
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_run_trains_with_a_linear_learning_rate_and_records_it(tmp_path: Path) -> None:
    (tmp_path / "ppo.yml").write_text(TINY_PPO + "learning_rate: lin_3e-4\npolicy_kwargs: {activation_fn: nn.ReLU}\n")
    out = tmp_path / "out"
    args = [*TINY, "--designer", "offline", "--iterations", "1", "--samples", "1", "--out", str(out)]
    proc = rewardsmith([*args, "--hyperparams", "ppo.yml"], tmp_path, None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((out / "run.json").read_text())
    assert doc["task"]["options"]["train"]["ppo"]["learning_rate"] == "lin_3e-4"
    best = doc["best_candidate"]
    [training] = best["trainings"]
    stored = tmp_path / "data" / "artifacts" / training["artifacts_key"]  # the directory store, under the data dir
    on_disk = json.loads((stored / "result.json").read_text())
    ppo = on_disk["ppo"]  # the settings the worker trained with
    assert ppo["learning_rate"] == "lin_3e-4" and ppo["activation_fn"] == "relu"
    assert (ppo["n_envs"], ppo["n_steps"], ppo["batch_size"], ppo["net_arch"]) == (2, 256, 128, [32, 32])
    # SB3 applied the schedule: 4 updates of 512 steps at 3e-4 x (3/4, 2/4, 1/4, 0)
    rates = [cp["learner"]["learning_rate"] for cp in on_disk["checkpoints"] if "learner" in cp]
    assert rates == pytest.approx([2.25e-4, 1.5e-4, 7.5e-5, 0.0]), rates
    # run.json carries the learner's statistics and the verdict
    assert best["learner"]["stats"]["learning_rate"][-1] == 0.0
    assert best["learner"]["verdict"] == verdict(best["diagnostics"])
    assert training["learner"]["learning_rate"] == 0.0
