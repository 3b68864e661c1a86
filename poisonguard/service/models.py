"""Request and response bodies of the REST API (pydantic; they make the OpenAPI spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CheckIn", "DatasetOut", "DecisionIn", "GrantIn", "JobOut", "ScanIn", "SnapshotIn",
           "TokenIn", "TokenOut", "UserIn"]

ID_PATTERN = r"^[0-9a-f]{16}$"
RoleName = Literal["viewer", "contributor", "curator", "admin"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScanIn(_In):
    detectors: list[str] | None = Field(default=None, max_length=32,
                                        description="Detector names (default: the defaults).")
    threads: int | None = Field(default=None, ge=1, le=64,
                                description="BLAS threads of the scan.")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


class CheckIn(_In):
    baseline: str = Field(pattern=ID_PATTERN, description="Trusted dataset's id.")


class SnapshotIn(_In):
    source: str = Field(default="", max_length=200, description="Where the data came from.")


class DecisionIn(_In):
    note: str = Field(default="", max_length=500)


class UserIn(_In):
    name: str = Field(pattern=r"^[a-z][a-z0-9._-]{0,63}$")
    role: RoleName


class TokenIn(_In):
    days: float = Field(default=90.0, gt=0, le=3650)


class GrantIn(_In):
    role: RoleName


class TokenOut(BaseModel):
    token_id: str
    token: str = Field(description="Shown once; only its salted hash is stored.")


class DatasetOut(BaseModel):
    id: str
    name: str
    suffix: str
    label: str
    id_column: str | None
    size: int
    sha256: str
    encrypted: bool
    rows: int
    modality: str
    classes: list[str]
    owner_id: int
    created_at: float


class JobOut(BaseModel):
    id: str
    kind: str
    dataset_id: str
    params: dict[str, Any]
    status: Literal["queued", "running", "done", "failed"]
    stage: str
    done: int
    total: int
    error: str | None
    summary: dict[str, Any] | None
    created_by: int
    created_at: float
    finished_at: float | None
