"""The `rewardsmith` command line.

``cli`` is the whole command line. ``main`` builds only the commands of the group the first argument names when that
group is the service's (``serve``, ``worker``, ``users``): they do not import the engine, the search or the env
registry's robots, so a `rewardsmith users create` takes about a third of the second the whole command line does to
import, and the service starts its processes sooner.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    cli: typer.Typer


def build(*, service_only: bool = False) -> typer.Typer:
    """The command line, every group in the order ``--help`` lists them; with ``service_only`` only the service's."""
    import typer

    from app.cli import service

    cli = typer.Typer(
        name="rewardsmith",
        help="Design reward functions for MuJoCo robots with an LLM (or offline), train PPO with them, keep the best.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    if service_only:
        service.register(cli)
        return cli
    from app.cli import artifacts, engine, search

    engine.register(cli)
    search.register(cli)
    service.register(cli)
    artifacts.register(cli)
    return cli


def __getattr__(name: str) -> typer.Typer:
    if name == "cli":  # built on first use: importing a submodule of app.cli must not import every command
        global cli
        cli = build()
        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def command_names(app: typer.Typer) -> set[str]:
    """The names the first argument may give to reach one of ``app``'s commands or groups."""
    from typer.main import get_command_name

    commands = {c.name or get_command_name(c.callback.__name__) for c in app.registered_commands if c.callback}
    return commands | {g.name for g in app.registered_groups if g.name}


def main() -> None:
    first = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    service = build(service_only=True)
    (service if first in command_names(service) else build())()
