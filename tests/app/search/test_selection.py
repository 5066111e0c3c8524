"""Human selection's pieces: groups of two to four, the knock-out, and Bradley–Terry scores that follow the choices."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.search.design.ranking import bradley_terry, outcomes, partition


@pytest.mark.parametrize(
    "n, sizes",
    [(0, []), (1, []), (2, [2]), (4, [4]), (5, [3, 2]), (7, [4, 3]), (8, [4, 4]), (9, [3, 3, 3]), (13, [4, 3, 3, 3])],
)
def test_candidates_are_shown_two_to_four_at_a_time_in_as_few_groups_as_fit(n: int, sizes: list[int]) -> None:
    groups = partition(list(range(n)))
    assert [len(g) for g in groups] == sizes
    assert [i for g in groups for i in g] == (list(range(n)) if sizes else [])


def test_a_choice_is_won_against_every_other_of_its_group_and_a_ranking_orders_every_pair() -> None:
    best = SimpleNamespace(ranked=False, none_right=False, best_id=7, group=[5, 7, 9], ranking=[7, 5, 9])
    assert outcomes(best) == [(7, 5), (7, 9)]
    ranked = SimpleNamespace(ranked=True, none_right=False, best_id=9, group=[5, 7, 9], ranking=[9, 5, 7])
    assert outcomes(ranked) == [(9, 5), (9, 7), (5, 7)]


def test_scores_follow_the_choices() -> None:
    one = bradley_terry([(1, 2)])
    assert one[1] > 0 > one[2] and one[1] == pytest.approx(-one[2])  # finite although 1 never lost
    assert bradley_terry([(2, 1)]) == {1: one[2], 2: one[1]}  # the other choice, the other order
    chain = bradley_terry([(1, 2), (2, 3)])
    assert chain[1] > chain[2] > chain[3]
    more = bradley_terry([(1, 2), (1, 2), (1, 2), (2, 1)])
    assert more[1] > more[2] and more[1] < bradley_terry([(1, 2)] * 4)[1]  # a loss costs something
    assert bradley_terry([(1, 2), (2, 1)])[1] == pytest.approx(0.0, abs=1e-9)  # a draw is even
    assert bradley_terry([]) == {}
