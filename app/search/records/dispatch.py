"""How search steps get executed: the Celery dispatcher for the service, a local one for `rewardsmith run`."""

from __future__ import annotations

from typing import Protocol


class Dispatcher(Protocol):
    """Schedules the steps of a run; each step is an idempotent service function keyed by an id."""

    def start(self, run_id: int) -> None:
        """Begin a queued run."""

    def resume(self, run_id: int) -> None:
        """Continue a run that was set running again: schedule whatever it is waiting for."""

    def design(self, run_id: int) -> None:
        """Design the run's next iteration (LLM queue)."""

    def propose_fitness(self, run_id: int) -> None:
        """Propose a fitness program from the run's task description (LLM queue)."""

    def train(self, training_id: int) -> None:
        """Run one training (train queue)."""
