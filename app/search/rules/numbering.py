"""How iterations are numbered wherever a person or a program reads them: from 1.

The database keeps each iteration's ``index`` from 0 (its place in the run); the API, run.json,
the pages, the CLI and the prompts all say "iteration 1" for the first, through this one function.
"""

from __future__ import annotations

FIRST = 1
"""The number of a run's first iteration."""


def iteration_number(index: int) -> int:
    """The number people and clients see for the iteration stored at ``index``."""
    return index + FIRST


def maybe_number(index: int | None) -> int | None:
    """``iteration_number``, or None for what belongs to no iteration (a baseline, unused feedback)."""
    return None if index is None else iteration_number(index)
