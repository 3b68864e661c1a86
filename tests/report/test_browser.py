"""The report in a real headless Chromium (Debian's, driven by Playwright).

Needs ``.ci/install-browser.sh`` (chromium at /usr/bin/chromium, the playwright
package); screenshots land in test-artifacts/report/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from poisonguard.data import Dataset
from poisonguard.findings import Findings
from poisonguard.report import write_report

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# For every <svg>: [width, height, number of drawn shapes].
SVG_SIZES = """() => Array.from(document.querySelectorAll('svg')).map(s => {
  const r = s.getBoundingClientRect();
  return [r.width, r.height, s.querySelectorAll('rect,circle,path,line').length];
})"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser: Browser, path: Path) -> tuple[Page, list[str], list[str]]:
    """Load ``path``; return the page, console errors and any non-local request."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    remote: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:"))
            else remote.append(r.url))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors, remote


def check_page(browser: Browser, path: Path, shot: Path, n_svgs: int) -> Page:
    page, errors, remote = open_page(browser, path)
    assert errors == []
    assert remote == []
    sizes = page.evaluate(SVG_SIZES)
    assert len(sizes) == n_svgs
    for width, height, shapes in sizes:
        assert width > 50 and height > 20 and shapes > 0
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    return page


def test_image_report_renders(browser: Browser, digits_scan: tuple[Findings, Dataset],
                              tmp_path: Path, artifacts: Path) -> None:
    findings, ds = digits_scan
    out = tmp_path / "report.html"
    write_report(findings, out, dataset=ds)
    # summary has none; attack patch 1, classes 1, projection 1, histograms 3, detectors 1
    page = check_page(browser, out, artifacts / "digits-report.png", n_svgs=7)
    page.locator("#attacks").screenshot(path=str(artifacts / "digits-attacks.png"))
    loaded = page.evaluate("() => Array.from(document.images).map(i => i.naturalWidth)")
    assert len(loaded) == 48 and min(loaded) == 8  # every thumbnail decoded
    # sorting: click "row" twice -> rows by descending row number
    table = page.locator("#flagged table")
    table.locator("th", has_text="row").first.click()
    table.locator("th", has_text="row").first.click()
    first = table.locator("tbody tr td").first.inner_text()
    assert int(first) == max(findings.flagged_indices())
    page.close()


def test_tabular_and_data_free_reports_render(browser: Browser,
                                              tabular_scan: tuple[Findings, Dataset],
                                              tmp_path: Path, artifacts: Path) -> None:
    findings, ds = tabular_scan
    with_data, without = tmp_path / "with.html", tmp_path / "without.html"
    write_report(findings, with_data, dataset=ds)
    write_report(findings, without)
    # classes 1, projection 1, histograms 2 (fused + outlier), detectors 1
    check_page(browser, with_data, artifacts / "wine-report.png", n_svgs=5).close()
    page = check_page(browser, without, artifacts / "wine-no-data.png", n_svgs=3)
    assert "made without the data" in page.locator("#summary").inner_text()
    page.close()
