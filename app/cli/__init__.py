"""The `rewardsmith` command line."""

from __future__ import annotations

import typer

from app.cli import artifacts, engine, search, service

cli = typer.Typer(
    name="rewardsmith",
    help="Design reward functions for MuJoCo robots with an LLM (or offline), train PPO with them, keep the best.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
engine.register(cli)
search.register(cli)
service.register(cli)
artifacts.register(cli)


def main() -> None:
    cli()
