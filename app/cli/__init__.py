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

SERVICE_COMMANDS = frozenset({"serve", "worker", "users"})
"""The commands ``app.cli.service`` registers: the first argument naming one builds that group alone."""


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


def main() -> None:
    first = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    build(service_only=first in SERVICE_COMMANDS)()
