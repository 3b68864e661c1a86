"""Service settings: pydantic-settings, every field overridable as ``POISONGUARD_<NAME>``.

With no setup at all the service keeps everything under ``.poisonguard/service``: a
SQLite database (users, datasets, jobs, the ledger), the uploaded files, the job
results and an Ed25519 signing key for snapshots.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServiceSettings"]


class ServiceSettings(BaseSettings):
    """Where the service stores things and the limits it enforces.

    Examples
    --------
    >>> s = ServiceSettings(home="/tmp/pg-demo", max_upload_mb=5)
    >>> s.database().startswith("sqlite:///")
    True
    """

    model_config = SettingsConfigDict(env_prefix="POISONGUARD_", extra="ignore")

    home: Path = Field(default=Path(".poisonguard/service"),
                       description="Folder for the database, uploads, results and keys.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL (postgresql://...); default: SQLite in home.")
    data_key_file: Path | None = Field(
        default=None, description="AES-256 key file: stored datasets and results are encrypted "
        "at rest (default: $POISONGUARD_SNAPSHOT_KEY when set).")
    signing_key_file: Path | None = Field(
        default=None, description="Ed25519 key signing snapshots; default: made in home/keys.")
    max_upload_mb: float = Field(default=200.0, gt=0,
                                 description="Largest accepted upload (MiB).")
    token_days: int = Field(default=90, ge=1,
                            description="Lifetime of a new API token (days).")
    session_minutes: int = Field(default=480, ge=1,
                                 description="Lifetime of a dashboard session.")
    job_workers: int = Field(default=1, ge=1, le=64,
                             description="Jobs running at the same time.")
    scan_threads: int = Field(default=1, ge=1, le=256,
                              description="BLAS threads of one scan.")
    secure_cookies: bool = Field(default=True,
                                 description="Mark cookies Secure (HTTPS or localhost).")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def make_home(self) -> Path:
        """The home folder, created private (0700) when it does not exist yet."""
        home = Path(self.home).expanduser().absolute()
        if not home.exists():
            home.mkdir(parents=True, mode=0o700)
        return home

    def database(self) -> str:
        """The database URL: the configured one, else SQLite in ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'service.sqlite').expanduser().absolute()}"
