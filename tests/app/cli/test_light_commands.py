"""The service's commands (`users`, `serve`, `worker`) start without importing the engine, the search or MuJoCo:
`rewardsmith users create` is a second faster, and the service's processes start sooner. The other commands
still find theirs."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from app.cli import main
for args in {commands!r}:
    sys.argv = ["rewardsmith", *args]
    try:
        main()
    except SystemExit:
        pass
    print("HEAVY", sorted(m for m in ("mujoco", "torch", "envs", "app.search.service") if m in sys.modules))
"""


def run(*commands: tuple[str, ...], data_dir: Path) -> tuple[list[list[str]], str]:
    """Each command run in turn in one process; after each, the heavy modules imported so far, and the output."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(commands=list(commands))],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "REWARDSMITH_DATA_DIR": str(data_dir)},
    )
    heavy = [
        ast.literal_eval(line.removeprefix("HEAVY ")) for line in out.stdout.splitlines() if line.startswith("HEAVY")
    ]
    assert len(heavy) == len(commands), out.stdout + out.stderr
    return heavy, out.stdout


def test_service_commands_import_no_engine(tmp_path: Path) -> None:
    commands = (("users", "--help"), ("serve", "--help"), ("worker", "--help"), ("users", "list"))
    heavy, shown = run(*commands, data_dir=tmp_path)
    assert heavy == [[]] * len(commands), heavy
    assert shown.count("Usage: rewardsmith") == 3 and "rewardsmith users" in shown and "rewardsmith worker" in shown


def test_the_other_commands_still_build_the_whole_command_line(tmp_path: Path) -> None:
    heavy, shown = run(("evaluate", "--help"), ("--help",), data_dir=tmp_path)
    assert "envs" in heavy[0] and "--reward" in shown
    for command in ("check", "evaluate", "run", "serve", "users", "envs", "artifacts"):
        assert f" {command} " in shown, command
