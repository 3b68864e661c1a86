"""An append-only, hash-chained ledger of what happened to the data.

Every entry holds ``prev_hash`` (the ``entry_hash`` of the entry before it, 64 zeros
for the first) and ``entry_hash`` = SHA-256 of the canonical JSON of its other
fields (seq, kind, actor, created_at, inputs, outputs, details, prev_hash). Editing,
deleting, inserting or reordering entries breaks the chain, and :meth:`Ledger.verify`
names the entry. Stored in SQLite (default) or PostgreSQL (a URL), via SQLAlchemy 2.

Appends are serialised: SQLite takes the write lock first (``BEGIN IMMEDIATE``),
PostgreSQL a transaction-scoped advisory lock; each append is one transaction, so a
crash leaves either the whole entry or nothing. A writer that finds the lock taken
retries with jittered exponential backoff; only after ``timeout`` seconds (default
300) does it give up with :class:`LedgerLockedError`.

Signed checkpoints (:mod:`.checkpoint`) are kept in a second table,
``poisonguard_checkpoints``: Ed25519-signed (size, head hash) pairs, like a
transparency log's signed tree head, so that truncation and rewrites are caught.
Reading commands open a ledger with ``create=False``: a missing or foreign file is a
one-line :class:`LedgerError`, never a new empty ledger.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from poisonguard.errors import PoisonguardError, UsageError
from poisonguard.provenance.canonical import canonical_json
from poisonguard.provenance.chain import GENESIS, LedgerEntry, LedgerProblem, verify_chain
from poisonguard.provenance.checkpoint import Checkpoint, verify_checkpoints
from poisonguard.provenance.manifest import current_actor, now_iso
from poisonguard.provenance.trust import SignaturePolicy

__all__ = [
    "DEFAULT_PATH",
    "GENESIS",
    "LEDGER_ENV",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerLockedError",
    "LedgerProblem",
    "open_ledger",
    "record_event",
    "resolve_location",
]

LEDGER_ENV = "POISONGUARD_LEDGER"
DEFAULT_PATH = Path(".poisonguard") / "ledger.sqlite"
_LOCK_KEY = 0x706F69736F6E  # "poison": the PostgreSQL advisory lock id
_KIND = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")

_meta = sa.MetaData()
_entries = sa.Table(
    "poisonguard_ledger", _meta,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("outputs", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False, unique=True),
)
_checkpoints = sa.Table(
    "poisonguard_checkpoints", _meta,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("signature", sa.Text, nullable=False),
)


class LedgerError(PoisonguardError):
    """The ledger database cannot be used (unreachable, wrong schema, ...)."""


class LedgerLockedError(LedgerError):
    """Another writer held the ledger for longer than the timeout."""


def resolve_location(location: str | os.PathLike[str] | None = None, *,
                     create: bool = True) -> str:
    """A SQLAlchemy URL: ``location``, else ``$POISONGUARD_LEDGER``, else the default file.

    With ``create=False`` a SQLite file that does not exist is a :class:`LedgerError`.
    """
    loc = str(location) if location is not None else os.environ.get(LEDGER_ENV) or str(DEFAULT_PATH)
    if "://" in loc:
        for plain in ("postgresql://", "postgres://"):
            if loc.startswith(plain):
                return "postgresql+psycopg://" + loc[len(plain):]
        return loc
    path = Path(loc).expanduser().absolute()
    if not create:
        if not path.is_file():
            raise LedgerError(f"{path}: no ledger there (nothing was recorded, or a wrong "
                              "--ledger / $POISONGUARD_LEDGER)")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _loads(text: str, what: str, seq: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return {"unparseable": text, "field": what, "seq": seq}


def _locked(exc: sa.exc.DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "55P03" or "locked" in str(exc.orig).lower()


class Ledger:
    """A ledger at a SQLAlchemy URL or file path (see :func:`resolve_location`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> led = Ledger(pathlib.Path(tempfile.mkdtemp()) / "ledger.db")
    >>> led.append("scan", inputs=[{"path": "t.csv"}]).seq
    1
    >>> led.verify()
    []
    """

    def __init__(self, location: str | os.PathLike[str] | None = None, *,
                 timeout: float = 300.0, create: bool = True) -> None:
        self.url = resolve_location(location, create=create)
        self.timeout = float(timeout)
        self.create = create
        self._on_insert: Callable[[], None] | None = None  # test hook: crash mid-append
        try:
            self.engine: Engine = self._make_engine()
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise UsageError(f"ledger {self.display}: {exc}") from None
        self._ensure_schema()

    @property
    def display(self) -> str:
        """The URL without any password (safe to print)."""
        try:
            return sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return "<bad ledger URL>"

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def _make_engine(self) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(self.url, poolclass=NullPool,
                                    connect_args={"connect_timeout": max(1, int(self.timeout))})
        engine = sa.create_engine(self.url, poolclass=NullPool,
                                  connect_args={"timeout": min(self.timeout, 2.0)})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("poisonguard_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _write(self, work: Callable[[Connection], Any]) -> Any:
        """Run ``work`` in one serialised write transaction, retrying while locked."""
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        while True:
            try:
                with self.engine.connect() as conn:
                    conn.execution_options(poisonguard_write=True)
                    with conn.begin():
                        if not self.is_sqlite:
                            ms = max(1, int(self.timeout * 1000))
                            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
                            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                                         {"k": _LOCK_KEY})
                        return work(conn)
            except sa.exc.OperationalError as exc:
                if not _locked(exc):
                    raise LedgerError(f"ledger {self.display}: {exc.orig}") from None
                if time.monotonic() + delay > deadline:
                    raise LedgerLockedError(
                        f"ledger {self.display} is locked by another writer; gave up after "
                        f"{self.timeout:g} s; try again when it is free") from None
                time.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, 1.0)
            except sa.exc.DBAPIError as exc:
                raise LedgerError(f"ledger {self.display}: {exc.orig}") from None

    def _ensure_schema(self) -> None:
        try:
            inspector = sa.inspect(self.engine)
            if inspector.has_table(_entries.name):
                if not inspector.has_table(_checkpoints.name) and self.create:
                    self._write(lambda conn: _meta.create_all(conn, checkfirst=True))
                return
        except sa.exc.OperationalError as exc:
            if not _locked(exc):
                raise LedgerError(f"ledger {self.display}: cannot open ({exc.orig})") from None
        except sa.exc.DBAPIError as exc:
            raise LedgerError(f"ledger {self.display}: not a ledger database ({exc.orig})") \
                from None
        if not self.create:
            raise LedgerError(f"ledger {self.display}: not a poisonguard ledger (no "
                              f"{_entries.name} table)")
        self._write(lambda conn: _meta.create_all(conn, checkfirst=True))

    def append(self, kind: str, *, inputs: Iterable[Mapping[str, Any]] = (),
               outputs: Iterable[Mapping[str, Any]] = (),
               details: Mapping[str, Any] | None = None, actor: str | None = None) -> LedgerEntry:
        """Append one entry (one transaction) and return it."""
        if not _KIND.match(kind):
            raise UsageError(f"bad ledger entry kind {kind!r} (lower-case letters, digits, - _)")
        ins, outs, det = [dict(i) for i in inputs], [dict(o) for o in outputs], dict(details or {})
        try:
            canonical_json([ins, outs, det])
        except (TypeError, ValueError) as exc:
            raise UsageError(f"ledger entry is not JSON-serialisable: {exc}") from None
        who = actor or current_actor()

        def work(conn: Connection) -> LedgerEntry:
            last = conn.execute(sa.select(_entries.c.seq, _entries.c.entry_hash)
                                .order_by(_entries.c.seq.desc()).limit(1)).first()
            seq, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, str(last[1]))
            draft = LedgerEntry(seq, kind, who, now_iso(), ins, outs, det, prev, "")
            entry = LedgerEntry(**{**draft.content(), "entry_hash": draft.computed_hash()})
            row = {k: (canonical_json(v).decode() if k in ("inputs", "outputs", "details") else v)
                   for k, v in entry.to_dict().items()}
            conn.execute(_entries.insert().values(**row))
            if self._on_insert is not None:
                self._on_insert()
            return entry

        result: LedgerEntry = self._write(work)
        return result

    def entries(self) -> list[LedgerEntry]:
        """Every entry in ``seq`` order."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(_entries).order_by(_entries.c.seq)).all()
        except sa.exc.DBAPIError as exc:
            raise LedgerError(f"ledger {self.display}: {exc.orig}") from None
        return [LedgerEntry(int(r.seq), r.kind, r.actor, r.created_at,
                            _loads(r.inputs, "inputs", r.seq), _loads(r.outputs, "outputs", r.seq),
                            _loads(r.details, "details", r.seq), r.prev_hash, r.entry_hash)
                for r in rows]

    def head(self) -> LedgerEntry | None:
        entries = self.entries()
        return entries[-1] if entries else None

    def checkpoint(self, key: Ed25519PrivateKey) -> Checkpoint:
        """Sign the current head with ``key`` and keep the checkpoint in the ledger."""

        def work(conn: Connection) -> Checkpoint:
            last = conn.execute(sa.select(_entries.c.seq, _entries.c.entry_hash)
                                .order_by(_entries.c.seq.desc()).limit(1)).first()
            size, head = (0, GENESIS) if last is None else (int(last[0]), str(last[1]))
            cp = Checkpoint.sign(size, head, now_iso(), key)
            n = conn.execute(sa.select(sa.func.count()).select_from(_checkpoints)).scalar_one()
            conn.execute(_checkpoints.insert().values(
                id=int(n) + 1, body=canonical_json(cp.body).decode(),
                signature=canonical_json(cp.signature).decode()))
            return cp

        result: Checkpoint = self._write(work)
        return result

    def checkpoints(self) -> list[Checkpoint]:
        """The checkpoints kept in the ledger, oldest first."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(_checkpoints).order_by(_checkpoints.c.id)).all()
        except sa.exc.DBAPIError as exc:
            raise LedgerError(f"ledger {self.display}: {exc.orig}") from None
        out = []
        for r in rows:
            try:
                out.append(Checkpoint(json.loads(r.body), json.loads(r.signature)))
            except json.JSONDecodeError:
                out.append(Checkpoint({"size": 0, "head": "", "created_at": "?"}, {}))
        return out

    def verify(self, *, expected_head: str | None = None, policy: SignaturePolicy | None = None,
               extra: Iterable[Checkpoint] = ()) -> list[LedgerProblem]:
        """Every break in the chain, named by entry; empty when the chain is intact.

        With a ``policy`` that accepts a signer, every signed checkpoint (kept in the
        ledger, and ``extra`` ones read from files) must verify and match the chain.
        """
        extra = list(extra)
        entries = self.entries()
        problems = verify_chain(entries, expected_head=expected_head)
        if policy is not None and policy.configured:
            problems += verify_checkpoints(entries, [*self.checkpoints(), *extra], policy)
        elif extra:
            raise UsageError("checking a checkpoint needs the signer: --pubkey KEY (or "
                             "--trust-embedded-key)")
        return problems

    def checked_checkpoints(self, policy: SignaturePolicy | None,
                            extra: Iterable[Checkpoint] = ()) -> int:
        """How many checkpoints :meth:`verify` checks under ``policy``."""
        if policy is None or not policy.configured:
            return 0
        return len(self.checkpoints()) + len(list(extra))

    def close(self) -> None:
        self.engine.dispose()


def open_ledger(ledger: Ledger | str | os.PathLike[str] | None = None) -> Ledger:
    return ledger if isinstance(ledger, Ledger) else Ledger(ledger)


def record_event(kind: str, *, inputs: Iterable[Mapping[str, Any]] = (),
                 outputs: Iterable[Mapping[str, Any]] = (),
                 details: Mapping[str, Any] | None = None, actor: str | None = None,
                 ledger: Ledger | str | os.PathLike[str] | None = None) -> LedgerEntry:
    """Append an entry to ``ledger`` (default: ``$POISONGUARD_LEDGER`` or the local file).

    ``inputs`` and ``outputs`` are lists of JSON objects; for data files give
    ``{"path": ..., "root": dataset_root(ds)}`` so that lineage can follow them.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> led = Ledger(pathlib.Path(tempfile.mkdtemp()) / "ledger.db")
    >>> e = record_event("scan", inputs=[{"path": "t.csv"}], ledger=led)
    >>> e.seq, e.kind, e.inputs
    (1, 'scan', [{'path': 't.csv'}])
    """
    led = open_ledger(ledger)
    try:
        return led.append(kind, inputs=inputs, outputs=outputs, details=details, actor=actor)
    finally:
        if led is not ledger:
            led.close()
