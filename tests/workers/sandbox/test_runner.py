"""The sandboxed process: limits that hold, isolation that is in force, and a classification a person can read.

Every job here is a cheap reward dry run in a real child process.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from workers.sandbox.runner import Limits, run_job

pytestmark = pytest.mark.slow

SOUND = "import numpy as np\n\n\ndef compute_reward(state, action):\n    return state.x_velocity, {'forward': state.x_velocity}\n"


def dry_run(source: str, limits: Limits | None = None, env: str = "HalfCheetah-v5"):
    return run_job(
        {"type": "dry_run", "env": env, "kind": "reward", "source": source}, limits or Limits(wall_seconds=60)
    )


def reward_program(body: str) -> str:
    return f"import numpy as np\n\n\ndef compute_reward(state, action):\n{body}    return state.x_velocity, {{}}\n"


def test_a_sound_program_comes_back_ok_with_its_report() -> None:
    result = dry_run(SOUND)
    assert result.outcome == "ok" and result.error is None
    assert result.payload["report"]["components"] == ["forward"]
    assert result.isolation["workdir"] == "private temporary directory"


def test_an_endless_loop_ends_as_a_timeout_within_the_wall_limit() -> None:
    result = dry_run(reward_program("    while True:\n        pass\n"), Limits(wall_seconds=5))
    assert result.outcome == "timeout"
    assert 5.0 <= result.seconds < 15.0
    assert "wall-clock limit of 5 s" in result.error and "endless loop" in result.error


@pytest.mark.parametrize(
    "body",
    # sizes computed at run time: constant ones this big are refused by the static check before anything runs
    ["    x = [0] * int(1e10)\n", "    x = np.ones((10**6, 10**6))\n", "    x = 'a' * int(1e11)\n"],
    ids=["list", "numpy", "str"],
)
def test_a_memory_bomb_ends_as_a_resource_limit(body: str) -> None:
    result = dry_run(reward_program(body), Limits(wall_seconds=60, memory_mb=4096))
    assert result.outcome == "resource_limit"
    assert "out of memory" in result.error


@pytest.mark.parametrize(
    "write",
    [
        "    np.save({path!r}, state.x_velocity)\n",
        "    f = open({path!r}, 'w')\n",
        "    action.tofile({path!r})\n",
        "    np.savetxt({path!r}, action)\n",
    ],
    ids=["np.save", "open", "tofile", "savetxt"],
)
def test_a_write_attempt_is_rejected_and_creates_no_file(write: str, tmp_path: Path) -> None:
    target = tmp_path / "pwned.npy"
    result = dry_run(reward_program(write.format(path=str(target))))
    assert result.outcome == "rejected"
    assert "[rule:" in result.error
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_child_has_no_network() -> None:
    result = dry_run(SOUND)
    assert result.isolation["network"] == "isolated (own network namespace)"


def test_the_child_environment_is_scrubbed_of_secrets(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "aws-secret-that-must-stay-out-0c3f"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("REWARDSMITH_DATABASE_URL", "postgresql://user:secret@db/rewardsmith")
    monkeypatch.setenv("REWARDSMITH_ARTIFACTS_URL", "s3://rewardsmith/artifacts")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_SESSION_TOKEN": secret,
        "AWS_ENDPOINT_URL": "http://minio:9000",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_PROFILE": "rewardsmith",
    }.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    result = dry_run(SOUND)
    seen = result.isolation["environment"]
    assert "PATH" in seen  # the list is real
    for name in ("OPENAI_API_KEY", "REWARDSMITH_DATABASE_URL", "REWARDSMITH_ARTIFACTS_URL"):
        assert name not in seen
    assert [name for name in seen if name.startswith("AWS_")] == []  # no storage setting of any kind
    assert secret not in caplog.text and secret not in result.stderr_tail and secret not in json.dumps(result.payload)


def test_the_child_runs_under_rlimits() -> None:
    result = dry_run(SOUND, Limits(wall_seconds=60, memory_mb=6000, max_file_mb=64, max_processes=300))
    rlimits = result.isolation["rlimits"]
    assert rlimits["RLIMIT_AS"] == 6000 * 1024 * 1024
    assert rlimits["RLIMIT_FSIZE"] == 64 * 1024 * 1024
    assert rlimits["RLIMIT_NPROC"] == 300
    assert rlimits["RLIMIT_CORE"] == 0


def test_a_program_rejected_in_the_child_says_why() -> None:
    result = dry_run("import numpy as np\n\n\ndef compute_reward(state, action):\n    return state.speed, {}\n")
    assert result.outcome == "rejected"
    assert "the state has no field 'speed'" in result.error and "line 5" in result.error


def test_an_engine_fault_is_failed_with_the_traceback_kept_for_the_operator() -> None:
    result = run_job({"type": "no-such-job"}, Limits(wall_seconds=60))
    assert result.outcome == "failed"
    assert result.error.startswith("internal error: ValueError: unknown job type")
    assert "Traceback" in result.payload["traceback"]


def test_a_sandboxed_job_dies_with_the_process_that_started_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker killed with SIGKILL leaves no training running unattended, and its work dir goes at the next start."""
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    from workers.sandbox.workdir import clean_stale_workdirs

    script = tmp_path / "parent.py"
    script.write_text(
        "from workers.sandbox.runner import Limits, run_job\n"
        "src = 'import numpy as np\\n\\n\\ndef compute_reward(state, action):\\n    while True:\\n        pass\\n'\n"
        "run_job({'type': 'dry_run', 'env': 'HalfCheetah-v5', 'kind': 'reward', 'source': src}, Limits(wall_seconds=120))\n"
    )
    temp = tmp_path / "tmp"
    temp.mkdir()
    parent = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env={**os.environ, "TMPDIR": str(temp)})

    from tests.workers.sandbox.test_lifecycle import sandbox_children, sandbox_processes

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not sandbox_children(parent.pid):
        time.sleep(0.5)
    mine = set(sandbox_processes(parent.pid))  # the job's process, and the fork server it was forked from
    assert mine, "the sandbox child started"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in mine):
        time.sleep(0.2)
    assert not any(
        os.path.exists(f"/proc/{p}") and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2] for p in mine
    )
    left = sorted(temp.iterdir())  # the job's work dir, and its fork server's
    assert left and all(d.name.startswith(f"rewardsmith-sandbox-{parent.pid}-") for d in left)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert sorted(clean_stale_workdirs()) == left and list(temp.iterdir()) == []


