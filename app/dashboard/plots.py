"""Small server-side SVG plots: lines and points with labelled axes and values, readable without hovering.

Values come from programs and trainings: a point that is not a finite number is left out (and counted in
the title), and spans up to the whole float range (±1.5e308) are drawn without overflowing.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import TypeGuard

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


@dataclass
class Series:
    name: str
    points: list[tuple[float, float | None]]
    dashed: bool = False


_MAX = sys.float_info.max


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values from at most ``lo`` to at least ``hi`` (both finite), about ``n`` steps apart.

    Worked out on fifths where a span could overflow (``hi - lo`` of ±1.5e308 is infinite), and clamped to the
    float range at the ends.
    """
    if hi <= lo:
        pad = max(1.0, abs(lo) * 1e-3)
        lo, hi = (lo, lo + pad) if lo < _MAX / 2 else (lo - pad, lo)
    raw = hi / n - lo / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    ticks: list[float] = []
    for k in range(math.floor(lo / step), math.ceil(hi / step) + 1):
        v = max(-_MAX, min(_MAX, k * step))
        tidy = float(f"{v:.12g}")  # 0.30000000000000004 → 0.3
        ticks.append(tidy if math.isfinite(tidy) else v)
    return ticks


def _scale(v0: float, v1: float, start: float, length: float) -> Callable[[float], float]:
    """Maps [v0, v1] onto [start, start + length] without overflowing on spans as wide as the float range."""
    half_span = v1 / 2 - v0 / 2 or 0.5
    return lambda v: start + (v / 2 - v0 / 2) / half_span * length


def _finite(y: float | None) -> TypeGuard[float]:
    return isinstance(y, int | float) and math.isfinite(y)


def fmt(v: float) -> str:
    """Short, exact-enough numbers for ticks and labels: 1.5k, 2M, 0.043, 0."""
    if v == 0:
        return "0"
    if not math.isfinite(v) or abs(v) >= 1e9:
        return f"{v:.2g}"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    if abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.3g}"


def _spread(ys: list[float], gap: float = 13.0) -> list[float]:
    """Label positions no closer than ``gap`` pixels, in the order given."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    out = list(ys)
    for k in range(1, len(order)):
        prev, cur = order[k - 1], order[k]
        out[cur] = max(out[cur], out[prev] + gap)
    return out


def line_plot(
    series: list[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 520,
    height: int = 270,
    label_last: bool = True,
    mode: str = "lines",
) -> str:
    """An inline SVG of ``series``; the last value of each series is written next to it."""
    pts = [(x, y) for s in series for x, y in s.points if _finite(x) and _finite(y)]
    if not pts:
        return f'<div class="plot-empty">{escape(title)}: no data yet</div>'
    left, right, top, bottom = 64, 120 if label_last else 16, 28, 44
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x_ticks, y_ticks = _ticks(min(xs), max(xs)), _ticks(min(ys), max(ys))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    pw, ph = width - left - right, height - top - bottom
    sx = _scale(x0, x1, left, pw)
    sy = _scale(y0, y1, top + ph, -ph)

    out = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="16" class="plot-title">{escape(title)}</text>',
    ]
    for t in y_ticks:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" class="tick" text-anchor="end">{fmt(t)}</text>'
        )
    for t in x_ticks:
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 16}" class="tick" text-anchor="middle">{fmt(t)}</text>')
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" class="axis"/>'
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" class="axis"/>'
    )
    out.append(
        f'<text x="{left + pw / 2:.0f}" y="{height - 6}" class="axis-label" text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text x="14" y="{top + ph / 2:.0f}" class="axis-label" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2:.0f})">{escape(y_label)}</text>'
    )
    if y0 < 0 < y1:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" class="zero"/>')
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        good = [(x, y) for x, y in s.points if _finite(x) and _finite(y)]
        if not good:
            continue
        if mode == "lines" and len(good) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
            dash = ' stroke-dasharray="5 4"' if s.dashed else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in good:
            out.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{colour}"><title>{escape(s.name)}: '
                f"{fmt(y)}</title></circle>"
            )
    if label_last:
        ends = [
            (i, (x, y))
            for i, s in enumerate(series)
            if s.points
            for x, y in [s.points[-1]]
            if _finite(x) and _finite(y)
        ]
        spots = _spread([sy(p[1]) + 4 for _, p in ends])
        for (i, (x, y)), ty in zip(ends, spots, strict=False):
            colour = PALETTE[i % len(PALETTE)]
            out.append(
                f'<text x="{sx(x) + 8:.1f}" y="{ty:.1f}" class="series-label" fill="{colour}">'
                f"{escape(series[i].name)} {fmt(y)}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def scatter_by_iteration(points: list[tuple[int, float, str, bool]], *, title: str, y_label: str) -> str:
    """Fitness of each candidate (x = iteration) with its id written beside it; the best is highlighted."""
    skipped = sum(1 for p in points if not _finite(p[1]))
    points = [p for p in points if _finite(p[1])]
    if skipped:
        title = f"{title} ({skipped} not finite, not shown)"
    if not points:
        return f'<div class="plot-empty">{escape(title)}: no trained candidate yet</div>'
    width, height, left, right, top, bottom = 560, 260, 64, 40, 28, 44
    ys = [p[1] for p in points]
    iters = sorted({p[0] for p in points})
    y_ticks = _ticks(min(ys), max(ys))
    y0, y1 = y_ticks[0], y_ticks[-1]
    pw, ph = width - left - right, height - top - bottom
    n = max(iters) + 1
    sy = _scale(y0, y1, top + ph, -ph)

    def sx(i: int) -> float:
        return left + (i + 0.5) / n * pw

    out = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><text x="{left}" y="16" class="plot-title">{escape(title)}</text>'
    ]
    for t in y_ticks:
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" class="tick" text-anchor="end">{fmt(t)}</text>'
        )
    for i in range(n):
        out.append(f'<text x="{sx(i):.1f}" y="{top + ph + 16}" class="tick" text-anchor="middle">{i + 1}</text>')
    out.append(
        f'<text x="{left + pw / 2:.0f}" y="{height - 6}" class="axis-label" text-anchor="middle">iteration</text>'
        f'<text x="14" y="{top + ph / 2:.0f}" class="axis-label" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2:.0f})">{escape(y_label)}</text>'
    )
    per_iter: dict[int, int] = {}
    for it, y, label, best in points:
        k = per_iter.get(it, 0)
        per_iter[it] = k + 1
        x = sx(it) + (k % 4 - 1.5) * 10
        colour = "#d62728" if best else "#1f77b4"
        r = 6 if best else 4
        out.append(
            f'<circle cx="{x:.1f}" cy="{sy(y):.1f}" r="{r}" fill="{colour}"><title>{escape(label)}: {fmt(y)}</title></circle>'
            f'<text x="{x + 8:.1f}" y="{sy(y) + 4:.1f}" class="point-label">{escape(label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
