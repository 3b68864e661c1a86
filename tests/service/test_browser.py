"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against a
real server on loopback: a curator uploads a poisoned dataset, scans it, watches the
progress, sees the flagged rows and the plots, quarantines a row and finds the audit
entry; a viewer sees no quarantine button and the API refuses them (403).

Needs ``.ci/install-browser.sh``; screenshots land in test-artifacts/service/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from poisonguard.service.users import grant
from tests.report.test_browser import ARGS, CHROMIUM
from tests.service.conftest import World
from tests.service.server import serving

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "service"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def log_in(browser: Browser, base: str, token: str) -> tuple[Page, list[str]]:
    page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith((base, "data:"))
            else errors.append(f"remote request {r.url}"))
    page.goto(f"{base}/")
    assert page.url == f"{base}/login"
    page.fill("input[name=token]", token)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base}/")
    return page, errors


def test_curator_and_viewer_in_the_dashboard(browser: Browser, sqlite_world: World,
                                             poisoned_csv: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    w = sqlite_world
    with serving(w.app) as base:
        page, errors = log_in(browser, base, w.tokens["curator"])
        cookie = next(c for c in page.context.cookies() if c["name"] == "pg_session")
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"

        page.set_input_files("#upload input[type=file]", str(poisoned_csv))
        page.click("#upload button")
        page.wait_for_selector("#role")
        dataset_url = page.url
        dataset_id = dataset_url.rsplit("/", 1)[1]
        page.fill("#scan-form input[name=detectors]", "label,knn")
        page.click("#scan-form button")
        page.wait_for_selector("#job-status")
        # one read of one document (the page reloads itself every second while running)
        status, bars, stage = page.evaluate(
            "() => [document.querySelector('#job-status').textContent,"
            " document.querySelectorAll('progress').length,"
            " (document.querySelector('#progress') || {}).textContent]")
        assert status in ("queued", "running")  # the scan takes seconds
        assert bars == 1 and stage
        page.screenshot(path=str(ARTIFACTS / "progress.png"))
        page.wait_for_selector("#job-status.status-done", timeout=180_000)

        rows = page.locator("#flagged-rows tbody tr")
        n_flagged = rows.count()
        assert n_flagged > 0
        assert page.locator("#report svg").count() >= 4  # classes, projection, histograms
        for width in page.evaluate("() => Array.from(document.querySelectorAll('#report svg'))"
                                   ".map(s => s.getBoundingClientRect().width)"):
            assert width > 50
        page.screenshot(path=str(ARTIFACTS / "scan.png"), full_page=True)

        row = rows.first.get_attribute("data-row")
        rows.first.locator("button.quarantine").click()
        page.wait_for_selector(f"tr[data-row='{row}'] td.state:has-text('quarantined')")
        page.goto(dataset_url)
        entry = page.locator("#timeline tr.entry-audit", has_text="quarantine").first
        assert "curator" in entry.inner_text() and f"row {row}" in entry.inner_text()
        page.screenshot(path=str(ARTIFACTS / "timeline.png"), full_page=True)
        job_url = page.locator("#jobs a").first.get_attribute("href")
        assert errors == []

        grant(w.service.store, "viewer", dataset_id, "viewer")
        viewer, errors = log_in(browser, base, w.tokens["viewer"])
        viewer.goto(f"{base}{job_url}")
        assert viewer.locator("#flagged-rows tbody tr").count() == n_flagged
        assert viewer.locator("button.quarantine").count() == 0
        assert viewer.locator("#upload").count() == 0
        viewer.screenshot(path=str(ARTIFACTS / "viewer.png"), full_page=True)
        refused = viewer.request.post(
            f"{base}/api/datasets/{dataset_id}/rows/{row}/quarantine",
            headers={"Authorization": f"Bearer {w.tokens['viewer']}"})
        assert refused.status == 403
        assert errors == []
    last = w.audits()[-1]
    assert last.actor == "viewer" and last.details["outcome"] == "refused"
