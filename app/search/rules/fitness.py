"""What a task's fitness is: a built-in metric, the task's own program, or one to be proposed from its sentence.

A task stores its fitness as two columns: ``fitness_name`` (a metric's name, or one of the
kinds below) and ``fitness_source`` (the program, for the kinds that have one). ``FitnessKind``
names the kinds once, so that no module compares the column with a bare string.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from envs.fitness import METRICS


class FitnessKind(StrEnum):
    """The kinds of fitness a task can have; all but ``METRIC`` are also stored as the task's ``fitness_name``."""

    METRIC = "metric"
    """A built-in metric of ``envs.fitness``, stored under its own name."""
    CUSTOM = "custom"
    """A program the user gave with the task (``fitness_source``)."""
    PROPOSE = "propose"
    """To be proposed from the task's sentence; the search waits until a person approves a program."""
    PROPOSED = "proposed"
    """An approved proposal, or a person's edit of one (``fitness_source``)."""


class HasFitness(Protocol):
    """A task as far as its fitness goes (the ``Task`` row, or anything with its two columns)."""

    @property
    def fitness_name(self) -> str: ...
    @property
    def fitness_source(self) -> str | None: ...


def fitness_kind(task: HasFitness) -> FitnessKind:
    """The kind of ``task``'s fitness."""
    if task.fitness_name in METRICS and not task.fitness_source:
        return FitnessKind.METRIC
    return FitnessKind(task.fitness_name)


def awaits_fitness(task: HasFitness) -> bool:
    """Whether the task's fitness is still to be proposed and approved (the search cannot start before)."""
    return task.fitness_name == FitnessKind.PROPOSE


def fitness_of(task: HasFitness) -> tuple[str, str, str]:
    """(name, meaning, source) of a task's fitness, as the designer and the training see it."""
    if task.fitness_source:
        return task.fitness_name, "a custom fitness program (below)", task.fitness_source
    metric = METRICS[task.fitness_name]
    return metric.name, metric.meaning, metric.source
