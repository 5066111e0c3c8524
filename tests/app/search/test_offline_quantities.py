"""The offline proposer writes a program for the quantity a sentence names, or says that it cannot.

Asked for "the average height of the peaks of its hops" after max height was set aside, it chose
forward distance for the word "hops"; the quantity is height, summed up as an average, at the peaks.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.search.design.proposers import Earlier, FitnessAsk, OfflineFitnessProposer
from app.search.rules.states import Origin
from workers.engine.measure import measure_fitness
from workers.program.policy import check_source
from workers.program.program import call_fitness, load_program

PEAKS = "the average height of the peaks of its hops"


def _ask(task: str, *rejected: tuple[str, str]) -> FitnessAsk:
    earlier = [Earlier(Origin.OFFLINE, name, None, why, by_person=True) for name, why in rejected]
    return FitnessAsk(None, "Hopper-v5", "", task, earlier)


@pytest.mark.parametrize("ask", [_ask(PEAKS), _ask("make the hopper hop", ("max_height", PEAKS))], ids=["task", "note"])
def test_the_average_height_of_the_peaks_of_its_hops_is_measured_not_forward_distance(ask: FitnessAsk) -> None:
    draft = OfflineFitnessProposer().propose(ask)
    assert draft.name == "average_height_at_peaks" and draft.source is not None and draft.error is None
    assert "forward" not in draft.meaning and "average height at the peaks" in draft.meaning
    check_source(draft.source, "fitness")
    program = load_program(draft.source, "fitness")

    class Traj:  # two hops, 0.6 and 0.8 m high, from a standing height of 0.2 m, with a tremor between
        z_position = np.array([0.2, 0.4, 0.6, 0.4, 0.2, 0.21, 0.2, 0.5, 0.8, 0.5, 0.2])

    assert call_fitness(program, Traj()) == pytest.approx(0.7)
    measured = measure_fitness("Hopper-v5", draft.source, episodes=2, max_steps=50)
    assert all(0.5 < v < 2.0 for v in measured["values"])


def test_a_sentence_that_names_nothing_it_can_measure_gets_an_honest_no() -> None:
    draft = OfflineFitnessProposer().propose(_ask("make the hopper hop", ("forward_distance", "more graceful please")))
    assert draft.source is None and "cannot write a program for 'more graceful please'" in (draft.error or "")


def test_a_quantity_a_built_in_metric_measures_takes_the_built_in() -> None:
    draft = OfflineFitnessProposer().propose(_ask("hop; fitness: the average speed"))
    assert draft.name == "mean_x_velocity" and "the built-in metric 'mean_x_velocity'" in draft.meaning
