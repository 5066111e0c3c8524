"""Run diagnostics: each fires on a run constructed to have the problem, none on a healthy run; the summary."""

from __future__ import annotations

from app.db.models import Run
from app.search.design.diagnostics import Code
from app.search.design.run_diagnosis import Scored, diagnose_run
from app.search.records.runs import summary
from app.search.rules.states import RunStatus

HEALTHY = [
    Scored(1, 410.0, 12.0, [5.0, 80.0, 200.0, 300.0, 405.0, 410.0]),
    Scored(2, 250.0, 9.0, [3.0, 60.0, 150.0, 240.0, 250.0, 251.0]),
    Scored(3, 120.0, 5.0, [4.0, 40.0, 90.0, 118.0, 121.0, 120.0]),
]


def codes(items: list[dict]) -> list[str]:
    return [d["code"] for d in items]


def test_a_healthy_run_has_no_diagnostics() -> None:
    assert diagnose_run(HEALTHY, best_id=1) == []
    assert diagnose_run([], best_id=None) == []


def test_candidates_that_all_score_the_standing_height_are_indistinguishable_and_never_rose() -> None:
    standing = [Scored(i, 1.248 + 0.0004 * (i % 2), 0.0, [1.25, 1.249, 1.248]) for i in range(12)]
    items = diagnose_run(standing, best_id=1)
    assert codes(items) == [Code.INDISTINGUISHABLE, Code.NEVER_ROSE]
    first = items[0]
    assert first["numbers"]["candidates"] == 12 and first["numbers"]["min"] == 1.248
    assert "could not tell them apart" in first["message"] and first["advice"]
    assert items[1]["numbers"]["start"] == 1.25


def test_different_candidates_that_learned_nothing_never_rose_only() -> None:
    flat = [Scored(1, 0.8, 0.01, [1.0, 0.9, 0.8]), Scored(2, 0.2, 0.01, [1.0, 0.5, 0.2])]
    assert codes(diagnose_run(flat, best_id=1)) == [Code.NEVER_ROSE]


def test_noise_is_the_spread_over_episodes_so_overlapping_means_are_indistinguishable() -> None:
    noisy = [Scored(1, 10.0, 3.0, [1.0, 10.0]), Scored(2, 12.0, 3.0, [1.0, 12.0])]
    assert codes(diagnose_run(noisy, best_id=2)) == [Code.INDISTINGUISHABLE]
    assert diagnose_run([Scored(1, 10.0, 0.1, [1.0, 10.0]), Scored(2, 12.0, 0.1, [1.0, 12.0])], best_id=2) == []


def test_a_best_candidate_still_rising_at_its_last_checkpoint_says_the_budget_is_too_small() -> None:
    rising = [*HEALTHY[1:], Scored(1, 520.0, 10.0, [5.0, 80.0, 200.0, 300.0, 405.0, 520.0])]
    items = diagnose_run(rising, best_id=1)
    assert codes(items) == [Code.BUDGET_TOO_SMALL]
    assert items[0]["numbers"]["last_checkpoints"] == [300.0, 405.0, 520.0]


def test_reward_hacking_fires_when_the_best_or_half_the_candidates_hacked() -> None:
    best_hacked = [Scored(1, 410.0, 12.0, HEALTHY[0].curve, hacking=True), *HEALTHY[1:]]
    items = diagnose_run(best_hacked, best_id=1)
    assert codes(items) == [Code.REWARD_HACKING_SUSPECTED] and items[0]["numbers"]["candidates"] == [1]
    one_weak = [*HEALTHY[:2], Scored(3, 120.0, 5.0, HEALTHY[2].curve, hacking=True), Scored(4, 90.0, 5.0, [1.0, 90.0])]
    assert diagnose_run(one_weak, best_id=1) == []  # one of four, not the best


def test_a_run_that_learned_nothing_says_so_first() -> None:
    run = Run(status=RunStatus.SUCCEEDED, best_candidate_id=7, final={})
    standing = [Scored(i, 1.248, 0.0, [1.248, 1.248]) for i in range(3)]
    run.diagnostics = {"items": diagnose_run(standing, best_id=7)}
    assert summary(run).startswith("the search learned nothing: all 3 candidates scored within")
    run.diagnostics = {"items": []}
    run.final = {"yardstick": {"ratio": 1.5}}
    assert summary(run) == "succeeded, best candidate 7 (1.50x the reference reward on fresh seeds)"
