"""A user's robot through the sandbox: compiled by a sandboxed child, stored, rebuilt by every job that names it.

The trusted side learns what an upload holds only from the JSON the child wrote; a hostile model is
refused there with a reason that leaks nothing (tests/envs/test_mjcf.py has every attack in-process).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import envs
from envs.upload import RobotRefused
from tests.envs.test_mjcf import SECRET, robot
from workers.engine.evaluate import sandbox_check, sandbox_measure
from workers.engine.robot import ROBOT_LIMITS, CompiledRobot, compile_robot
from workers.sandbox.runner import Limits, Outcome

ROBOTS = Path(__file__).resolve().parents[2] / "fixtures" / "robots"
QUADRUPED = {"quadruped.xml": (ROBOTS / "quadruped.xml").read_bytes()}
LIMITS = Limits(wall_seconds=120, progress_seconds=None)


@pytest.fixture(scope="module")
def compiled() -> Iterator[CompiledRobot]:
    yield compile_robot("sandboxed_quadruped", QUADRUPED, {"episode_steps": 100})
    envs.unregister_user_env("sandboxed_quadruped")


def test_the_sandbox_compiles_a_robot_into_what_a_service_stores(compiled: CompiledRobot) -> None:
    assert compiled.root_file == "quadruped.xml" and dict(compiled.files) == QUADRUPED
    assert compiled.settings["frame_skip"] == 10 and compiled.settings["episode_steps"] == 100
    d = compiled.description
    assert d["root_body"] == "torso" and len(d["actuators"]) == 8 and len(d["feet"]) == 4
    assert d["checks"]["stability_steps"] == 1000 and d["checks"]["realtime_factor"] >= 1.0
    spec = compiled.register()
    assert envs.get_spec("sandboxed_quadruped") is spec and "sandboxed_quadruped" in envs.user_names()
    # what the child found is what compiling here finds
    local = envs.register_user_env("local_quadruped", QUADRUPED, {"episode_steps": 100})
    try:
        assert replace(local.robot.description, checks={}) == replace(spec.robot.description, checks={})
    finally:
        envs.unregister_user_env("local_quadruped")


@pytest.mark.slow
def test_a_job_on_a_user_robot_carries_its_files_to_the_child(compiled: CompiledRobot) -> None:
    spec = compiled.register()
    checked = sandbox_check("sandboxed_quadruped", envs.get_spec("Ant-v5").reference_reward, "reward", LIMITS)
    assert checked.outcome == Outcome.OK, checked.error
    assert checked.payload["report"]["env"] == "sandboxed_quadruped"
    measured = sandbox_measure(
        "sandboxed_quadruped", "def compute_fitness(traj):\n    return float(traj.step[-1])\n", LIMITS
    )
    assert measured.outcome == Outcome.OK, measured.error
    assert measured.payload["measurement"]["steps"] == [100] * 5  # the robot's own episode length
    assert spec.robot is not None


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ({"robot.xml": robot(head='<include file="/etc/passwd"/>')}, "refers to the file '/etc/passwd'"),
        (
            {
                "robot.xml": robot(
                    world='<replicate count="100"><replicate count="100"><body><geom size="0.01"/></body></replicate></replicate>'
                )
            },
            "the model has more than 200 bodies",
        ),
        (
            {
                "robot.xml": robot(
                    head='<option timestep="0.05"/>', geom='type="sphere" size="0.1" mass="0.001"'
                ).replace(b'gear="5"', b'gear="1e7"')
            },
            "the model is not stable",
        ),
    ],
)
def test_the_sandboxed_compile_refuses_a_hostile_model_and_leaks_nothing(files: dict, reason: str) -> None:
    with pytest.raises(RobotRefused) as info:
        compile_robot("hostile", files)
    assert reason in str(info.value) and SECRET not in str(info.value)
    assert "hostile" not in envs.user_names()


def test_a_mesh_too_large_is_refused_before_any_process_reads_it() -> None:
    files = {"robot.xml": robot(head='<asset><mesh name="m" file="big.stl"/></asset>'), "big.stl": b"\0" * (50 * 2**20)}
    with pytest.raises(RobotRefused, match=re.escape("'big.stl' is 50.0 MiB, over the limit of 16 MiB")):
        compile_robot("hostile", files, limits=replace(ROBOT_LIMITS, wall_seconds=0.001))  # no sandbox would finish


def test_a_compile_that_runs_past_its_time_is_stopped_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0.05 s is less than a cold sandboxed child needs to import MuJoCo, so the check cannot finish on any machine (a
    # fork of a warm fork server may: this one starts cold)
    monkeypatch.setenv("REWARDSMITH_SANDBOX_FORKSERVER", "0")
    with pytest.raises(RobotRefused, match=r"checking the model took longer than 0.05 s and was stopped"):
        compile_robot("slow", QUADRUPED, limits=replace(ROBOT_LIMITS, wall_seconds=0.05))
