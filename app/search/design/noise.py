"""Whether two programs' fitness differ by more than the trainings' own noise.

One PPO training per seed gives one fitness; trainings of the same reward on other seeds
scatter around it. A comparison of two rewards (the best against the reference, the reference
against the fitness used as reward) is only a finding when the difference is larger than that
scatter: ``noise_band`` estimates it from the seeds' spread (a pooled variance, so that a
program trained on one seed borrows the other's spread), with a floor of ``RELATIVE_FLOOR``
of the values' size, and ``compare`` says above, below, within noise, or cannot tell.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from enum import StrEnum

Z = 2.0
"""Standard errors the difference must exceed (about 95 % for a normal scatter)."""
RELATIVE_FLOOR = 0.01
"""A difference below this share of the values' magnitude is never called a difference."""


class Verdict(StrEnum):
    ABOVE = "above"
    BELOW = "below"
    WITHIN_NOISE = "within noise"
    CANNOT_TELL = "cannot tell"


def noise_band(a: Sequence[float], b: Sequence[float]) -> float | None:
    """How far apart the means of ``a`` and ``b`` (fitness per seed of two programs) may be by chance alone: ``Z``
    standard errors of their difference, from the pooled spread across seeds, at least ``RELATIVE_FLOOR`` of their
    magnitude. None when neither was trained on two seeds or more (no spread to measure)."""
    spread = [(len(x) - 1, statistics.variance(x)) for x in (a, b) if len(x) >= 2]
    if not spread or not a or not b:
        return None
    pooled = sum(dof * var for dof, var in spread) / sum(dof for dof, _ in spread)
    band = Z * math.sqrt(pooled * (1 / len(a) + 1 / len(b)))
    size = max(abs(statistics.fmean(a)), abs(statistics.fmean(b)))
    return max(band, RELATIVE_FLOOR * size)


def compare(difference: float, band: float | None) -> Verdict:
    """``difference`` (first minus second) against the ``band`` of ``noise_band``."""
    if band is None:
        return Verdict.CANNOT_TELL
    if difference > band:
        return Verdict.ABOVE
    if difference < -band:
        return Verdict.BELOW
    return Verdict.WITHIN_NOISE
