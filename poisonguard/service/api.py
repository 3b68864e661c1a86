"""The REST API under ``/api``: datasets, jobs, findings, row decisions, verify, ledger.

Every route names its least role with ``Depends(Need(...))``; the tests walk the
route table and check that each one refuses a caller without a token and a caller
one role short.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from poisonguard.service import records
from poisonguard.service.auth import Need, service_of
from poisonguard.service.jobs import new_job
from poisonguard.service.ledger_view import dataset_entries, monitor_items
from poisonguard.service.models import (
    ID_PATTERN,
    CheckIn,
    DatasetOut,
    DecisionIn,
    JobOut,
    ScanIn,
    SnapshotIn,
)
from poisonguard.service.roles import Role
from poisonguard.service.uploads import UploadRefused, receive_body
from poisonguard.service.users import Principal

__all__ = ["router"]

router = APIRouter(prefix="/api")

DatasetId = Annotated[str, Path(pattern=ID_PATTERN)]
JobId = Annotated[str, Path(pattern=ID_PATTERN)]
_RAW_BODY = {"requestBody": {"required": True, "content": {
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


def declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness (no authentication)."""
    return {"status": "ok"}


@router.get("/me")
async def me(who: Principal = Depends(Need(Role.viewer))) -> dict[str, Any]:
    return {"name": who.name, "role": who.role.name, "token_id": who.token_id}


@router.get("/datasets", response_model=list[DatasetOut])
async def list_datasets(request: Request,
                        who: Principal = Depends(Need(Role.viewer))) -> list[dict[str, Any]]:
    return await run_in_threadpool(service_of(request).visible_datasets, who)


@router.post("/datasets", status_code=201, response_model=DatasetOut, openapi_extra=_RAW_BODY)
async def upload_dataset(
    request: Request,
    name: Annotated[str, Query(max_length=128, description="File name, e.g. train.csv")],
    label: Annotated[str, Query(max_length=160)] = "label",
    id_column: Annotated[str | None, Query(max_length=160)] = None,
    who: Principal = Depends(Need(Role.contributor)),
) -> dict[str, Any]:
    """Upload a CSV, Parquet, NPZ or JSONL file as the raw request body (streamed)."""
    svc = service_of(request)
    request.state.audit = {"action": "upload", "name": name[:128]}
    try:
        got = await receive_body(request.stream(), name, tmp_dir=svc.files.tmp,
                                 limit=svc.settings.max_upload_bytes,
                                 declared=declared_length(request))
        record = await run_in_threadpool(records.ingest, svc, got, who, label=label,
                                         id_column=id_column)
    except UploadRefused as exc:
        request.state.refusal = exc.message
        raise HTTPException(exc.status, exc.message) from None
    request.state.audit.update(dataset=record["id"], sha256=record["sha256"], size=record["size"])
    return record


async def _dataset(request: Request, dataset_id: str) -> dict[str, Any]:
    record = await run_in_threadpool(service_of(request).dataset, dataset_id)
    if record is None:
        raise HTTPException(404, "no such dataset")
    return record


async def _job(request: Request, job_id: str) -> dict[str, Any]:
    job = await run_in_threadpool(service_of(request).job, job_id)
    if job is None:
        raise HTTPException(404, "no such job")
    return job


@router.get("/datasets/{dataset_id}", response_model=DatasetOut)
async def get_dataset(request: Request, dataset_id: DatasetId,
                      _: Principal = Depends(Need(Role.viewer, scope="dataset"))
                      ) -> dict[str, Any]:
    return await _dataset(request, dataset_id)


@router.get("/datasets/{dataset_id}/jobs", response_model=list[JobOut])
async def list_jobs(request: Request, dataset_id: DatasetId,
                    _: Principal = Depends(Need(Role.viewer, scope="dataset"))
                    ) -> list[dict[str, Any]]:
    return await run_in_threadpool(service_of(request).jobs_of, dataset_id)


async def _start(request: Request, kind: str, dataset_id: str, params: dict[str, Any],
                 who: Principal) -> dict[str, Any]:
    await _dataset(request, dataset_id)
    svc = service_of(request)
    job_id = await run_in_threadpool(new_job, svc, kind, dataset_id, params, who.user_id)
    request.state.audit = {"action": f"start {kind}", "job": job_id}
    return await _job(request, job_id)


@router.post("/datasets/{dataset_id}/scans", status_code=202, response_model=JobOut)
async def start_scan(request: Request, dataset_id: DatasetId, body: ScanIn = Body(ScanIn()),
                     who: Principal = Depends(Need(Role.contributor, scope="dataset"))
                     ) -> dict[str, Any]:
    """Start a scan (a background job); poll ``/api/jobs/{id}`` for its progress."""
    from poisonguard.detect import available_detectors

    unknown = sorted(set(body.detectors or ()) - set(available_detectors()))
    if unknown:
        raise HTTPException(422, f"unknown detector {unknown[0]!r}")
    return await _start(request, "scan", dataset_id, body.model_dump(), who)


@router.post("/datasets/{dataset_id}/checks", status_code=202, response_model=JobOut)
async def start_check(request: Request, dataset_id: DatasetId, body: CheckIn,
                      who: Principal = Depends(Need(Role.contributor, scope="dataset"))
                      ) -> dict[str, Any]:
    """Check this dataset against a trusted baseline dataset (a background job)."""
    svc = service_of(request)
    if await run_in_threadpool(svc.role_on, who, body.baseline) is None:
        raise HTTPException(404, "no such baseline dataset")
    return await _start(request, "check", dataset_id, body.model_dump(), who)


