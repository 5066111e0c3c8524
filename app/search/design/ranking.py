"""Human selection's arithmetic: the groups a person chooses in, and Bradley–Terry scores from their choices.

Pure: ``app.search.records.choices`` reads the choices from the database and keeps the knock-out's
state; ``app.search.decisions.selection`` records a person's choice.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from app.search.rules.numbering import iteration_number

GROUP_SIZE = (2, 4)
"""Candidates shown together: at least two, at most four."""
PRIOR_GAMES = 1.0
"""Bradley–Terry prior: each candidate gets this many virtual wins and losses against a reference of strength 1,
so that one who won every comparison still has a finite score."""
BT_STEPS = 1000


@dataclass(frozen=True)
class Group:
    """Candidates to compare: ``position`` within knock-out ``round`` of ``iteration``."""

    iteration: int
    round: int
    position: int
    candidates: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "iteration": iteration_number(self.iteration),
            "round": self.round,
            "position": self.position,
            "candidates": list(self.candidates),
        }


def partition(ids: list[int]) -> list[list[int]]:
    """``ids`` in order, cut into as few groups as fit in ``GROUP_SIZE``, as even as can be (5 → 3 + 2)."""
    if len(ids) < GROUP_SIZE[0]:
        return []
    count = math.ceil(len(ids) / GROUP_SIZE[1])
    base, extra = divmod(len(ids), count)
    out, start = [], 0
    for i in range(count):
        size = base + (1 if i < extra else 0)
        out.append(ids[start : start + size])
        start += size
    return out


class Choice(Protocol):
    """A person's choice in one group (a ``SelectionChoice`` row)."""

    @property
    def ranked(self) -> bool: ...
    @property
    def none_right(self) -> bool: ...
    @property
    def best_id(self) -> int: ...
    @property
    def group(self) -> Sequence[int]: ...
    @property
    def ranking(self) -> Sequence[int]: ...


def outcomes(choice: Choice) -> list[tuple[int, int]]:
    """(winner, loser) pairs of one choice: the best beat every other; a ranking orders every pair; 'none of these
    is right' gives none (no one beat anyone)."""
    if choice.none_right:
        return []
    if choice.ranked:
        order = list(choice.ranking)
        return [(a, b) for i, a in enumerate(order) for b in order[i + 1 :]]
    return [(choice.best_id, other) for other in choice.group if other != choice.best_id]


def bradley_terry(pairs: Iterable[tuple[int, int]]) -> dict[int, float]:
    """Bradley–Terry strengths (log scale; 0 is the prior's reference) from (winner, loser) pairs, fitted by
    Hunter's minorise–maximise iteration with ``PRIOR_GAMES`` virtual games per candidate."""
    wins: Counter[int] = Counter()
    games: dict[int, Counter[int]] = defaultdict(Counter)
    for winner, loser in pairs:
        wins[winner] += 1
        games[winner][loser] += 1
        games[loser][winner] += 1
    strength = dict.fromkeys(games, 1.0)
    for _ in range(BT_STEPS):
        new = {
            i: (wins[i] + PRIOR_GAMES)
            / (
                sum(n / (strength[i] + strength[j]) for j, n in games[i].items())
                + 2 * PRIOR_GAMES / (strength[i] + 1.0)
            )
            for i in strength
        }
        done = all(abs(math.log(new[i] / strength[i])) < 1e-12 for i in strength)
        strength = new
        if done:
            break
    return {i: round(math.log(p), 6) for i, p in sorted(strength.items())}
