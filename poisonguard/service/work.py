"""The body of each job kind: load the stored data, call the library, keep the results.

No detection logic lives here: a scan is :func:`poisonguard.scan.scan_dataset`, a
check is :func:`poisonguard.validate.check` against a profile of the baseline, a
snapshot is :func:`poisonguard.provenance.snapshot` of the stored file, signed with
the service key.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from poisonguard.errors import UsageError
from poisonguard.progress import Progress

if TYPE_CHECKING:
    from poisonguard.service.core import Service

__all__ = ["MANIFEST", "WORK", "render_scan_views"]

MANIFEST = "manifest.pgm"  # the snapshot job's result name


def _dataset(service: Service, dataset_id: str) -> tuple[dict[str, Any], Any]:
    record = service.dataset(dataset_id)
    if record is None:
        raise UsageError(f"dataset {dataset_id} no longer exists")
    return record, service.load(record)


def render_scan_views(findings: Any, dataset: Any) -> str:
    """The report's sections for the dashboard (charts as inline SVG, no scripts)."""
    from poisonguard.report import (
        attacks_view,
        build_context,
        classes_view,
        contributions_view,
        examples_view,
        histograms_view,
        project,
        projection_view,
        summary_view,
    )

    ctx = build_context(findings, dataset=dataset)
    views = [summary_view(ctx), attacks_view(ctx), classes_view(ctx),
             projection_view(ctx, project(ctx, umap=False)), histograms_view(ctx),
             contributions_view(ctx), examples_view(ctx)]
    return "".join(views)


def _actor(service: Service, job: dict[str, Any]) -> str:
    return service.user_name(job["created_by"])


def run_scan(service: Service, job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from poisonguard.scan import scan_dataset

    params = json.loads(job["params"])
    record, ds = _dataset(service, job["dataset_id"])
    findings, _, _ = scan_dataset(ds, detectors=params.get("detectors"),
                                  seed=int(params.get("seed", 0)),
                                  threads=int(params.get("threads") or
                                              service.settings.scan_threads),
                                  progress=progress)
    progress.update("drawing the charts", done=1, total=1)
    service.files.put_result(job["id"], "findings.json",
                             json.dumps(findings.to_dict()).encode("utf-8"))
    service.files.put_result(job["id"], "views.html",
                             render_scan_views(findings, ds).encode("utf-8"))
    s = findings.summary
    summary = {"rows": s["rows"], "flagged": s["flagged"], "by_class": s["by_class"],
               "suspected_attacks": s["suspected_attacks"], "detectors": list(findings.detectors)}
    service.store.ledger.append(
        "scan", actor=_actor(service, job),
        inputs=[{"dataset": record["id"], "name": record["name"], "sha256": record["sha256"]}],
        outputs=[{"job": job["id"], "kind": "findings"}],
        details={"via": "service", "dataset": record["id"], "rows": s["rows"],
                 "flagged": s["flagged"], "detectors": list(findings.detectors)})
    return summary


def run_check(service: Service, job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from poisonguard.validate import check, profile_data

    params = json.loads(job["params"])
    record, ds = _dataset(service, job["dataset_id"])
    base_record, base = _dataset(service, params["baseline"])
    profile = profile_data(base, progress=progress)
    report = check(profile, ds, progress=progress)
    out = report.to_dict()
    service.files.put_result(job["id"], "check.json", json.dumps(out).encode("utf-8"))
    summary = {"passed": report.passed, "failed": out["summary"]["failed"],
               "warnings": out["summary"]["warnings"], "baseline": base_record["id"],
               "blamed_rows": len(report.blamed_rows())}
    service.store.ledger.append(
        "check", actor=_actor(service, job),
        inputs=[{"dataset": record["id"], "sha256": record["sha256"]},
                {"baseline": base_record["id"], "sha256": base_record["sha256"]}],
        outputs=[{"job": job["id"], "kind": "check"}],
        details={"via": "service", "dataset": record["id"], **summary})
    return summary


def run_snapshot(service: Service, job: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from poisonguard.provenance import snapshot

    params = json.loads(job["params"])
    record = service.dataset(job["dataset_id"])
    if record is None:
        raise UsageError(f"dataset {job['dataset_id']} no longer exists")
    progress.update("hashing rows", done=0, total=1)
    out = service.files.result_path(job["id"], MANIFEST)
    stored = service.files.dataset_path(record["id"], record["suffix"])
    with service.files.plain_copy(stored, record["suffix"]) as plain:
        manifest, _ = snapshot(plain, out=out, source=str(params.get("source") or record["name"]),
                               key=service.signing_key, data_key=service.files.data_key,
                               record=False, label=record["label"],
                               id_column=record["id_column"])
    sig = manifest.signature
    summary = {"rows": manifest.rows, "root": manifest.root,
               "key_id": sig["key_id"] if sig else None}
    service.store.ledger.append(
        "snapshot", actor=_actor(service, job),
        inputs=[{"dataset": record["id"], "sha256": record["sha256"], "root": manifest.root}],
        outputs=[{"job": job["id"], "kind": "manifest", "root": manifest.root}],
        details={"via": "service", "dataset": record["id"], **summary,
                 "encrypted": service.files.encrypted})
    return summary


WORK = {"scan": run_scan, "check": run_check, "snapshot": run_snapshot}
