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