@router.post("/datasets/{dataset_id}/snapshots", status_code=202, response_model=JobOut)
async def start_snapshot(request: Request, dataset_id: DatasetId,
                         body: SnapshotIn = Body(SnapshotIn()),
                         who: Principal = Depends(Need(Role.contributor, scope="dataset"))
                         ) -> dict[str, Any]:
    """Sign a manifest of every row (a background job)."""
    return await _start(request, "snapshot", dataset_id, body.model_dump(), who)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(request: Request, job_id: JobId,
                  _: Principal = Depends(Need(Role.viewer, scope="job"))) -> dict[str, Any]:
    return await _job(request, job_id)


@router.get("/jobs/{job_id}/findings")
async def get_findings(request: Request, job_id: JobId,
                       flagged: bool = True, offset: Annotated[int, Query(ge=0)] = 0,
                       limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
                       _: Principal = Depends(Need(Role.viewer, scope="job"))
                       ) -> dict[str, Any]:
    """A scan's findings: the header and a page of rows (flagged rows only by default)."""
    job = await _job(request, job_id)
    if job["kind"] != "scan" or job["status"] != "done":
        raise HTTPException(409, "not a finished scan")
    findings = await run_in_threadpool(records.read_findings, service_of(request), job_id)
    rows = [r for r in findings.rows if r.flagged or not flagged]
    return {**findings.to_dict(with_rows=False), "total": len(rows),
            "rows": [r.to_dict() for r in rows[offset:offset + limit]]}


@router.get("/jobs/{job_id}/result")
async def get_result(request: Request, job_id: JobId,
                     _: Principal = Depends(Need(Role.viewer, scope="job"))) -> dict[str, Any]:
    """A check's report, a snapshot's manifest header, or a scan's findings header."""
    import json

    job = await _job(request, job_id)
    if job["status"] != "done":
        raise HTTPException(409, f"the job is {job['status']}")
    files = service_of(request).files
    if job["kind"] == "check":
        out: dict[str, Any] = json.loads(files.get_result(job_id, "check.json"))
        return out
    if job["kind"] == "snapshot":
        from poisonguard.provenance import read_manifest
        from poisonguard.service.work import MANIFEST

        m = read_manifest(files.result_path(job_id, MANIFEST), data_key=files.data_key)
        return dict(m.header)
    return records.read_findings(service_of(request), job_id).to_dict(with_rows=False)


@router.get("/datasets/{dataset_id}/rows")
async def get_decisions(request: Request, dataset_id: DatasetId,
                        _: Principal = Depends(Need(Role.viewer, scope="dataset"))
                        ) -> list[dict[str, Any]]:
    """Every row decision (approved, quarantined, released) of the dataset."""
    found = await run_in_threadpool(records.row_decisions, service_of(request), dataset_id)
    return list(found.values())


@router.post("/datasets/{dataset_id}/rows/{row}/{decision}")
async def decide_row(request: Request, dataset_id: DatasetId,
                     row: Annotated[int, Path(ge=0, le=2**31 - 1)],
                     decision: Annotated[str, Path(pattern="^(approve|quarantine|release)$")],
                     body: DecisionIn = Body(DecisionIn()),
                     who: Principal = Depends(Need(Role.curator, scope="dataset"))
                     ) -> dict[str, Any]:
    """Approve, quarantine or release one row (its 0-based index in the uploaded file)."""
    record = await _dataset(request, dataset_id)
    request.state.audit = {"action": decision, "row": row}
    return await run_in_threadpool(records.decide, service_of(request), record, row, decision,
                                   who, body.note)


@router.get("/datasets/{dataset_id}/verify")
async def verify_dataset(request: Request, dataset_id: DatasetId,
                         snapshot: Annotated[str, Query(pattern=ID_PATTERN)],
                         _: Principal = Depends(Need(Role.viewer, scope="dataset"))
                         ) -> dict[str, Any]:
    """Compare this dataset with a snapshot (of it or of another granted dataset)."""
    svc = service_of(request)
    record = await _dataset(request, dataset_id)
    job = await run_in_threadpool(svc.job, snapshot)
    who: Principal = request.state.principal
    if job is None or await run_in_threadpool(svc.role_on, who, job["dataset_id"]) is None:
        raise HTTPException(404, "no such snapshot")
    return await run_in_threadpool(records.verify, svc, record, job)


@router.get("/datasets/{dataset_id}/ledger")
async def dataset_ledger(request: Request, dataset_id: DatasetId,
                         _: Principal = Depends(Need(Role.viewer, scope="dataset"))
                         ) -> list[dict[str, Any]]:
    """The ledger entries about this dataset, oldest first."""
    return await run_in_threadpool(dataset_entries, service_of(request), dataset_id)


@router.get("/models")
async def models(request: Request, _: Principal = Depends(Need(Role.viewer))
                 ) -> list[dict[str, Any]]:
    """The model registry (from :mod:`poisonguard.monitor` when installed)."""
    return await run_in_threadpool(monitor_items, service_of(request), "models")


@router.get("/alerts")
async def alerts(request: Request, _: Principal = Depends(Need(Role.viewer))
                 ) -> list[dict[str, Any]]:
    """Monitoring alerts (from :mod:`poisonguard.monitor` when installed)."""
    return await run_in_threadpool(monitor_items, service_of(request), "alerts")
