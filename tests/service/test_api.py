"""The REST API end to end: upload, scan with progress, findings, row decisions, check,
snapshot and verify, the ledger; on SQLite and on PostgreSQL; encrypted at rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poisonguard.attack import run_attack
from poisonguard.data import save_dataset
from poisonguard.datasets import builtin_dataset
from poisonguard.provenance.crypto_at_rest import MAGIC, generate_data_key
from poisonguard.service import ServiceSettings
from poisonguard.service.work import MANIFEST
from tests.service.conftest import QUICK_DETECTORS, World


def test_scan_check_and_decisions(sqlite_world: World, poisoned_csv: Path,
                                  tmp_path: Path) -> None:
    w = sqlite_world
    ds = w.upload(poisoned_csv).json()
    assert ds["rows"] == 178 + 0 and ds["modality"] == "tabular" and len(ds["classes"]) == 3
    w.share(ds["id"], "viewer", "curator")
    r = w.client.post(f"/api/datasets/{ds['id']}/scans",
                      json={"detectors": QUICK_DETECTORS, "threads": 1},
                      headers=w.h("contributor"))
    assert r.status_code == 202 and r.json()["status"] in ("queued", "running")
    job = w.wait(r.json()["id"])
    assert job["status"] == "done", job
    assert job["summary"]["flagged"] > 0 and job["summary"]["detectors"] == QUICK_DETECTORS

    page = w.client.get(f"/api/jobs/{job['id']}/findings", headers=w.h("viewer")).json()
    assert page["total"] == job["summary"]["flagged"]
    flagged = [row["index"] for row in page["rows"]]
    attack = run_attack("flip", builtin_dataset("wine"), rate=0.05, seed=0)
    truth = set(attack.truth.poisoned.tolist())
    assert truth & set(flagged)  # the library's scan found some of the flipped rows

    row = flagged[0]
    url = f"/api/datasets/{ds['id']}/rows/{row}"
    assert w.client.post(f"{url}/quarantine", headers=w.h("viewer")).status_code == 403
    r = w.client.post(f"{url}/quarantine", json={"note": "flipped?"}, headers=w.h("curator"))
    assert r.status_code == 200 and r.json()["state"] == "quarantined" and r.json()["row_id"]
    assert w.client.post(f"{url}/release", headers=w.h("curator")).json()["state"] == "released"
    assert w.client.post(f"/api/datasets/{ds['id']}/rows/9999/approve",
                         headers=w.h("curator")).status_code == 422

    clean = tmp_path / "wine-clean.csv"
    save_dataset(builtin_dataset("wine"), clean)
    base = w.upload(clean).json()["id"]
    r = w.client.post(f"/api/datasets/{ds['id']}/checks", json={"baseline": base},
                      headers=w.h("contributor"))
    check = w.wait(r.json()["id"], "contributor")
    assert check["status"] == "done", check
    report = w.client.get(f"/api/jobs/{check['id']}/result", headers=w.h("contributor")).json()
    assert report["kind"] == "check" and report["passed"] is check["summary"]["passed"]

    timeline = w.client.get(f"/api/datasets/{ds['id']}/ledger", headers=w.h("viewer")).json()
    kinds = [(e["kind"], e["details"].get("action")) for e in timeline]
    assert ("scan", None) in kinds and ("check", None) in kinds
    assert ("audit", "quarantine") in kinds and ("audit", "release") in kinds
    quarantine = next(e for e in timeline if e["details"].get("action") == "quarantine")
    assert quarantine["actor"] == "curator" and quarantine["details"]["row"] == row
    assert quarantine["details"]["from"] and quarantine["created_at"]
    assert w.client.get("/api/ledger", headers=w.h("admin")).json()["intact"] is True


def test_backend_flow(world: World, poisoned_csv: Path) -> None:
    """Upload, grants, snapshot, verify, decisions and the ledger, on each backend."""
    w = world
    ds = w.upload(poisoned_csv).json()["id"]
    assert [d["id"] for d in w.client.get("/api/datasets",
                                          headers=w.h("contributor")).json()] == [ds]
    assert w.client.get("/api/datasets", headers=w.h("viewer")).json() == []
    w.share(ds, "viewer", "curator")
    snap = w.wait(w.client.post(f"/api/datasets/{ds}/snapshots", json={"source": "vendor"},
                                headers=w.h("contributor")).json()["id"])
    assert snap["status"] == "done" and snap["summary"]["rows"] == 178
    v = w.client.get(f"/api/datasets/{ds}/verify", params={"snapshot": snap["id"]},
                     headers=w.h("viewer")).json()
    assert v["identical"] is True and v["signature"].startswith("good")

    changed = poisoned_csv.read_text().splitlines()
    changed[5] = changed[5].replace(",", ",9", 1)
    other = poisoned_csv.parent / "wine-changed.csv"
    other.write_text("\n".join(changed) + "\n")
    ds2 = w.upload(other).json()["id"]
    w.share(ds2, "viewer")
    v = w.client.get(f"/api/datasets/{ds2}/verify", params={"snapshot": snap["id"]},
                     headers=w.h("viewer")).json()
    assert v["identical"] is False and [c["index"] for c in v["changes"]] == [4]

    r = w.client.post(f"/api/datasets/{ds}/rows/7/quarantine", headers=w.h("curator"))
    assert r.status_code == 200
    rows = w.client.get(f"/api/datasets/{ds}/rows", headers=w.h("viewer")).json()
    assert [(d["row_index"], d["state"]) for d in rows] == [(7, "quarantined")]
    ledger = w.client.get("/api/ledger", headers=w.h("admin")).json()
    assert ledger["intact"] and ledger["entries"][0]["details"]["action"] == "quarantine"
    assert {e["kind"] for e in ledger["entries"]} >= {"audit", "snapshot"}


def test_encrypted_at_rest(tmp_path: Path, poisoned_csv: Path) -> None:
    key = generate_data_key(tmp_path / "data.key")
    w = World(ServiceSettings(home=tmp_path / "home", data_key_file=key))
    try:
        ds = w.upload(poisoned_csv).json()
        assert ds["encrypted"] is True
        stored = list(w.service.files.datasets.iterdir())
        assert len(stored) == 1 and stored[0].read_bytes().startswith(MAGIC)
        assert poisoned_csv.read_bytes()[:40] not in stored[0].read_bytes()
        snap = w.wait(w.client.post(f"/api/datasets/{ds['id']}/snapshots", json={},
                                    headers=w.h("contributor")).json()["id"], "contributor")
        manifest = w.service.files.result_path(snap["id"], MANIFEST)
        assert manifest.read_bytes().startswith(MAGIC)
        v = w.client.get(f"/api/datasets/{ds['id']}/verify", params={"snapshot": snap["id"]},
                         headers=w.h("contributor")).json()
        assert v["identical"] is True
        assert list(w.service.files.tmp.iterdir()) == []  # no plaintext left behind
        header = w.client.get(f"/api/jobs/{snap['id']}/result", headers=w.h("contributor"))
        assert json.loads(header.text)["rows"] == 178
    finally:
        w.close()


def test_models_and_alerts(sqlite_world: World, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from poisonguard.monitor import raise_alert, register_model
    from poisonguard.provenance import save_model

    monkeypatch.delenv("POISONGUARD_WEBHOOK", raising=False)
    w = sqlite_world
    led = w.service.store.ledger
    model = save_model({"w": np.zeros(3, dtype=np.float32)}, tmp_path / "m.safetensors")
    register_model(model, name="digits", ledger=led)
    raise_alert("drift", "digits", "prediction drift on the golden set", model="digits",
                ledger=led)
    models = w.client.get("/api/models", headers=w.h("viewer")).json()
    alerts = w.client.get("/api/alerts", headers=w.h("viewer")).json()
    assert [m["version"] for m in models] == [1] and len(alerts) == 1
    w.client.cookies.clear()
    page = w.client.get("/monitor", headers=w.h("viewer")).text
    assert "digits" in page and "prediction drift on the golden set" in page
