"""The running service: settings, database, files, keys and the job runner, together.

Access rule: an admin sees every dataset; anyone else sees a dataset only through a
grant, and acts on it with the smaller of the grant and their global role.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from poisonguard.data import Dataset
from poisonguard.provenance.crypto_at_rest import load_data_key
from poisonguard.provenance.keys import PRIVATE_NAME, generate_keypair, load_private_key
from poisonguard.service.files import FileStore
from poisonguard.service.jobs import JobRunner
from poisonguard.service.roles import Role
from poisonguard.service.schema import datasets, grants, jobs, users
from poisonguard.service.settings import ServiceSettings
from poisonguard.service.store import Store
from poisonguard.service.users import Principal

__all__ = ["Service"]

log = logging.getLogger("poisonguard.service")


class Service:
    """Everything a request handler needs; one per application.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.service.users import add_user
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> svc = Service(ServiceSettings(home=home))
    >>> ana = Principal(user_id=add_user(svc.store, "ana", "viewer"), name="ana",
    ...                 role=Role.viewer, token_id="-")
    >>> svc.visible_datasets(ana), svc.files.encrypted  # no grant, no dataset
    ([], False)
    >>> sorted(p.name for p in home.iterdir() if not p.name.startswith("service.sqlite-"))
    ['files', 'keys', 'service.sqlite']
    >>> svc.close()
    """

    def __init__(self, settings: ServiceSettings | None = None, *, start_jobs: bool = True) -> None:
        from poisonguard.service.work import WORK

        self.settings = settings or ServiceSettings()
        home = self.settings.make_home()
        self.store = Store(self.settings.database())
        self.files = FileStore(home / "files", load_data_key(self.settings.data_key_file))
        self.signing_key = self._signing_key(home)
        self.runner = JobRunner(self, self.settings.job_workers, WORK)
        if start_jobs:
            self.runner.recover()

    def _signing_key(self, home: Path) -> Ed25519PrivateKey:
        if self.settings.signing_key_file is not None:
            return load_private_key(self.settings.signing_key_file)
        keys = home / "keys"
        if not (keys / PRIVATE_NAME).exists():
            generate_keypair(keys)
        return load_private_key(keys)

    def close(self) -> None:
        self.runner.shutdown()
        self.store.close()

    # --- lookups -------------------------------------------------------------------------

    def user_name(self, user_id: int) -> str:
        with self.store.read() as conn:
            return str(conn.execute(sa.select(users.c.name).where(users.c.id == user_id))
                       .scalar() or f"user-{user_id}")

    def dataset(self, dataset_id: str) -> dict[str, Any] | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.id == dataset_id)
                               ).mappings().first()
        if row is None:
            return None
        return {**row, "classes": json.loads(row["classes"])}

    def job(self, job_id: str) -> dict[str, Any] | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        if row is None:
            return None
        return {**row, "params": json.loads(row["params"]),
                "summary": json.loads(row["summary"]) if row["summary"] else None}

    def jobs_of(self, dataset_id: str, limit: int = 100) -> list[dict[str, Any]]:
        with self.store.read() as conn:
            rows = conn.execute(sa.select(jobs.c.id).where(jobs.c.dataset_id == dataset_id)
                                .order_by(jobs.c.created_at.desc()).limit(limit)).all()
        return [j for (jid,) in rows if (j := self.job(jid)) is not None]

    def role_on(self, who: Principal, dataset_id: str) -> Role | None:
        """The principal's role on a dataset, or None when they may not see it at all."""
        if who.role is Role.admin:
            return Role.admin if self.dataset(dataset_id) is not None else None
        with self.store.read() as conn:
            granted = conn.execute(sa.select(grants.c.role).where(
                grants.c.user_id == who.user_id, grants.c.dataset_id == dataset_id)).scalar()
        return None if granted is None else min(Role[granted], who.role)

    def visible_datasets(self, who: Principal) -> list[dict[str, Any]]:
        q = sa.select(datasets).order_by(datasets.c.created_at.desc())
        if who.role is not Role.admin:
            q = q.join(grants, sa.and_(grants.c.dataset_id == datasets.c.id,
                                       grants.c.user_id == who.user_id))
        with self.store.read() as conn:
            return [{**r, "classes": json.loads(r["classes"])}
                    for r in conn.execute(q).mappings()]

    def load(self, record: dict[str, Any]) -> Dataset:
        """The stored dataset, loaded by the library's strict loader."""
        stored = self.files.dataset_path(record["id"], record["suffix"])
        return self.files.load(stored, record["suffix"], label=record["label"],
                               id_column=record["id_column"], name=record["name"])