def _children_of(pid: int) -> list[int]:
    from tests.workers.sandbox.test_lifecycle import sandbox_children

    return sandbox_children(pid)


def test_a_crash_of_the_sandboxed_process_says_the_program_crashed_it() -> None:
    import os
    import signal
    import threading
    import time

    results = []
    job = threading.Thread(
        target=lambda: results.append(
            dry_run(reward_program("    while True:\n        pass\n"), Limits(wall_seconds=60))
        )
    )
    job.start()
    deadline = time.monotonic() + 30
    while not (children := _children_of(os.getpid())) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert children, "the sandbox child started"
    time.sleep(1.0)  # let it reach the program
    os.kill(children[0], signal.SIGSEGV)
    job.join(timeout=30)
    result = results[0]
    assert result.outcome == "failed", result.error
    assert result.error.startswith("the program crashed the sandboxed process (SIGSEGV: a segmentation fault")
    assert "most likely on reaching a resource limit" not in result.error
    assert result.seconds < 30


def test_stale_work_dirs_of_killed_processes_are_removed_and_only_those(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import subprocess
    import tempfile
    import time

    from workers.sandbox.workdir import WORKDIR_PREFIX, _pid_namespace, _start_time

    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.setenv("REWARDSMITH_SANDBOX_FORKSERVER", "0")  # a live fork server's work dir would be left, rightly
    ns = _pid_namespace()
    gone = subprocess.Popen(["sleep", "30"])
    gone_started = _start_time(gone.pid)
    gone.kill()
    gone.wait()
    alive = subprocess.Popen(["sleep", "60"])
    try:
        names = {
            "killed owner": f"{WORKDIR_PREFIX}{gone.pid}-{gone_started}-{ns}-abc",
            "pid reused": f"{WORKDIR_PREFIX}{alive.pid}-{_start_time(alive.pid) - 1}-{ns}-abd",
            "live owner": f"{WORKDIR_PREFIX}{alive.pid}-{_start_time(alive.pid)}-{ns}-abe",
            "this process": f"{WORKDIR_PREFIX}{os.getpid()}-{_start_time(os.getpid())}-{ns}-abf",
            "other pid namespace": f"{WORKDIR_PREFIX}{gone.pid}-{gone_started}-{ns + 1}-abg",
            "old naming, old": f"{WORKDIR_PREFIX}oldold",
            "old naming, recent": f"{WORKDIR_PREFIX}newnew",
            "not ours": "someone-else-1-2-3-x",
        }
        for name in names.values():
            (root / name).mkdir()
            (root / name / "result.json").write_text("{}")
        two_days_ago = time.time() - 2 * 86400
        os.utime(root / names["old naming, old"], (two_days_ago, two_days_ago))
        outside = tmp_path / "outside"
        outside.mkdir()
        (root / f"{WORKDIR_PREFIX}{gone.pid}-{gone_started}-{ns}-link").symlink_to(outside)

        result = dry_run(SOUND)  # the first job of this process (for this temp dir) sweeps it
        assert result.outcome == "ok"
        left = {p.name for p in root.iterdir()}
        removed = {what for what, name in names.items() if name not in left}
        assert removed == {"killed owner", "pid reused", "old naming, old"}
        assert outside.exists() and f"{WORKDIR_PREFIX}{gone.pid}-{gone_started}-{ns}-link" in left
        assert not any(n.startswith(f"{WORKDIR_PREFIX}{os.getpid()}-") and n != names["this process"] for n in left)
    finally:
        alive.kill()
        alive.wait()


def test_the_parent_reads_no_result_file_it_cannot_trust(tmp_path: Path) -> None:
    import os

    from workers.sandbox.runner import _classify

    big = tmp_path / "big"
    big.mkdir()
    (big / "result.json").write_text('{"outcome": "ok", "padding": "' + "x" * (17 * 2**20) + '"}')
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "result.json").write_text("[" * 200_000 + "]" * 200_000)
    fifo = tmp_path / "fifo"  # opening a FIFO for reading would wait for a writer forever
    fifo.mkdir()
    os.mkfifo(fifo / "result.json")
    link = tmp_path / "link"
    link.mkdir()
    (tmp_path / "elsewhere.json").write_text('{"outcome": "ok"}')
    (link / "result.json").symlink_to(tmp_path / "elsewhere.json")
    for workdir, reason in [
        (big, "its result file is 17 MiB, over the 16 MiB limit"),
        (deep, "its result file is not valid JSON"),
        (fifo, "its result file is not a regular file"),
        (link, "its result file cannot be opened"),
    ]:
        result = _classify(0, None, workdir, Limits(), "")
        assert result.outcome == "failed" and reason in result.error, result.error
        assert result.payload == {}


def test_a_stopped_job_keeps_its_checkpoint_directory_only_when_it_holds_plain_files(tmp_path: Path) -> None:
    from workers.sandbox.runner import RESUME_DIR, _keep_resume

    work, out = tmp_path / "work", tmp_path / "out"
    (work / RESUME_DIR).mkdir(parents=True)
    (work / RESUME_DIR / "policy.zip").write_bytes(b"zip")
    _keep_resume(work, out)
    assert (out / RESUME_DIR / "policy.zip").read_bytes() == b"zip"

    (work / RESUME_DIR).mkdir()
    (work / RESUME_DIR / "policy.zip").symlink_to("/etc/hostname")  # a sandbox pointing the worker elsewhere
    _keep_resume(work, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()
