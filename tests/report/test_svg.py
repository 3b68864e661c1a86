"""The SVG builders: well-formed XML, escaped text, sane output on degenerate input."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from poisonguard.report import svg

NS = "{http://www.w3.org/2000/svg}"


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)


def test_scatter_draws_every_titled_point_and_escapes_labels() -> None:
    rng = np.random.default_rng(0)
    back = svg.Series(rng.normal(size=50), rng.normal(size=50), "#123456", "<clean & co>")
    hot = svg.Series(np.array([0.0, 1.0]), np.array([1.0, 0.0]), svg.FLAG_COLOUR, "flagged",
                     titles=["row 1 <b>", "row 2"])
    root = parse(svg.scatter([back, hot], title="t", xlabel="x", ylabel="y"))
    circles = root.findall(f".//{NS}circle")
    assert len(circles) == 2
    assert circles[0].find(f"{NS}title").text == "row 1 <b>"  # escaped, parsed back
    path = root.find(f".//{NS}path")
    assert path is not None and path.get("d", "").count("M") == 50
    assert any(t.text == "<clean & co>" for t in root.iter(f"{NS}text"))


def test_scatter_of_identical_points_stays_inside_the_frame() -> None:
    s = svg.Series(np.ones(5), np.ones(5), "#000", "same", titles=["a"] * 5)
    root = parse(svg.scatter([s], title="t", width=300, height=200))
    for c in root.iter(f"{NS}circle"):
        assert 0 <= float(c.get("cx", -1)) <= 300 and 0 <= float(c.get("cy", -1)) <= 200


def test_histogram_colours_bins_at_or_above_the_threshold() -> None:
    edges = np.linspace(0, 1, 11)
    counts = np.array([1000, 50, 5, 0, 0, 2, 0, 0, 0, 1])
    root = parse(svg.histogram(edges, counts, title="h", threshold=0.5))
    bars = [r for r in root.iter(f"{NS}rect")]
    assert len(bars) == 5  # empty bins are not drawn
    red = [r for r in bars if r.get("fill") == svg.FLAG_COLOUR]
    assert len(red) == 2
    assert all(float(r.get("height", 0)) > 0 for r in bars)
    assert any("threshold 0.5" in (t.text or "") for t in root.iter(f"{NS}text"))


def test_bars_and_pixel_grid() -> None:
    root = parse(svg.bars(["a", "b"], [3.0, 0.0], totals=[10.0, 4.0], title="b"))
    labels = [t.text for t in root.iter(f"{NS}text")]
    assert "3 / 10" in labels and "0 / 4" in labels
    grid = parse(svg.pixel_grid(np.eye(3), title="g", highlight=np.eye(3, dtype=bool)))
    rects = list(grid.iter(f"{NS}rect"))
    assert len(rects) == 9 + 3
    assert sum(r.get("stroke") == svg.FLAG_COLOUR for r in rects) == 3
