"""The export bundle runs where rewardsmith is not installed: Gymnasium's checker passes on its wrapper, enjoy.py
replays the training's evaluation with plain Gymnasium + SB3, and a program that breaks the reward contract's
rules is refused by the bundle's own copy of the static check."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import envs
from app.copysource import CannotCopy, copy_modules
from app.export import TrainedPolicy, bundle_files, bundle_zip, wrapper_module
from envs.fitness import get_metric
from workers.engine.evaluate import evaluate_reward
from workers.program.policy import ProgramRejected, check_source
from workers.sandbox.runner import Limits

LAUNCHER = Path(__file__).resolve().parents[1] / "support" / "without_rewardsmith.py"
CHECK = """\
try:
    import envs  # noqa: F401
except ModuleNotFoundError:
    print("rewardsmith: not importable")
else:
    raise SystemExit("rewardsmith is importable here")
from gymnasium.utils.env_checker import check_env
from reward_wrapper import make_env

env = make_env()
check_env(env, skip_render_check=True)
obs, _ = env.reset(seed=3)
obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
print("check_env: passed", sorted(info["reward_components"]), type(env).__mro__[1].__name__)
"""


def unpack(files: dict[str, bytes | str], into: Path) -> Path:
    zipfile.ZipFile(io.BytesIO(bundle_zip(files, folder="bundle"))).extractall(into)
    return into / "bundle"


def run_without_rewardsmith(bundle: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-E", "-s", str(LAUNCHER), str(bundle / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "MUJOCO_GL": "egl", "HOME": str(bundle)},
        check=False,
    )


@pytest.mark.slow
def test_the_bundle_runs_without_rewardsmith_and_replays_the_trainings_evaluation(tmp_path: Path) -> None:
    spec = envs.get_spec("Hopper-v5")
    out = tmp_path / "training"
    options = {"episode_steps": 150, "eval_episodes": 2, "checkpoints": 1}
    options["ppo"] = {"n_envs": 2, "n_steps": 256, "batch_size": 64, "n_epochs": 2, "net_arch": [32, 32]}
    result = evaluate_reward(
        env=spec.name,
        reward_source=spec.reference_reward,
        fitness_name="forward_distance",
        fitness_source=None,
        timesteps=2048,
        seed=0,
        out=out,
        limits=Limits(wall_seconds=300, progress_seconds=60),
        options=options,
    )
    assert result["status"] == "ok", result["error"]
    policy = TrainedPolicy(
        files={name: (out / name).read_bytes() for name in ("policy.zip", "vecnormalize.pkl")},
        eval_seeds=result["seeds"]["eval"],
        episode_steps=result["episode_steps"],
        measured=result["fitness"]["per_episode"],
    )
    files = bundle_files(
        spec.reference_reward,
        env=spec.name,
        candidate_id=9,
        fitness_name="forward_distance",
        fitness_source=get_metric("forward_distance").source,
        policy=policy,
    )
    bundle = unpack(files, tmp_path)
    assert not any("from envs" in text or "import envs" in text for text in files.values() if isinstance(text, str))
    (bundle / "check_it.py").write_text(CHECK)
    checked = run_without_rewardsmith(bundle, "check_it.py")
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "rewardsmith: not importable" in checked.stdout
    assert "check_env: passed ['ctrl_cost', 'forward', 'healthy'] Wrapper" in checked.stdout

    enjoyed = run_without_rewardsmith(bundle, "enjoy.py")
    assert enjoyed.returncode == 0, enjoyed.stderr[-3000:]
    lines = enjoyed.stdout.splitlines()
    measured = result["fitness"]["per_episode"]
    for seed, line, value in zip(result["seeds"]["eval"], lines[:-1], measured, strict=True):
        assert line.startswith(f"seed {seed}: fitness ") and f"(rewardsmith measured {value:.4g})" in line
        shown = float(line.split("fitness ")[1].split()[0])
        assert shown == pytest.approx(value, rel=1e-3, abs=1e-3), "the same episodes as rewardsmith's evaluation"
    assert lines[-1].startswith("fitness (forward_distance): ") and "over 2 episodes" in lines[-1]


def test_a_program_that_breaks_the_rules_is_refused_by_the_bundles_own_check(tmp_path: Path) -> None:
    hostile = "import os\n\n\ndef compute_reward(state, action):\n    return state.x_velocity, {}\n"
    with pytest.raises(ProgramRejected) as here:
        check_source(hostile, "reward")
    files = bundle_files(
        hostile,
        env="HalfCheetah-v5",
        candidate_id=4,
        fitness_name="forward_distance",
        fitness_source=get_metric("forward_distance").source,
        policy=None,
    )
    assert "enjoy.py" not in files and "policy.zip" not in files  # nothing trained: the wrapper alone
    bundle = unpack(files, tmp_path)
    (bundle / "load_it.py").write_text("import reward_wrapper\n")
    loaded = run_without_rewardsmith(bundle, "load_it.py")
    assert loaded.returncode != 0
    refusal = loaded.stderr.strip().splitlines()[-1]
    assert refusal.startswith("rewardsmith_check.policy.ProgramRejected: ")
    assert str(here.value).splitlines()[0] in refusal, "the same words as rewardsmith's own check"
    assert "importing `os` is not allowed" in loaded.stderr


def test_copied_modules_import_each_other_relatively_and_refuse_what_they_cannot_rewrite(tmp_path: Path) -> None:
    files = copy_modules(["envs.state"], "envs", "view")
    assert sorted(files) == [  # envs.state and what it imports from envs, transitively
        "view/__init__.py",
        "view/capture.py",
        "view/dynamics.py",
        "view/geometry.py",
        "view/robot_data.py",
        "view/spec.py",
        "view/state.py",
        "view/upload.py",
    ]
    assert "from .capture import Layout" in files["view/state.py"] and "from envs" not in files["view/state.py"]
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "m.py").write_text("import pkg.other\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(CannotCopy, match=r"pkg.m line 1: 'import pkg...' cannot be copied"):
            copy_modules(["pkg.m"], "pkg", "copy")
    finally:
        sys.path.remove(str(tmp_path))


def test_the_wrapper_downloaded_alone_says_it_needs_its_bundle(tmp_path: Path) -> None:
    spec = envs.get_spec("Walker2d-v5")
    (tmp_path / "reward_wrapper.py").write_text(wrapper_module(spec.reference_reward, env=spec.name, candidate_id=5))
    (tmp_path / "load_it.py").write_text("import reward_wrapper\n")
    loaded = run_without_rewardsmith(tmp_path, "load_it.py")
    assert loaded.returncode != 0
    assert "reward_wrapper.py needs the rest of its export bundle beside it" in loaded.stderr
    assert "download the candidate's bundle.zip" in loaded.stderr
