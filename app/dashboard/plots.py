"""Small server-side SVG plots: lines and points with labelled axes, a legend, and reference lines (a threshold, a
baseline), readable without hovering.

Values come from programs and trainings: a point that is not a finite number is left out (and counted in
the title), and spans up to the whole float range (±1.5e308) are drawn without overflowing. The scale shows
noise as noise: a span far smaller than the values' size (or than ``min_span``) is widened around its middle
(``value_range``), so that 1e-5 of jitter on a fitness of 0.05 draws as a flat line, not a full-height curve.
Tick labels never repeat (``tick_labels`` adds digits until they differ).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import TypeGuard

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")

RELATIVE_SPAN = 0.05
"""The smallest span a y axis shows, as a fraction of the largest magnitude drawn: a difference below about 1/20
of the values' size is drawn as the small thing it is."""
MIN_SPAN = 1e-3
"""The smallest span a y axis shows around values near zero (an absolute floor; callers that know their scale
pass their own ``min_span``)."""
MAX_SERIES = 12
"""Series one chart draws at most; the rest are said in the title (a run with 60 candidates stays readable)."""


@dataclass
class Series:
    name: str
    points: list[tuple[float, float | None]]
    dashed: bool = False


@dataclass(frozen=True)
class Reference:
    """A horizontal line across the plot: a threshold or a baseline's value, labelled."""

    name: str
    value: float | None


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
    return list(dict.fromkeys(ticks))  # clamping at the float range's ends can make two ticks one


def value_range(
    values: Sequence[float], *, min_span: float = MIN_SPAN, relative: float = RELATIVE_SPAN
) -> tuple[float, float]:
    """The span a y axis shows for ``values`` (finite, at least one): their range, widened around its middle to at
    least ``max(min_span, relative × the largest magnitude)`` so that noise is drawn as noise."""
    lo, hi = min(values), max(values)
    magnitude = max(abs(lo), abs(hi))
    need = max(min_span, relative * magnitude)
    if hi / 2 - lo / 2 >= need / 2:
        return lo, hi
    mid = lo / 2 + hi / 2
    return max(-_MAX, mid - need / 2), min(_MAX, mid + need / 2)


def _scale(v0: float, v1: float, start: float, length: float) -> Callable[[float], float]:
    """Maps [v0, v1] onto [start, start + length] without overflowing on spans as wide as the float range."""
    half_span = v1 / 2 - v0 / 2 or 0.5
    return lambda v: start + (v / 2 - v0 / 2) / half_span * length


def _finite(y: float | None) -> TypeGuard[float]:
    return isinstance(y, int | float) and math.isfinite(y)


def fmt(v: float, digits: int = 3) -> str:
    """Short, exact-enough numbers for ticks and labels: 1.5k, 2M, 0.043, 0 (``digits`` significant digits)."""
    if v == 0:
        return "0"
    if not math.isfinite(v) or abs(v) >= 1e9:
        return f"{v:.{max(2, digits - 1)}g}"
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.{digits}g}{suffix}"
    if abs(v) < 0.01:
        return f"{v:.{max(2, digits - 1)}g}"
    return f"{v:.{digits}g}"


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Labels for ``ticks`` that are all different: as short as ``fmt`` writes them, with more digits where two
    would read the same (ticks 0.05140 and 0.05141 are not both '0.0514')."""
    for digits in range(3, 18):
        labels = [fmt(t, digits) for t in ticks]
        if len(set(labels)) == len(labels):
            return labels
    return [repr(t) for t in ticks]


def _clip(name: str, n: int = 18) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def _frame(
    out: list[str],
    *,
    y_ticks: list[float],
    sy: Callable[[float], float],
    left: float,
    top: float,
    pw: float,
    ph: float,
    height: int,
    x_label: str,
    y_label: str,
) -> None:
    """Grid lines with their (distinct) labels, the axes and their titles."""
    for t, label in zip(y_ticks, tick_labels(y_ticks), strict=True):
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{sy(t) + 4:.1f}" class="tick" text-anchor="end">{label}</text>'
        )
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{top + ph}" y2="{top + ph}" class="axis"/>'
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + ph}" class="axis"/>'
        f'<text x="{left + pw / 2:.0f}" y="{height - 6}" class="axis-label" text-anchor="middle">{escape(x_label)}</text>'
        f'<text x="14" y="{top + ph / 2:.0f}" class="axis-label" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2:.0f})">{escape(y_label)}</text>'
    )


def _references(
    out: list[str], refs: Sequence[Reference], sy: Callable[[float], float], left: float, pw: float
) -> None:
    for ref in refs:
        if not _finite(ref.value):
            continue
        y = sy(ref.value)
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" class="reference" stroke="#6b7280" '
            f'stroke-dasharray="2 3" stroke-width="1.5"><title>{escape(ref.name)}: {fmt(ref.value)}</title></line>'
            f'<text x="{left + 4}" y="{y - 3:.1f}" class="reference-label" fill="#4b5563">'
            f"{escape(_clip(ref.name, 40))} {fmt(ref.value)}</text>"
        )


def _legend(out: list[str], entries: list[tuple[str, str, bool]], x: float, top: float) -> None:
    """A legend column: a swatch of each series' colour (dashed where the line is) and its label."""
    out.append('<g class="legend">')
    for k, (colour, label, dashed) in enumerate(entries):
        y = top + 6 + 15 * k
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        out.append(
            f'<line x1="{x}" x2="{x + 16}" y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="2.5"{dash}/>'
            f'<text x="{x + 20}" y="{y + 4:.1f}" class="series-label" fill="{colour}">{escape(label)}</text>'
        )
    out.append("</g>")


