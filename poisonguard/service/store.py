"""The service database: one SQLAlchemy engine, short read and write transactions.

SQLite (the default) takes its write lock at the start of a write transaction
(``BEGIN IMMEDIATE``) and runs in WAL mode, so readers never wait for writers and
two writers never deadlock; PostgreSQL runs each transaction as it is. The
hash-chained ledger lives in the same database (:class:`~poisonguard.provenance.Ledger`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from poisonguard.errors import UsageError
from poisonguard.provenance.ledger import Ledger, resolve_location
from poisonguard.service.schema import metadata

__all__ = ["Store"]


class Store:
    """Tables of the service plus its ledger, at one database URL.

    Examples
    --------
    >>> import tempfile
    >>> from poisonguard.service.schema import users
    >>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/service.sqlite")
    >>> with store.write() as conn:
    ...     _ = conn.execute(users.insert().values(name="ana", role="viewer", created_at=0.0))
    >>> try:  # a write transaction is stored whole or not at all
    ...     with store.write() as conn:
    ...         _ = conn.execute(users.insert().values(name="bo", role="admin", created_at=0.0))
    ...         raise RuntimeError("failed half way")
    ... except RuntimeError:
    ...     pass
    >>> with store.read() as conn:
    ...     conn.execute(sa.select(users.c.name, users.c.role)).all()
    [('ana', 'viewer')]
    >>> store.is_sqlite, store.ledger.verify()  # the ledger lives in the same database
    (True, [])
    >>> store.close()
    """

    def __init__(self, url: str) -> None:
        self.url = resolve_location(url)
        try:
            self.engine = self._make_engine()
            metadata.create_all(self.engine, checkfirst=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise UsageError(f"database: {exc}") from None
        except sa.exc.DBAPIError as exc:
            raise UsageError(f"database: cannot open ({exc.orig})") from None
        self.ledger = Ledger(self.url, timeout=30.0)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def _make_engine(self) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(self.url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        engine = sa.create_engine(self.url, connect_args={"timeout": 30.0,
                                                          "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # transactions begin below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            write = conn.get_execution_options().get("pg_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: all of it is stored, or none of it."""
        with self.engine.connect() as conn:
            conn.execution_options(pg_write=True)
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.ledger.close()
        self.engine.dispose()
