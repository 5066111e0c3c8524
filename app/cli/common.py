"""Helpers shared by CLI commands: errors for people, reading files."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from app.errors import InvalidInput
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


def hyperparams_option(path: Path | None, env: str) -> dict | None:
    """The PPO hyperparameters in the YAML or JSON file ``path`` (``--hyperparams``), or None without one; a file
    that cannot be read as a mapping of settings is an error naming the file."""
    if path is None:
        return None
    from app.search.rules.hyperparams import HYPERPARAMS_CHARS, read_hyperparams  # the schema imports the envs

    try:
        with path.open(encoding="utf-8") as f:
            text = f.read(HYPERPARAMS_CHARS + 1)
    except FileNotFoundError:
        fail(f"hyperparameter file '{path}' does not exist.")
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        fail(f"cannot read hyperparameter file '{path}': {e}.")
    try:
        return read_hyperparams(text, env=env, source=f"--hyperparams {path}")
    except InvalidInput as e:
        fail(e.message)


def input_error(e: InvalidInput, hyperparams: Path | None) -> str:
    """``e`` for the command line: a PPO setting's error names the file it came from, and the key as the file has
    it (``learning_rate``, not ``options.train.ppo.learning_rate``)."""
    from app.search.rules.hyperparams import PREFIX

    if hyperparams is not None and (e.field or "").startswith(PREFIX):
        return f"--hyperparams {hyperparams}: {e.message.replace(PREFIX + '.', '').removeprefix(PREFIX + ': ')}"
    return f"{e.field}: {e.message}" if e.field and e.field not in e.message else e.message
