"""A dispatcher that only writes down what it was asked to schedule (nothing trains)."""

from __future__ import annotations


class RecordingDispatcher:
    """Records the steps scheduled, in order, as (step, id)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def start(self, run_id: int) -> None:
        self.calls.append(("start", run_id))

    def resume(self, run_id: int) -> None:
        self.calls.append(("resume", run_id))

    def design(self, run_id: int) -> None:
        self.calls.append(("design", run_id))

    def propose_fitness(self, run_id: int) -> None:
        self.calls.append(("propose_fitness", run_id))

    def train(self, training_id: int) -> None:
        self.calls.append(("train", training_id))
