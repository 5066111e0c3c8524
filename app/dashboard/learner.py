"""The candidate page's learner table: SB3 PPO's statistics over the checkpoints, a sparkline each, and the verdict
(``app.search.design.learner``) beside the reward components."""

from __future__ import annotations

from html import escape
from typing import Any

from markupsafe import Markup

import app.search.design.learner as learner
import app.search.design.verdict as verdict
from app.dashboard.plots import fmt
from app.search.design.diagnostics import Finding
from workers.engine.result import TrainingResult

WIDTH, HEIGHT, PAD = 120, 28, 3


def sparkline(name: str, points: list[tuple[int, float | None]]) -> Markup:
    """A small inline SVG line of ``points`` (training step, value); values that are not numbers are left out."""
    good = [(x, y) for x, y in points if y is not None]
    if not good:
        return Markup('<span class="muted">—</span>')
    xs, ys = [x for x, _ in good], [y for _, y in good]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)

    def sx(x: float) -> float:
        return PAD + (x - x0) / ((x1 - x0) or 1) * (WIDTH - 2 * PAD)

    def sy(y: float) -> float:  # halves first: a span as wide as the float range does not overflow
        return HEIGHT - PAD - ((y / 2 - y0 / 2) / ((y1 / 2 - y0 / 2) or 1)) * (HEIGHT - 2 * PAD)

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
    label = escape(f"{name} from {fmt(ys[0])} to {fmt(ys[-1])} over training")
    last = good[-1]
    return Markup(
        f'<svg class="spark" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg">'
        f'<polyline points="{path}" fill="none" stroke="#2456c8" stroke-width="1.5"/>'
        f'<circle cx="{sx(last[0]):.1f}" cy="{sy(last[1]):.1f}" r="2" fill="#2456c8"/></svg>'
    )


def table(result: TrainingResult, found: list[Finding]) -> dict[str, Any]:
    """What ``_learner.html`` shows: one row per statistic (its meaning, sparkline, first, last, min and max value)
    and the verdict."""
    summary = verdict.summary(result, found)
    steps = summary["timesteps"]
    rows = []
    for name, values in summary["stats"].items():
        known = [v for v in values if v is not None]
        rows.append(
            {
                "name": name,
                "meaning": learner.STATS[name],
                "spark": sparkline(name, list(zip(steps, values, strict=False))),
                "first": fmt(known[0]),
                "last": fmt(known[-1]),
                "low": fmt(min(known)),
                "high": fmt(max(known)),
            }
        )
    return {
        "rows": rows,
        "verdict": summary["verdict"],
        "verdict_text": summary["verdict_text"],
        "checkpoints": len(steps),
    }
