"""Numbers that hold up: comparisons of fitness are judged against the seeds' noise, not by a raw >=."""

from __future__ import annotations

import pytest

import app.search.design.noise as noise
import app.search.machine.finish as finish
from app.db.models import Candidate, Training
from app.search.rules.states import Purpose, TrainingStatus


def _candidate(per_seed: dict[int, float], *, first: Purpose = Purpose.FULL) -> Candidate:
    """A candidate trained on seed 0 (``first``) and re-trained on the other seeds (final)."""
    return Candidate(
        trainings=[
            Training(
                purpose=first if seed == 0 else Purpose.FINAL,
                status=TrainingStatus.OK,
                seed=seed,
                result={"fitness": {"mean": value, "std": 0.0, "per_episode": [value]}},
            )
            for seed, value in per_seed.items()
        ]
    )


def test_a_difference_of_4e5_between_the_best_and_the_reference_is_not_called_better() -> None:
    best = _candidate({0: 1.2500, 1000: 1.25008, 1001: 1.2490})
    reference = _candidate({0: 1.2510, 1000: 1.25000, 1001: 1.2490}, first=Purpose.BASELINE)
    yard = finish.yardstick(best, reference)
    assert yard["difference"] == pytest.approx(4e-5)
    assert yard["best_at_least_reference"] is None and yard["verdict"] == "within noise"
    assert yard["noise_band"] >= 0.01 * 1.25 and "within the seeds' noise" in yard["verdict_note"]


def test_a_difference_far_beyond_the_seeds_spread_is_a_finding_either_way() -> None:
    best = _candidate({0: 3000.0, 1000: 3100.0, 1001: 2950.0})
    reference = _candidate({0: 1000.0, 1000: 1100.0, 1001: 950.0}, first=Purpose.BASELINE)
    assert finish.yardstick(best, reference)["best_at_least_reference"] is True
    assert finish.yardstick(reference, best)["best_at_least_reference"] is False


def test_one_seed_each_gives_no_spread_so_the_comparison_says_it_cannot_tell() -> None:
    best, reference = _candidate({1000: 5.0}, first=Purpose.FINAL), _candidate({1000: 4.9}, first=Purpose.FINAL)
    yard = finish.yardstick(best, reference)
    assert yard["best_at_least_reference"] is None and yard["verdict"] == "cannot tell"
    assert "one seed" in yard["verdict_note"]


def test_the_band_borrows_the_spread_of_the_program_trained_on_more_seeds() -> None:
    band = noise.noise_band([10.0, 12.0, 14.0], [11.0])  # variance 4 pooled: 2 * sqrt(4 * (1/3 + 1))
    assert band == pytest.approx(2 * (4 * (1 / 3 + 1)) ** 0.5)
    assert noise.noise_band([10.0], [11.0]) is None
    assert noise.compare(5.0, 1.0) == "above" and noise.compare(-5.0, 1.0) == "below"
    assert noise.compare(0.5, 1.0) == "within noise" and noise.compare(0.5, None) == "cannot tell"


def test_no_normalized_score_when_the_reference_scored_below_the_fitness_used_as_reward() -> None:
    """The issue's case: 'Normalized score -0.744' for a best that beat both baselines."""
    score, note = finish.normalized_score(best=2.0, reference=0.5, sparse=1.2, band=0.1)
    assert score is None and "scored below the fitness used as reward" in note
    score, note = finish.normalized_score(best=2.0, reference=1.25, sparse=1.2, band=0.1)
    assert score is None and "within the seeds' noise" in note
    score, note = finish.normalized_score(best=2.0, reference=3.0, sparse=1.0, band=None)
    assert score is None and "one seed" in note
    score, note = finish.normalized_score(best=2.0, reference=3.0, sparse=1.0, band=0.1)
    assert score == pytest.approx(0.5) and "1 the env's own reward" in note
