"""The untrusted side of the sandbox: runs one job from job.json and writes result.json.

Started by ``workers.sandbox.runner`` only. It reports the isolation in force, prints
progress events as JSON lines on stdout, and turns every way a job can end into an
outcome: ok, rejected (static check, dry run, or a user's robot refused), failed, resource_limit.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_ENVIRONMENT = sorted(os.environ)
"""The variables this process was started with (the imports that follow set a few of their own)."""


def _isolation(job: dict[str, Any]) -> dict[str, Any]:
    try:
        netns = os.stat("/proc/self/ns/net").st_ino
    except OSError:
        netns = None
    parent = job.get("parent_netns")
    if netns is not None and parent is not None and netns != parent:
        network = "isolated (own network namespace)"
    else:
        network = "not isolated (the kernel refused a network namespace)"
    limits = {}
    for name in ("RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_CORE"):
        soft, _ = resource.getrlimit(getattr(resource, name))
        limits[name] = None if soft == resource.RLIM_INFINITY else soft
    return {
        "network": network,
        "rlimits": limits,
        "environment": _ENVIRONMENT,
        "workdir": "private temporary directory",
        "wall_clock": "enforced by the parent (SIGKILL)",
    }


TRACEBACK_CHARS = 8000
"""The end of an engine fault's traceback kept in the result."""


def emit(event: dict) -> None:
    """Send one event to the parent (strict JSON: a NaN in an event is an engine fault, not a value to pass on)."""
    print(json.dumps(event, allow_nan=False), flush=True)


def _run(sent: dict[str, Any]) -> Mapping[str, Any]:
    from workers.sandbox.jobs import as_job

    job = as_job(sent)
    limits = sent.get("limits", {})  # set by the parent from its Limits; they override anything in the job
    if "robot" in job:  # a job on a user robot carries its files: register it here as in the parent
        import envs

        envs.rebuild_user_env(job["robot"])
    if job["type"] == "compile_robot":  # a user's MJCF: checked, compiled from its own files only, measured
        import base64

        from envs.derive import derive
        from envs.robot_data import RobotSettings

        files = {str(k): base64.b64decode(v, validate=True) for k, v in job["files"].items()}
        description, settings = derive(files, RobotSettings.from_dict(job.get("settings")), job.get("root_file"))
        return {"description": description.to_json(), "settings": settings.to_dict()}
    if job["type"] == "render_robot":  # a user robot's initial pose, as a PNG file the parent checks before keeping it
        import envs
        from workers.engine.picture import PICTURE_FILE, draw

        picture = draw(envs.get_spec(str(job["robot"]["name"])), int(job["width"]), int(job["height"]))
        Path(PICTURE_FILE).write_bytes(picture)
        return {"picture": PICTURE_FILE}
    if job["type"] == "dry_run":
        from workers.engine.dryrun import dry_run_fitness, dry_run_reward

        seed, ratio = job.get("seed", 0), limits.get("reward_cost_ratio")
        if job["kind"] == "reward":
            report = dry_run_reward(job["env"], job["source"], seed=seed, cost_ratio=ratio)
        else:
            report = dry_run_fitness(job["env"], job["source"], seed=seed, cost_ratio=ratio)
        if job["kind"] == "reward" and job.get("trajectories"):  # then the screen on the run's recorded episodes
            from workers.engine.screen import screen_reward

            paths = [Path(str(p)) for p in job["trajectories"]]
            screen = screen_reward(job["env"], job["source"], paths, job.get("parent"))
            return {"report": report.to_dict(), "screen": screen.to_dict()}
        return {"report": report.to_dict()}
    if job["type"] == "measure_fitness":  # a proposed fitness: the dry run, then its values on random-policy episodes
        from workers.engine.dryrun import dry_run_fitness
        from workers.engine.measure import measure_fitness

        ratio = limits.get("reward_cost_ratio")
        checked = dry_run_fitness(job["env"], job["source"], seed=job["seed"], cost_ratio=ratio)
        measured = measure_fitness(
            job["env"],
            job["source"],
            episodes=job["episodes"],
            seed=job["seed"],
            max_steps=job["max_steps"],
            cost_ratio=ratio,
        )
        return {"report": checked.to_dict(), "measurement": measured}
    if (
        job["type"] == "screen"
    ):  # a candidate reward's returns on the run's recorded episodes, ranked against their fitness
        from workers.engine.screen import screen_reward

        paths = [Path(str(p)) for p in job["trajectories"]]
        return {"screen": screen_reward(job["env"], job["source"], paths, job.get("parent")).to_dict()}
    from workers.engine.train import TrainConfig, train

    return train(TrainConfig(**{**job["config"], **limits}), Path.cwd(), emit)


