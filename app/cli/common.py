"""Helpers shared by CLI commands: errors for people, reading files."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from workers.program.text import printable

console = Console()
err = Console(stderr=True)


def plain(text: object) -> str:
    """``text`` with terminal control characters escaped: program text and errors never drive the terminal."""
    return printable(str(text))


def shown(text: object) -> str:
    """``plain(text)`` for a string printed with rich markup: its brackets are text, not markup."""
    return escape(plain(text))


def fail(message: str, code: int = 2) -> NoReturn:
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