def line_plot(
    series: list[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 560,
    height: int = 270,
    label_last: bool = True,
    mode: str = "lines",
    references: Sequence[Reference] = (),
    min_span: float = MIN_SPAN,
) -> str:
    """An inline SVG of ``series`` with a legend (each series' name, and its last value with ``label_last``) and
    ``references`` drawn as labelled dashed lines; the y axis includes the references and shows noise as noise
    (``value_range``). Draws the first ``MAX_SERIES`` series; the title says how many more there were."""
    if len(series) > MAX_SERIES:
        title = f"{title} (first {MAX_SERIES} of {len(series)} shown)"
        series = series[:MAX_SERIES]
    pts = [(x, y) for s in series for x, y in s.points if _finite(x) and _finite(y)]
    if not pts:
        return f'<div class="plot-empty">{escape(title)}: no data yet</div>'
    refs = [r for r in references if _finite(r.value)]
    left, right, top, bottom = 64, 190, 28, 44
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts] + [r.value for r in refs if r.value is not None]
    x_ticks = _ticks(min(xs), max(xs))
    y_ticks = _ticks(*value_range(ys, min_span=min_span))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    pw, ph = width - left - right, height - top - bottom
    sx = _scale(x0, x1, left, pw)
    sy = _scale(y0, y1, top + ph, -ph)

    out = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="16" class="plot-title">{escape(title)}</text>',
    ]
    _frame(
        out, y_ticks=y_ticks, sy=sy, left=left, top=top, pw=pw, ph=ph, height=height, x_label=x_label, y_label=y_label
    )
    for t, label in zip(x_ticks, tick_labels(x_ticks), strict=True):
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 16}" class="tick" text-anchor="middle">{label}</text>')
    if y0 < 0 < y1:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" class="zero"/>')
    _references(out, refs, sy, left, pw)
    entries: list[tuple[str, str, bool]] = []
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        good = [(x, y) for x, y in s.points if _finite(x) and _finite(y)]
        last = f" {fmt(good[-1][1])}" if good and label_last else ("" if good else " (no data)")
        entries.append((colour, _clip(s.name) + last, s.dashed))
        if not good:
            continue
        if mode == "lines" and len(good) > 1:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in good)
            dash = ' stroke-dasharray="5 4"' if s.dashed else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for x, y in good:
            out.append(
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"><title>{escape(s.name)}: '
                f"{fmt(y)}</title></circle>"
            )
    _legend(out, entries, left + pw + 12, top)
    out.append("</svg>")
    return "".join(out)


def scatter_by_iteration(
    points: list[tuple[int, float, str, bool]],
    *,
    title: str,
    y_label: str,
    references: Sequence[Reference] = (),
    min_span: float = MIN_SPAN,
) -> str:
    """Fitness of each candidate (x = iteration) with its id written beside it; the best is highlighted, and
    ``references`` (the baselines' fitness) are drawn as labelled dashed lines."""
    skipped = sum(1 for p in points if not _finite(p[1]))
    points = [p for p in points if _finite(p[1])]
    if skipped:
        title = f"{title} ({skipped} not finite, not shown)"
    if not points:
        return f'<div class="plot-empty">{escape(title)}: no trained candidate yet</div>'
    refs = [r for r in references if _finite(r.value)]
    width, height, left, right, top, bottom = 560, 260, 64, 40, 28, 44
    ys = [p[1] for p in points] + [r.value for r in refs if r.value is not None]
    iters = sorted({p[0] for p in points})
    y_ticks = _ticks(*value_range(ys, min_span=min_span))
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
    _frame(
        out,
        y_ticks=y_ticks,
        sy=sy,
        left=left,
        top=top,
        pw=pw,
        ph=ph,
        height=height,
        x_label="iteration",
        y_label=y_label,
    )
    for i in range(n):
        out.append(f'<text x="{sx(i):.1f}" y="{top + ph + 16}" class="tick" text-anchor="middle">{i + 1}</text>')
    _references(out, refs, sy, left, pw)
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
