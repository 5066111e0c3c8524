"""The quantity a sentence asks to measure, written out as a fitness program (the offline proposer, no LLM).

"The average height of the peaks of its hops" names a quantity (height), how to sum it up over an
episode (the average) and where to read it (at the peaks): none of the built-in metrics measures
that, and the word "hops" must not pick forward distance for it. ``compose`` reads those three parts
from the words it knows and writes the program; it returns None when the sentence names no quantity
it knows, so that the caller can say that it cannot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

QUANTITIES: tuple[tuple[str, str, str, str], ...] = (
    ("height", "z_position", "m", r"\bheights?\b|\baltitude|\belevation|how high"),
    ("forward speed", "x_velocity", "m/s", r"\bspeed|\bvelocit|how fast"),
    ("forward position", "x_position", "m", r"\bdistance|how far|\bposition"),
)
"""(name, state field, unit, words) of the quantities a sentence can ask for."""

SUMMARIES: tuple[tuple[str, str, str], ...] = (
    ("average", "np.mean", r"\baverage|\bmean\b|\btypical"),
    ("highest", "np.max", r"\bmax(imum)?\b|\bhighest|\bgreatest|\blargest|\bpeak (height|speed)"),
    ("lowest", "np.min", r"\bmin(imum)?\b|\blowest|\bsmallest"),
    ("final", "last", r"\bfinal|\bat the end|\blast\b"),
)
"""(name, numpy function, words) of how the values over an episode are summed up into one number."""

PEAKS = r"\bpeaks?\b|\bapex|\bapices|\btops? of (its|each|every|the)"
BUILT_IN: dict[tuple[str, str], str] = {
    ("height", "highest"): "max_height",
    ("forward speed", "average"): "mean_x_velocity",
}
"""Compositions that a built-in metric already measures (the built-in is taken then)."""


@dataclass(frozen=True)
class Composed:
    """A fitness program for the quantity a sentence names."""

    name: str
    meaning: str
    source: str
    built_in: str | None
    """The built-in metric that measures the same, if one does."""
    specific: bool
    """The sentence said how to sum the quantity up, or where to read it (else a built-in metric's words decide)."""


def _find(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE) is not None


def compose(text: str) -> Composed | None:
    """The program measuring the quantity ``text`` names (with its summary, at its peaks where it says so); None
    when it names no quantity this module knows."""
    quantity = next((q for q in QUANTITIES if _find(q[3], text)), None)
    if quantity is None:
        return None
    name, field, unit, _ = quantity
    peaks = _find(PEAKS, text)
    summary = next((s for s in SUMMARIES if _find(s[2], text)), None)
    how, function = (
        (summary[0], summary[1]) if summary else (("average", "np.mean") if peaks else ("highest", "np.max"))
    )
    if how == "final":
        body = f"    return float(traj.{field}[-1])\n"
        what = f"{name} at the end of the episode, {unit}"
    elif peaks:
        body = (
            f"    values = traj.{field}\n"
            "    if values.shape[0] < 3:\n"
            f"        return float({function}(values))\n"
            "    inner = values[1:-1]\n"
            "    # a peak: above both neighbours and above the episode's median (not a tremor while standing)\n"
            "    peaks = (inner > values[:-2]) & (inner >= values[2:]) & (inner > np.median(values))\n"
            "    if not np.any(peaks):\n"
            "        return float(np.max(values))\n"
            f"    return float({function}(inner[peaks]))\n"
        )
        what = f"{how} {name} at the peaks (local maxima above the median) of the episode, {unit}"
    else:
        body = f"    return float({function}(traj.{field}))\n"
        what = f"{how} {name} over the episode, {unit}"
    source = f'import numpy as np\n\n\ndef compute_fitness(traj):\n    """{what[0].upper() + what[1:]}."""\n{body}'
    slug = "_".join([how, *name.split(), *(["at_peaks"] if peaks else [])])
    return Composed(slug, what, source, None if peaks else BUILT_IN.get((name, how)), peaks or summary is not None)
