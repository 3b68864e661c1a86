"""The HTML report from real scans: content, self-containment, mismatches, edge cases."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from poisonguard.data import Dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.errors import DataError
from poisonguard.findings import Findings
from poisonguard.report import build_context, render_report, write_report
from poisonguard.report.attacks import attacks_view
from tests.report.conftest import POISONED

ScanFixture = tuple[Findings, Dataset]


def test_image_report_shows_attack_patch_thumbnails_and_projection(
        digits_scan: ScanFixture) -> None:
    findings, ds = digits_scan
    page = render_report(findings, dataset=ds)
    for anchor in ("summary", "attacks", "classes", "projection", "histograms", "detectors",
                   "examples", "flagged"):
        assert f'<section id="{anchor}">' in page
    assert "40 rows share a 2x2 patch at row 0, column 0" in page
    assert "trigger on the mean flagged image" in page  # the patch is drawn
    assert page.count('<figure class="thumb">') == 48
    # every planted row is flagged and appears in the projection tooltips
    assert all(f"<title>row {i}, class 0," in page for i in POISONED)
    # one histogram per detector plus the fused score
    assert page.count("histogram</title>") == 1 + len(findings.detectors)


def test_report_is_self_contained(digits_scan: ScanFixture) -> None:
    page = render_report(digits_scan[0], dataset=digits_scan[1])
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert all(s.startswith("data:image/png;base64,")
               for s in re.findall(r'<img [^>]*src="([^"]+)"', page))


def test_tabular_report_names_the_suspicious_feature(tabular_scan: ScanFixture) -> None:
    findings, ds = tabular_scan
    page = render_report(findings, dataset=ds)
    assert findings.summary["flagged"] >= 6
    table = page[page.index('<section id="examples">'):page.index('<section id="flagged">')]
    for row in range(6):
        assert re.search(rf"<td[^>]*>{row}</td><td>\d+</td><td></td><td[^>]*>[\d.]+</td>"
                         r"<td>color_intensity = ", table), row
    assert "No trigger" not in page and "trigger detector did not run" in page


def test_without_the_data_the_page_says_what_is_missing(digits_scan: ScanFixture) -> None:
    page = render_report(digits_scan[0])
    assert "No projection: the report was made without the data" in page
    assert "The flagged examples need the data" in page
    assert '<figure class="thumb">' not in page
    # the findings carry the image shape, so the trigger is drawn even without the data
    assert "rows share a 2x2 patch" in page and '<figure class="trigger">' in page


def test_mismatched_data_is_refused(digits_scan: ScanFixture) -> None:
    findings, ds = digits_scan
    with pytest.raises(DataError, match="1,797 rows but the data has 1,796"):
        render_report(findings, dataset=ds.subset(range(1796)))
    with pytest.raises(DataError, match="sha256 differs"):
        render_report(findings, dataset=builtin_dataset("digits"))


def test_malformed_or_missing_trigger_metadata_never_breaks_the_page(
        digits_scan: ScanFixture) -> None:
    findings, ds = digits_scan
    odd = {"trigger": {"meta": {"triggers": [
        {"class": 0, "features": [10_000], "rows": 3},  # index outside the image
        {"class": 1, "pattern": [[0, 1], [1, 0]], "detail": "a checkerboard"},
        "not a dict",
    ]}}}
    page = attacks_view(build_context(replace(findings, detector_results=odd), dataset=ds))
    assert "the trigger could not be drawn" in page
    assert "a checkerboard" in page and page.count('<figure class="trigger">') == 2
    gone = attacks_view(build_context(replace(findings, detector_results={}), dataset=ds))
    assert "trigger detector did not run" in gone


def test_no_detectors_and_no_flags(digits_scan: ScanFixture) -> None:
    findings, ds = digits_scan
    rows = tuple(replace(r, flagged=False, score=0.0, reasons=(), detector_scores={})
                 for r in findings.rows)
    empty = replace(findings, rows=rows, detectors=(), detector_results={},
                    summary={"suspected_attacks": []})
    page = render_report(empty, dataset=ds)
    assert "No detector ran in this scan" in page and "No row was flagged." in page


def test_write_report_writes_html_and_png(digits_scan: ScanFixture, tmp_path: Path) -> None:
    out, png = tmp_path / "scan" / "report.html", tmp_path / "summary.png"
    write_report(digits_scan[0], out, dataset=digits_scan[1], png_path=png)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["report.html", "scan", "summary.png"]


def test_a_million_rows_stay_under_ten_megabytes(
        synthetic_findings: Callable[..., Findings], tmp_path: Path) -> None:
    import numpy as np

    findings = synthetic_findings(1_000_000)
    embedding = np.random.default_rng(1).normal(size=(1_000_000, 4)).astype(np.float32)
    out = tmp_path / "big.html"
    write_report(findings, out, embedding=embedding)
    size = out.stat().st_size
    page = out.read_text(encoding="utf-8")
    assert size < 10_000_000, size
    assert "5,000 sampled unflagged rows" in page  # the scatter is sampled
    shown = re.search(r"Top 200 of ([\d,]+) flagged rows", page)  # capped, total still said
    assert shown and int(shown.group(1).replace(",", "")) == findings.summary["flagged"]
