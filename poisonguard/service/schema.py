"""The service's tables (SQLAlchemy Core). The ledger keeps its own table beside them."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["datasets", "decisions", "grants", "jobs", "metadata", "sessions", "tokens", "users"]

metadata = sa.MetaData()

users = sa.Table(
    "pg_users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

tokens = sa.Table(
    "pg_tokens", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("pg_users.id"), nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

sessions = sa.Table(
    "pg_sessions", metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("token_id", sa.String(32), sa.ForeignKey("pg_tokens.id"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

datasets = sa.Table(
    "pg_datasets", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(160), nullable=False),
    sa.Column("suffix", sa.String(16), nullable=False),
    sa.Column("label", sa.String(160), nullable=False),
    sa.Column("id_column", sa.String(160), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("encrypted", sa.Boolean, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("modality", sa.String(16), nullable=False),
    sa.Column("classes", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Integer, sa.ForeignKey("pg_users.id"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

grants = sa.Table(
    "pg_grants", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("pg_users.id"), primary_key=True),
    sa.Column("dataset_id", sa.String(32), sa.ForeignKey("pg_datasets.id"), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
)

jobs = sa.Table(
    "pg_jobs", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("dataset_id", sa.String(32), sa.ForeignKey("pg_datasets.id"), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("stage", sa.String(200), nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("summary", sa.Text, nullable=True),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("pg_users.id"), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
)

decisions = sa.Table(
    "pg_decisions", metadata,
    sa.Column("dataset_id", sa.String(32), sa.ForeignKey("pg_datasets.id"), primary_key=True),
    sa.Column("row_index", sa.Integer, primary_key=True),
    sa.Column("row_id", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("note", sa.String(500), nullable=False),
)
