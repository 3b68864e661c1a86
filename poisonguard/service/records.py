"""Dataset records and row decisions: what an upload, a quarantine or a verify does.

An upload becomes a dataset only after the library's strict loader accepted it; a
file it refuses is deleted and the one-line reason (file name and row) goes back.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from poisonguard.errors import DataError, UsageError
from poisonguard.findings import Findings
from poisonguard.service.roles import Role
from poisonguard.service.schema import datasets, decisions, grants
from poisonguard.service.uploads import Received, UploadRefused, check_name
from poisonguard.service.users import Principal

if TYPE_CHECKING:
    from poisonguard.service.core import Service

__all__ = ["DECISIONS", "decide", "ingest", "latest_findings", "row_decisions", "verify"]

DECISIONS = {"approve": "approved", "quarantine": "quarantined", "release": "released"}
_COLUMN_MAX = 160


def _column(value: str | None, what: str) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > _COLUMN_MAX or any(ord(c) < 32 for c in value):
        raise UploadRefused(422, f"bad {what} column name")
    return value


def ingest(service: Service, upload: Received, who: Principal, *, label: str = "label",
           id_column: str | None = None) -> dict[str, Any]:
    """Load the received file strictly, keep it (encrypted when configured), record it.

    The uploader is granted their own role on the new dataset. On any refusal the
    upload is deleted and :class:`UploadRefused` says why.
    """
    try:
        suffix = check_name(upload.name)
        label_col = _column(label, "label") or "label"
        id_col = _column(id_column, "id")
        try:
            from poisonguard.datasets import open_dataset

            ds = open_dataset(upload.path, label=label_col, id_column=id_col)
        except DataError as exc:
            row = f": row {exc.row}" if exc.row is not None else ""
            message = exc.message.replace(str(upload.path), upload.name)  # no server paths
            raise UploadRefused(422, f"{upload.name}{row}: {message}") from None
        except (OSError, ValueError, UnicodeDecodeError):
            raise UploadRefused(422, f"{upload.name}: cannot be read as "
                                     f"{suffix.lstrip('.')}") from None
        dataset_id = secrets.token_hex(8)
        service.files.keep_dataset(upload.path, dataset_id, suffix)
    except BaseException:
        upload.discard()
        raise
    record = {"id": dataset_id, "name": upload.name, "suffix": suffix, "label": label_col,
              "id_column": id_col, "size": upload.size, "sha256": upload.sha256,
              "encrypted": service.files.encrypted, "rows": len(ds),
              "modality": ds.modality, "classes": json.dumps([str(c) for c in ds.classes]),
              "owner_id": who.user_id, "created_at": time.time()}
    try:
        with service.store.write() as conn:
            conn.execute(datasets.insert().values(**record))
            if who.role is not Role.admin:
                conn.execute(grants.insert().values(user_id=who.user_id, dataset_id=dataset_id,
                                                    role=who.role.name))
    except BaseException:
        service.files.drop_dataset(dataset_id, suffix)
        raise
    return {**record, "classes": [str(c) for c in ds.classes]}


def latest_findings(service: Service, dataset_id: str) -> tuple[str, Findings] | None:
    """The findings of the dataset's newest finished scan, with its job id."""
    for job in service.jobs_of(dataset_id):
        if job["kind"] == "scan" and job["status"] == "done":
            return job["id"], read_findings(service, job["id"])
    return None


def read_findings(service: Service, job_id: str) -> Findings:
    data = json.loads(service.files.get_result(job_id, "findings.json"))
    return Findings.from_dict(data, path=f"job {job_id}")


def decide(service: Service, dataset: dict[str, Any], row: int, decision: str, who: Principal,
           note: str = "") -> dict[str, Any]:
    """Approve, quarantine or release one row (0-based index into the uploaded file)."""
    if decision not in DECISIONS:
        raise UsageError(f"unknown decision {decision!r}")
    if not 0 <= row < int(dataset["rows"]):
        raise UsageError(f"row {row} is outside the dataset (0..{int(dataset['rows']) - 1})")
    found = latest_findings(service, dataset["id"])
    row_id = str(found[1].rows[row].id) if found and row < len(found[1].rows) else ""
    values = {"dataset_id": dataset["id"], "row_index": row, "row_id": row_id,
              "state": DECISIONS[decision], "actor": who.name, "at": time.time(),
              "note": note[:500]}
    with service.store.write() as conn:
        conn.execute(decisions.delete().where(decisions.c.dataset_id == dataset["id"],
                                              decisions.c.row_index == row))
        conn.execute(decisions.insert().values(**values))
    return values


def row_decisions(service: Service, dataset_id: str) -> dict[int, dict[str, Any]]:
    with service.store.read() as conn:
        rows = conn.execute(sa.select(decisions).where(decisions.c.dataset_id == dataset_id)
                            .order_by(decisions.c.row_index)).mappings().all()
    return {int(r["row_index"]): dict(r) for r in rows}


def verify(service: Service, dataset: dict[str, Any], snapshot_job: dict[str, Any]
           ) -> dict[str, Any]:
    """Compare the stored file with a snapshot's manifest, signed by the service's key."""
    from poisonguard.provenance import SignaturePolicy, read_manifest, verify_file
    from poisonguard.service.work import MANIFEST

    if snapshot_job["kind"] != "snapshot" or snapshot_job["status"] != "done":
        raise UsageError(f"job {snapshot_job['id']} is not a finished snapshot")
    files = service.files
    manifest = read_manifest(files.result_path(snapshot_job["id"], MANIFEST),
                             data_key=files.data_key)
    policy = SignaturePolicy(pinned=service.signing_key.public_key())
    stored = files.dataset_path(dataset["id"], dataset["suffix"])
    with files.plain_copy(stored, dataset["suffix"]) as plain:
        result = verify_file(plain, manifest, policy=policy, key=service.signing_key)
    out = result.to_dict()  # a bad signature raised IntegrityError above
    return {**out, "changes": out["changes"][:1000], "n_changes": len(out["changes"]),
            "snapshot": snapshot_job["id"]}
