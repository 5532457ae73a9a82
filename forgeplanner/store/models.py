"""ORM tables for user data. Only the repositories (forgeplanner.store.repos) touch these
classes; everything outside the store sees plain records and domain objects.

JSON documents (a ModelSpec, a plan, a fingerprint, an estimate) are stored as SQLAlchemy
`JSON` so any backend a `FORGEPLANNER_DB` URL names can hold them; the columns we filter or
sort on (ids, fingerprint key, dates, status) are real columns with indexes.

Times are stored as naive UTC (SQLite has no time zone type) and turned back into aware UTC
datetimes at the repository boundary.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so Alembic batch migrations on SQLite can find them later.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UserMachine(Base):
    """A machine the user owns or plans around (a catalog config, or their own description)."""

    __tablename__ = "user_machines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    config_id: Mapped[str | None] = mapped_column(String(120), index=True)
    chip_id: Mapped[str | None] = mapped_column(String(80))
    memory_gb: Mapped[int | None] = mapped_column(Integer)
    fingerprint_key: Mapped[str | None] = mapped_column(String(64), index=True)
    fingerprint: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)


class UserModel(Base):
    """A model the user added or imported: a full ModelSpec as JSON plus where it came from."""

    __tablename__ = "user_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    origin: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class PriceObservation(Base):
    """One price seen somewhere: for a catalog configuration or a free-text listing title."""

    __tablename__ = "price_observations"
    __table_args__ = (
        CheckConstraint("config_id IS NOT NULL OR title IS NOT NULL", name="config_or_title"),
        CheckConstraint("price >= 0", name="price_not_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    config_id: Mapped[str | None] = mapped_column(String(120), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    price: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(3))
    observed_on: Mapped[date] = mapped_column(Date, index=True)
    condition: Mapped[str] = mapped_column(String(40))  # "new" | "used" | "refurbished" ...
    source: Mapped[str] = mapped_column(Text)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Plan(Base):
    """A saved build plan: every save is a new version of the same name."""

    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_plans_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class BenchRun(Base):
    """One benchmark run: what ran where, the estimate made before it, what was measured."""

    __tablename__ = "bench_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    runner: Mapped[str] = mapped_column(String(40), index=True)  # builtin|llama.cpp|ollama|mlx
    status: Mapped[str] = mapped_column(String(20), index=True)  # running|ok|failed|cancelled
    fingerprint_key: Mapped[str] = mapped_column(String(64), index=True)
    fingerprint: Mapped[dict[str, Any]] = mapped_column(JSON)
    tool_versions: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # model, quant, p, n, depth, reps ...
    model_ref: Mapped[str | None] = mapped_column(String(400))
    started_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    estimate: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    measured: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_pct: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    raw_output: Mapped[str | None] = mapped_column(Text)
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    pid: Mapped[int | None] = mapped_column(Integer)
    hostname: Mapped[str | None] = mapped_column(String(255))
    # the machine's load during the run (forgeplanner.measurement.load; the full block is in
    # measured["load"]): quiet | noisy | accepted | not judged; NULL = not recorded
    load_verdict: Mapped[str | None] = mapped_column(String(16), index=True)
    other_cpu_share: Mapped[float | None] = mapped_column(Float)


class Calibration(Base):
    """Constants fitted from the user's runs on one machine (by fingerprint)."""

    __tablename__ = "calibrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint_key: Mapped[str] = mapped_column(String(64), index=True)
    fingerprint: Mapped[dict[str, Any]] = mapped_column(JSON)
    runtime: Mapped[str] = mapped_column(String(40))
    bandwidth_bytes_per_s: Mapped[float | None] = mapped_column(Float)
    compute_flops: Mapped[float | None] = mapped_column(Float)
    per_token_s: Mapped[float | None] = mapped_column(Float)
    run_ids: Mapped[list[Any]] = mapped_column(JSON)
    error_before: Mapped[dict[str, Any]] = mapped_column(JSON)
    error_after: Mapped[dict[str, Any]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class EvidenceRecord(Base):
    """A piece of evidence for a plan: a lab record, a benchmark summary, a note."""

    __tablename__ = "evidence_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)  # "lab" | "bench" | "note"
    ref: Mapped[str | None] = mapped_column(String(80))  # "L-001", ...
    title: Mapped[str] = mapped_column(Text)
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("plans.id", ondelete="SET NULL"), index=True
    )
    run_ids: Mapped[list[Any]] = mapped_column(JSON)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint_key: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