def warm(group: str) -> None:
    """Import what a job of ``group`` needs (``workers.sandbox.forkserver``), before any job is read.

    Trusted code only: a fork server runs this once, then forks one process per job."""
    import workers.engine.dryrun
    import workers.engine.measure
    import workers.engine.screen

    if group == "train":
        import torch

        import workers.engine.train  # noqa: F401

        # The first optimizer imports torch._dynamo (about 1 s); made here on a throwaway parameter, no math done.
        torch.optim.Adam([torch.nn.Parameter(torch.empty(1))])


def main() -> None:
    if sys.argv[1] == "--serve":  # a fork server (workers.sandbox.zygote): ``--serve GROUP FD``
        from workers.sandbox.zygote import serve

        serve(sys.argv[2], int(sys.argv[3]), warm, run)
        return
    run(Path(sys.argv[-1]))


def run(path: Path) -> None:
    """Run the job in ``path`` (job.json) and write result.json beside it, in the working directory."""
    job = json.loads(path.read_text())
    result: dict = {"isolation": _isolation(job)}
    from envs.upload import RobotRefused
    from workers.engine.result import SavedFileError, TrainingFailed
    from workers.program.policy import ProgramRejected
    from workers.program.program import ProgramError
    from workers.program.text import cap_lines, exception_text

    try:
        result.update(_run(job))
        result.setdefault("outcome", "ok")
        result.setdefault("error", None)
    except TrainingFailed as e:  # what was recorded before the program failed is worth keeping
        result.update(e.partial)
        result.update(outcome="failed", error=str(e))
    except (ProgramRejected, RobotRefused) as e:
        result.update(outcome="rejected", error=str(e))
    except SavedFileError as e:  # a continued training's files that were refused unread
        result.update(outcome="failed", error=str(e))
    except ProgramError as e:
        result.update(outcome="failed", error=str(e))
    except MemoryError:
        result.update(
            outcome="resource_limit",
            error="the job ran out of memory inside the sandbox (a program allocating huge arrays ends here); "
            "reduce array sizes or the number of parallel envs",
        )
    except Exception as e:  # an engine fault, not the program's: keep the traceback for the operator
        # The frames are the engine's own lines; the message may carry program text, so it goes on one line.
        frames = "".join(traceback.format_tb(e.__traceback__))
        shown = f"Traceback (most recent call last):\n{frames}{exception_text(e)}"
        result.update(
            outcome="failed",
            error=f"internal error: {exception_text(e)}",
            traceback=cap_lines(shown[-TRACEBACK_CHARS:], TRACEBACK_CHARS),
        )
    tmp = Path("result.json.tmp")
    tmp.write_text(_strict_json(result))
    tmp.replace("result.json")


def _strict_json(result: dict) -> str:
    """``result`` as strict JSON (no NaN or Infinity, which other parsers refuse); a result that holds a
    non-finite number becomes a failure that says so."""
    try:
        return json.dumps(result, default=float, allow_nan=False)
    except ValueError:
        failed = {
            "isolation": result.get("isolation", {}),
            "outcome": "failed",
            "error": "internal error: the result held a non-finite number (NaN or infinity), which the engine "
            "should have refused where it was computed; nothing of it was kept",
        }
        return json.dumps(failed, default=float, allow_nan=False)


if __name__ == "__main__":
    main()
