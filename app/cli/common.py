"""Helpers shared by CLI commands: errors for people, reading files, sandbox limits."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from app.config import get_settings
from workers.sandbox.runner import Limits
from workers.sandbox.text import printable

console = Console()
err = Console(stderr=True)


def plain(text: object) -> str:
    """``text`` with terminal control characters escaped: program text and errors never drive the terminal."""
    return printable(str(text))


def shown(text: object) -> str:
    """``plain(text)`` for a string printed with rich markup: its brackets are text, not markup."""
    return escape(plain(text))


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` (text, not markup) as an error and exit with ``code``."""
    err.print(f"[bold red]error:[/] {shown(message)}", highlight=False)
    raise typer.Exit(code)


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        fail(f"{what} file '{path}' does not exist.")
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        fail(f"cannot read {what} file '{path}': {e}.")
    raise AssertionError


def sandbox_limits(wall_seconds: float | None = None) -> Limits:
    s = get_settings()
    return Limits(
        wall_seconds=wall_seconds or s.sandbox_wall_seconds,
        memory_mb=s.sandbox_memory_mb,
        max_file_mb=s.sandbox_max_file_mb,
        progress_seconds=s.sandbox_progress_seconds,
        reward_cost_ratio=s.sandbox_reward_cost_ratio,
    )
