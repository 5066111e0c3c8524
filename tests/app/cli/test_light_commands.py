"""The service's commands (`users`, `serve`, `worker`) start without importing the engine, the search or MuJoCo:
`rewardsmith users create` is a second faster, and the service's processes start sooner. The other commands
still find theirs."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

PROBE = """
import sys
sys.argv = ["rewardsmith", *{args!r}]
from app.cli import main
try:
    main()
except SystemExit:
    pass
print("HEAVY", sorted(m for m in ("mujoco", "torch", "envs", "app.search.service") if m in sys.modules))
"""


def imported(*args: str) -> tuple[list[str], str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=list(args))], capture_output=True, text=True, timeout=120
    )
    heavy = next(line for line in out.stdout.splitlines() if line.startswith("HEAVY"))
    return ast.literal_eval(heavy.removeprefix("HEAVY ")), out.stdout


@pytest.mark.parametrize("args", [("users", "--help"), ("serve", "--help"), ("worker", "--help"), ("users", "list")])
def test_service_commands_import_no_engine(args: tuple[str, ...], tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REWARDSMITH_DATA_DIR", str(tmp_path))
    heavy, shown = imported(*args)
    assert heavy == [], heavy
    assert ("Usage" in shown) == (args[-1] == "--help"), shown  # `users list` ran: a table header, no usage


def test_the_other_commands_still_build_the_whole_command_line() -> None:
    heavy, shown = imported("evaluate", "--help")
    assert "envs" in heavy and "--reward" in shown
    heavy, shown = imported("--help")
    for command in ("check", "evaluate", "run", "serve", "users", "envs", "artifacts"):
        assert f" {command} " in shown, command
