"""The dashboard's SVG plots draw whatever numbers a program or a training produced: non-finite values are left
out, and spans as wide as the float range are drawn without overflowing."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from app.dashboard.plots import Series, line_plot, scatter_by_iteration

SVG = "{http://www.w3.org/2000/svg}"
COORDINATES = ("x", "y", "x1", "x2", "y1", "y2", "cx", "cy")


def drawn(svg: str) -> ET.Element:
    """The parsed SVG, after checking that every coordinate is a finite number inside the picture."""
    root = ET.fromstring(svg)
    _, _, width, height = (float(v) for v in root.attrib["viewBox"].split())
    for element in root.iter():
        for name in COORDINATES:
            if name in element.attrib:
                value = float(element.attrib[name])
                assert math.isfinite(value) and -width <= value <= 2 * width, (element.tag, name, value)
        if "points" in element.attrib:
            for pair in element.attrib["points"].split():
                x, y = (float(v) for v in pair.split(","))
                assert 0 <= x <= width and 0 <= y <= height, pair
    return root


def circles(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{SVG}circle"))


HUGE = [1.5e308, -1.5e308]
NOT_FINITE = [math.inf, -math.inf, math.nan]


def test_a_scatter_of_fitness_values_skips_what_is_not_finite_and_spans_the_float_range() -> None:
    points = [(0, v, f"c{i}", i == 0) for i, v in enumerate(HUGE + NOT_FINITE + [2.0])]
    root = drawn(scatter_by_iteration(points, title="fitness", y_label="fitness"))
    assert len(circles(root)) == 3  # ±1.5e308 and 2.0
    title = root.find(f"{SVG}text")
    assert title is not None and title.text == "fitness (3 not finite, not shown)"
    ys = sorted(float(c.attrib["cy"]) for c in circles(root))
    assert ys[0] < ys[1] < ys[2]  # 1.5e308 on top, 2.0 in the middle, -1.5e308 at the bottom


@pytest.mark.timeout(20)  # the old tick loop never ended on a span of 1e-300
@pytest.mark.parametrize("values", [HUGE, [1.5e308], [-1.5e308, -1.4e308], [1e-300, 2e-300], [5.0, 5.0]])
def test_a_line_plot_copes_with_any_finite_span(values: list[float]) -> None:
    series = [Series("fitness", [(i * 1000, v) for i, v in enumerate(values)]), Series("none", [(0, None)])]
    root = drawn(line_plot(series, title="t", x_label="steps", y_label="fitness"))
    assert len(circles(root)) == len(values)


def test_a_line_plot_skips_values_that_are_not_finite() -> None:
    series = [Series("a", [(0, 1.0), (1, math.inf), (2, math.nan), (3, 3.0)]), Series("b", [(0, -math.inf)])]
    root = drawn(line_plot(series, title="t", x_label="steps", y_label="v"))
    assert len(circles(root)) == 2
    nothing = line_plot([Series("b", [(0, math.nan), (1, None)])], title="t", x_label="x", y_label="y")
    assert "no data yet" in nothing
    only_bad = scatter_by_iteration([(0, math.inf, "c1", True)], title="fitness", y_label="fitness")
    assert "no trained candidate yet" in only_bad and "1 not finite" in only_bad


def tick_texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text") if t.attrib.get("class") == "tick"]


def test_tick_labels_never_repeat() -> None:
    """Ticks 0.05140 and 0.05141 used to both read '-0.0514'; labels get the digits that tell them apart."""
    from app.dashboard.plots import tick_labels

    ticks = [-0.05142, -0.05141, -0.0514, -0.05139]
    labels = tick_labels(ticks)
    assert len(set(labels)) == len(labels) == 4
    assert tick_labels([0.0, 0.5, 1.0]) == ["0", "0.5", "1"]  # short where short is enough

    assert len(set(tick_labels([1000.0, 1000.5]))) == 2


@pytest.mark.parametrize("span", [1e-5, 1e-9, 0.0])
def test_noise_is_drawn_as_noise_not_as_a_full_height_curve(span: float) -> None:
    """A fitness of -0.0514 with 1e-5 of jitter is a flat line: its points stay within a sliver of the height,
    and no y tick label is printed twice."""
    values = [-0.0514 + span * (i % 3 - 1) for i in range(8)]
    root = drawn(
        line_plot(
            [Series("fitness", [(i * 1000, v) for i, v in enumerate(values)])], title="t", x_label="x", y_label="y"
        )
    )
    ys = [float(c.attrib["cy"]) for c in circles(root)]
    plot_height = 270 - 28 - 44
    assert max(ys) - min(ys) < 0.05 * plot_height
    labels = tick_texts(root)
    assert len(labels) == len(set(labels))


def test_value_range_keeps_real_change_and_widens_noise() -> None:
    from app.dashboard.plots import value_range

    assert value_range([0.0, 50.0]) == (0.0, 50.0)  # learning is shown at full height
    lo, hi = value_range([1.0, 1.00001])
    assert hi - lo >= 0.05 and lo < 1.0 and hi > 1.00001
    lo, hi = value_range([0.0, 1e-7])
    assert hi - lo >= 1e-3
    lo, hi = value_range([1e-7, 2e-7], min_span=1e-8)  # a caller that knows its scale
    assert (lo, hi) == (1e-7, 2e-7)


def test_a_line_plot_has_a_legend_and_draws_references_in_its_range() -> None:
    """Several candidates on one chart: each named in the legend with its colour; the baseline's fitness is a
    labelled dashed line, inside the y range even when it lies far from the curves."""
    from app.dashboard.plots import Reference

    series = [Series(f"#{i}", [(0, 1.0 + i), (1000, 2.0 + i)]) for i in range(3)]
    root = drawn(
        line_plot(
            series, title="fitness", x_label="steps", y_label="f", references=[Reference("reference reward", 40.0)]
        )
    )
    legend = root.find(f"{SVG}g[@class='legend']")
    assert legend is not None
    names = [t.text or "" for t in legend.iter(f"{SVG}text")]
    assert [n.split()[0] for n in names] == ["#0", "#1", "#2"]
    ref = [e for e in root.iter(f"{SVG}line") if e.attrib.get("class") == "reference"]
    assert len(ref) == 1
    top = min(float(c.attrib["cy"]) for c in circles(root))
    assert float(ref[0].attrib["y1"]) < top  # 40 is above every curve, and drawn
    labels = [t.text or "" for t in root.iter(f"{SVG}text") if t.attrib.get("class") == "reference-label"]
    assert labels == ["reference reward 40"]


def test_a_chart_of_many_candidates_says_how_many_it_left_out() -> None:
    series = [Series(f"#{i}", [(0, float(i)), (1, float(i) + 1)]) for i in range(20)]
    root = drawn(line_plot(series, title="fitness", x_label="steps", y_label="f"))
    assert root.attrib["aria-label"] == "fitness (first 12 of 20 shown)"
