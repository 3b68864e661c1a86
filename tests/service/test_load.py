"""A short version of benchmarks/service_load.py: a few concurrent clients against a
real server on loopback; no request fails, no upload is lost or corrupted."""

from __future__ import annotations

import asyncio

from benchmarks.service_load import check_stored, run_load, summary
from tests.service.conftest import World
from tests.service.server import serving


def test_concurrent_uploads_and_reads(sqlite_world: World) -> None:
    w = sqlite_world
    with serving(w.app) as base:
        tally = asyncio.run(run_load(base, w.tokens["contributor"], clients=6, seconds=3.0))
        check_stored(base, w.tokens["contributor"], w.service.settings.home, tally)
    result = summary(tally, 3.0)
    assert tally.errors == [] and result["errors"] == 0
    assert result["uploads"] >= 6 and result["kinds"]["upload"]["requests"] == result["uploads"]
    audits = [a for a in w.audits() if a.details.get("action") == "upload"]
    assert len(audits) == result["uploads"]  # every upload audited, once
    assert w.service.store.ledger.verify() == []
