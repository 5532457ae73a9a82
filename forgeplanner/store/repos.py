"""Repositories: the only code that reads or writes ORM rows. Each takes an open Session
(`with store.session() as s: PriceRepo(s).add(...)`) and returns plain frozen records or domain
objects, never ORM instances, so nothing outside the store can lazy-load after the session.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from forgeplanner.domain.model import ModelSpec
from forgeplanner.errors import NotFoundError
from forgeplanner.store import models as m
from forgeplanner.store.codec import model_from_json, model_to_json

RUN_STATUSES = ("running", "ok", "failed", "cancelled", "interrupted")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _to_db(ts: datetime | None) -> datetime | None:
    """Aware -> naive UTC for storage."""
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def _from_db(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.replace(tzinfo=UTC)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint_key(fingerprint: dict[str, Any]) -> str:
    """A fingerprint's identity: its own `key` if it carries one (forgeplanner.bench
    .fingerprint computes it from the stable hardware fields), else a hash of all of it."""
    key = fingerprint.get("key")
    if isinstance(key, str) and key:
        return key
    return hashlib.sha256(canonical_json(fingerprint).encode()).hexdigest()[:32]


# ---------------------------------------------------------------- machines


@dataclass(frozen=True, slots=True)
class MachineRecord:
    id: int
    name: str
    config_id: str | None
    chip_id: str | None
    memory_gb: int | None
    fingerprint_key: str | None
    fingerprint: dict[str, Any] | None
    notes: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "config_id": self.config_id,
            "chip_id": self.chip_id,
            "memory_gb": self.memory_gb,
            "fingerprint_key": self.fingerprint_key,
            "notes": self.notes,
            "created_at": _iso(self.created_at),
        }


class MachineRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    @staticmethod
    def _rec(row: m.UserMachine) -> MachineRecord:
        return MachineRecord(
            id=row.id,
            name=row.name,
            config_id=row.config_id,
            chip_id=row.chip_id,
            memory_gb=row.memory_gb,
            fingerprint_key=row.fingerprint_key,
            fingerprint=row.fingerprint,
            notes=row.notes,
            created_at=_from_db(row.created_at),  # type: ignore[arg-type]
        )

    def add(
        self,
        name: str,
        *,
        config_id: str | None = None,
        chip_id: str | None = None,
        memory_gb: int | None = None,
        fingerprint: dict[str, Any] | None = None,
        notes: str = "",
    ) -> MachineRecord:
        row = m.UserMachine(
            name=name,
            config_id=config_id,
            chip_id=chip_id,
            memory_gb=memory_gb,
            fingerprint=fingerprint,
            fingerprint_key=fingerprint_key(fingerprint) if fingerprint else None,
            notes=notes,
            created_at=_to_db(utcnow()),
        )
        self.s.add(row)
        self.s.flush()
        return self._rec(row)

    def list(self) -> list[MachineRecord]:
        rows = self.s.scalars(select(m.UserMachine).order_by(m.UserMachine.name))
        return [self._rec(r) for r in rows]

    def get(self, name: str) -> MachineRecord:
        row = self.s.scalar(select(m.UserMachine).where(m.UserMachine.name == name))
        if row is None:
            raise NotFoundError("machine", name, [r.name for r in self.list()])
        return self._rec(row)


# ---------------------------------------------------------------- user models


class UserModelRepo:
    """The user's own models, as ModelSpec. `save` inserts or replaces by model id."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def save(self, spec: ModelSpec, origin: str | None = None) -> ModelSpec:
        now = _to_db(utcnow())
        row = self.s.scalar(select(m.UserModel).where(m.UserModel.model_id == spec.id))
        data = model_to_json(spec)
        if row is None:
            row = m.UserModel(
                model_id=spec.id,
                spec=data,
                origin=origin or spec.origin,
                created_at=now,
                updated_at=now,
            )
            self.s.add(row)
        else:
            row.spec = data
            row.origin = origin or spec.origin
            row.updated_at = now
        self.s.flush()
        return spec

    def get(self, model_id: str) -> ModelSpec | None:
        row = self.s.scalar(select(m.UserModel).where(m.UserModel.model_id == model_id))
        return None if row is None else model_from_json(row.spec)

    def list(self) -> list[ModelSpec]:
        rows = self.s.scalars(select(m.UserModel).order_by(m.UserModel.model_id))
        return [model_from_json(r.spec) for r in rows]

    def origins(self) -> dict[str, str]:
        return {r.model_id: r.origin for r in self.s.scalars(select(m.UserModel))}

    def delete(self, model_id: str) -> bool:
        row = self.s.scalar(select(m.UserModel).where(m.UserModel.model_id == model_id))
        if row is None:
            return False
        self.s.delete(row)
        return True


# ---------------------------------------------------------------- prices


@dataclass(frozen=True, slots=True)
class PriceRecord:
    id: int
    config_id: str | None
    title: str | None
    price: float
    currency: str
    observed_on: date
    condition: str
    source: str
    dedupe_key: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "config_id": self.config_id,
            "title": self.title,
            "price": self.price,
            "currency": self.currency,
            "date": self.observed_on.isoformat(),
            "condition": self.condition,
            "source": self.source,
            "dedupe_key": self.dedupe_key,
        }


def price_dedupe_key(
    config_id: str | None,
    title: str | None,
    price: float,
    currency: str,
    observed_on: date,
    condition: str,
    source: str,
) -> str:
    """The same listing seen twice (same item, price, day, condition and source) is one
    observation. Titles are compared case- and whitespace-insensitively."""
    norm_title = " ".join((title or "").lower().split())
    parts = [
        config_id or "",
        norm_title,
        f"{float(price):.2f}",
        currency.upper(),
        observed_on.isoformat(),
        condition.lower(),
        source.strip(),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class PriceRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    @staticmethod
    def _rec(row: m.PriceObservation) -> PriceRecord:
        return PriceRecord(
            id=row.id,
            config_id=row.config_id,
            title=row.title,
            price=row.price,
            currency=row.currency,
            observed_on=row.observed_on,
            condition=row.condition,
            source=row.source,
            dedupe_key=row.dedupe_key,
        )

    def add(
        self,
        *,
        price: float,
        currency: str,
        observed_on: date,
        condition: str,
        source: str,
        config_id: str | None = None,
        title: str | None = None,
        dedupe_key: str | None = None,
    ) -> tuple[PriceRecord, bool]:
        """Insert one observation; returns (record, created). A duplicate returns the
        existing record and created=False instead of raising."""
        if config_id is None and not title:
            raise ValueError("a price observation needs a config_id or a title")
        if price < 0:
            raise ValueError(f"price must be >= 0, got {price}")
        if len(currency) != 3:
            raise ValueError(f"currency must be an ISO 4217 code like USD, got {currency!r}")
        key = dedupe_key or price_dedupe_key(
            config_id, title, price, currency, observed_on, condition, source
        )
        existing = self.s.scalar(
            select(m.PriceObservation).where(m.PriceObservation.dedupe_key == key)
        )
        if existing is not None:
            return self._rec(existing), False
        row = m.PriceObservation(
            config_id=config_id,
            title=title,
            price=float(price),
            currency=currency.upper(),
            observed_on=observed_on,
            condition=condition,
            source=source,
            dedupe_key=key,
            created_at=_to_db(utcnow()),
        )
        self.s.add(row)
        self.s.flush()
        return self._rec(row), True

    def delete(self, ids: list[int] | tuple[int, ...]) -> list[PriceRecord]:
        """Delete these observations (a wrong import, a typo); every id must exist, else
        NotFoundError and nothing is deleted (the caller's session rolls back)."""
        out = []
        for price_id in ids:
            row = self.s.get(m.PriceObservation, price_id)
            if row is None:
                valid = [str(i) for i in self.s.scalars(select(m.PriceObservation.id))]
                raise NotFoundError("price observation", str(price_id), valid)
            out.append(self._rec(row))
            self.s.delete(row)
        self.s.flush()
        return out

    def list(self, config_id: str | None = None) -> list[PriceRecord]:
        q = select(m.PriceObservation).order_by(
            m.PriceObservation.observed_on, m.PriceObservation.id
        )
        if config_id is not None:
            q = q.where(m.PriceObservation.config_id == config_id)
        return [self._rec(r) for r in self.s.scalars(q)]


# ---------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class PlanRecord:
    id: int
    name: str
    version: int
    document: dict[str, Any]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "document": self.document,
            "created_at": _iso(self.created_at),
        }


class PlanRepo:
    """Plans are append-only: every save of a name is its next version."""

    def __init__(self, session: Session) -> None:
        self.s = session

    @staticmethod
    def _rec(row: m.Plan) -> PlanRecord:
        return PlanRecord(
            id=row.id,
            name=row.name,
            version=row.version,
            document=row.document,
            created_at=_from_db(row.created_at),  # type: ignore[arg-type]
        )

    def save(self, name: str, document: dict[str, Any]) -> PlanRecord:
        last = self.s.scalar(select(func.max(m.Plan.version)).where(m.Plan.name == name))
        row = m.Plan(
            name=name,
            version=(last or 0) + 1,
            document=json.loads(canonical_json(document)),
            created_at=_to_db(utcnow()),
        )
        self.s.add(row)
        self.s.flush()
        return self._rec(row)

    def get(self, name: str, version: int | None = None) -> PlanRecord:
        q = select(m.Plan).where(m.Plan.name == name)
        q = (
            q.where(m.Plan.version == version)
            if version is not None
            else q.order_by(m.Plan.version.desc()).limit(1)
        )
        row = self.s.scalar(q)
        if row is None:
            shown = name if version is None else f"{name} v{version}"
            raise NotFoundError("plan", shown, self.names())
        return self._rec(row)

    def names(self) -> list[str]:
        return list(self.s.scalars(select(m.Plan.name).distinct().order_by(m.Plan.name)))

    def versions(self, name: str) -> list[PlanRecord]:
        q = select(m.Plan).where(m.Plan.name == name).order_by(m.Plan.version)
        return [self._rec(r) for r in self.s.scalars(q)]


# ---------------------------------------------------------------- benchmark runs


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    runner: str
    status: str
    fingerprint_key: str
    fingerprint: dict[str, Any]
    tool_versions: dict[str, Any]
    params: dict[str, Any]
    model_ref: str | None
    started_at: datetime
    finished_at: datetime | None
    estimate: dict[str, Any] | None
    measured: dict[str, Any] | None
    error_pct: dict[str, Any] | None
    raw_sha256: str | None
    message: str
    raw_output: str | None = field(default=None, repr=False)
    # load during the run (forgeplanner.measurement.load): None = not recorded (older runs)
    load_verdict: str | None = None
    other_cpu_share: float | None = None

    def to_dict(self, *, raw: bool = False) -> dict[str, Any]:
        d = {
            "id": self.id,
            "runner": self.runner,
            "status": self.status,
            "model": self.model_ref,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "params": self.params,
            "measured": self.measured,
            "estimate": self.estimate,
            "error_pct": self.error_pct,
            "fingerprint_key": self.fingerprint_key,
            "fingerprint": self.fingerprint,
            "tool_versions": self.tool_versions,
            "raw_sha256": self.raw_sha256,
            "message": self.message,
            "load_verdict": self.load_verdict,
            "other_cpu_share": self.other_cpu_share,
        }
        if raw:
            d["raw_output"] = self.raw_output
        return d


class BenchRunRepo:
    """Runs are written in two commits: `start` (status running) before the tool runs, and
    `finish` after, so a killed run leaves a 'running' row and never touches earlier runs."""

    def __init__(self, session: Session) -> None:
        self.s = session

    @staticmethod
    def _rec(row: m.BenchRun, *, raw: bool = False) -> RunRecord:
        return RunRecord(
            id=row.id,
            runner=row.runner,
            status=row.status,
            fingerprint_key=row.fingerprint_key,
            fingerprint=row.fingerprint,
            tool_versions=row.tool_versions,
            params=row.params,
            model_ref=row.model_ref,
            started_at=_from_db(row.started_at),  # type: ignore[arg-type]
            finished_at=_from_db(row.finished_at),
            estimate=row.estimate,
            measured=row.measured,
            error_pct=row.error_pct,
            raw_sha256=row.raw_sha256,
            message=row.message,
            raw_output=row.raw_output if raw else None,
            load_verdict=row.load_verdict,
            other_cpu_share=row.other_cpu_share,
        )

    def start(
        self,
        *,
        runner: str,
        fingerprint: dict[str, Any],
        tool_versions: dict[str, Any],
        params: dict[str, Any],
        model_ref: str | None = None,
        estimate: dict[str, Any] | None = None,
        pid: int | None = None,
        hostname: str | None = None,
    ) -> int:
        row = m.BenchRun(
            runner=runner,
            status="running",
            fingerprint_key=fingerprint_key(fingerprint),
            fingerprint=fingerprint,
            tool_versions=tool_versions,
            params=json.loads(canonical_json(params)),
            model_ref=model_ref,
            started_at=_to_db(utcnow()),
            estimate=estimate,
            message="",
            pid=pid,
            hostname=hostname,
        )
        self.s.add(row)
        self.s.flush()
        return row.id

    def finish(
        self,
        run_id: int,
        *,
        status: str,
        measured: dict[str, Any] | None = None,
        error_pct: dict[str, Any] | None = None,
        raw_output: str | None = None,
        message: str = "",
        estimate: dict[str, Any] | None = None,
        load_verdict: str | None = None,
        other_cpu_share: float | None = None,
    ) -> RunRecord:
        """`load_verdict` / `other_cpu_share`: the machine's load during the run as judged by
        forgeplanner.measurement.load (the full block goes in `measured["load"]`)."""
        if status not in RUN_STATUSES:
            raise ValueError(f"status '{status}' unknown; valid: {', '.join(RUN_STATUSES)}")
        row = self._row(run_id)
        row.status = status
        row.finished_at = _to_db(utcnow())
        row.measured = measured
        row.error_pct = error_pct
        row.load_verdict = load_verdict
        row.other_cpu_share = other_cpu_share
        if estimate is not None:
            row.estimate = estimate
        if raw_output is not None:
            row.raw_output = raw_output
            row.raw_sha256 = hashlib.sha256(raw_output.encode("utf-8")).hexdigest()
        row.message = message
        self.s.flush()
        return self._rec(row)

    def _row(self, run_id: int) -> m.BenchRun:
        row = self.s.get(m.BenchRun, run_id)
        if row is None:
            ids = [str(i) for i in self.s.scalars(select(m.BenchRun.id).order_by(m.BenchRun.id))]
            raise NotFoundError("benchmark run", str(run_id), ids)
        return row

    def get(self, run_id: int, *, raw: bool = True) -> RunRecord:
        return self._rec(self._row(run_id), raw=raw)

    def list(
        self,
        *,
        runner: str | None = None,
        fingerprint_key: str | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        q = select(m.BenchRun).order_by(m.BenchRun.id.desc())
        if runner is not None:
            q = q.where(m.BenchRun.runner == runner)
        if fingerprint_key is not None:
            q = q.where(m.BenchRun.fingerprint_key == fingerprint_key)
        if status is not None:
            q = q.where(m.BenchRun.status == status)
        if limit is not None:
            q = q.limit(limit)
        return [self._rec(r) for r in self.s.scalars(q)]

    def mark_interrupted(self, hostname: str, is_alive: Callable[[int], bool]) -> list[int]:
        """Runs left 'running' by a process on this host that no longer exists were killed
        half way; mark them so they are not mistaken for runs in progress."""
        q = select(m.BenchRun).where(
            m.BenchRun.status == "running", m.BenchRun.hostname == hostname
        )
        marked = []
        for row in self.s.scalars(q):
            if row.pid is None or not is_alive(row.pid):
                row.status = "interrupted"
                row.message = "the benchmark process ended before the run finished"
                marked.append(row.id)
        self.s.flush()
        return marked


# ---------------------------------------------------------------- calibrations


@dataclass(frozen=True, slots=True)
class CalibrationRecord:
    id: int
    fingerprint_key: str
    fingerprint: dict[str, Any]
    runtime: str
    bandwidth_bytes_per_s: float | None
    compute_flops: float | None
    per_token_s: float | None
    run_ids: tuple[int, ...]
    error_before: dict[str, Any]
    error_after: dict[str, Any]
    details: dict[str, Any]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint_key": self.fingerprint_key,
            "runtime": self.runtime,
            "bandwidth_gbps": None
            if self.bandwidth_bytes_per_s is None
            else self.bandwidth_bytes_per_s / 1e9,
            "compute_gflops": None if self.compute_flops is None else self.compute_flops / 1e9,
            "per_token_ms": None if self.per_token_s is None else self.per_token_s * 1e3,
            "run_ids": list(self.run_ids),
            "error_before": self.error_before,
            "error_after": self.error_after,
            "details": self.details,
            "created_at": _iso(self.created_at),
        }


class CalibrationRepo:
    def __init__(self, session: Session) -> None:
        self.s = session

    @staticmethod
    def _rec(row: m.Calibration) -> CalibrationRecord:
        return CalibrationRecord(
            id=row.id,
            fingerprint_key=row.fingerprint_key,
            fingerprint=row.fingerprint,
            runtime=row.runtime,
            bandwidth_bytes_per_s=row.bandwidth_bytes_per_s,
            compute_flops=row.compute_flops,
            per_token_s=row.per_token_s,
            run_ids=tuple(row.run_ids),
            error_before=row.error_before,
            error_after=row.error_after,
            details=row.details,
            created_at=_from_db(row.created_at),  # type: ignore[arg-type]
        )

    def add(
        self,
        *,
        fingerprint: dict[str, Any],
        runtime: str,
        bandwidth_bytes_per_s: float | None,
        compute_flops: float | None,
        per_token_s: float | None,
        run_ids: list[int] | tuple[int, ...],
        error_before: dict[str, Any],
        error_after: dict[str, Any],
        details: dict[str, Any] | None = None,
    ) -> CalibrationRecord:
        row = m.Calibration(
            fingerprint_key=fingerprint_key(fingerprint),
            fingerprint=fingerprint,
            runtime=runtime,
            bandwidth_bytes_per_s=bandwidth_bytes_per_s,
            compute_flops=compute_flops,
            per_token_s=per_token_s,
            run_ids=list(run_ids),
            error_before=error_before,
            error_after=error_after,
            details=details or {},
            created_at=_to_db(utcnow()),
        )
        self.s.add(row)
        self.s.flush()
        return self._rec(row)

    def latest(self, fingerprint_key: str, runtime: str | None = None) -> CalibrationRecord | None:
        q = select(m.Calibration).where(m.Calibration.fingerprint_key == fingerprint_key)
        if runtime is not None:
            q = q.where(m.Calibration.runtime == runtime)
        row = self.s.scalar(q.order_by(m.Calibration.id.desc()).limit(1))
        return None if row is None else self._rec(row)

    def list(self, fingerprint_key: str | None = None) -> list[CalibrationRecord]:
        q = select(m.Calibration).order_by(m.Calibration.id.desc())
        if fingerprint_key is not None:
            q = q.where(m.Calibration.fingerprint_key == fingerprint_key)
        return [self._rec(r) for r in self.s.scalars(q)]


# ---------------------------------------------------------------- evidence


@dataclass(frozen=True, slots=True)
class EvidenceRecordView:
    id: int
    kind: str
    ref: str | None
    title: str
    plan_id: int | None
    run_ids: tuple[int, ...]
    body: dict[str, Any]
    fingerprint_key: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "ref": self.ref,
            "title": self.title,
            "plan_id": self.plan_id,
            "run_ids": list(self.run_ids),
            "body": self.body,
            "fingerprint_key": self.fingerprint_key,
            "created_at": _iso(self.created_at),
        }


class EvidenceRepo:
    """Evidence records: lab records (kind "lab", ref "L-001"), benchmark summaries, notes."""

    def __init__(self, session: Session) -> None:
        self.s = session

    @staticmethod
    def _rec(row: m.EvidenceRecord) -> EvidenceRecordView:
        return EvidenceRecordView(
            id=row.id,
            kind=row.kind,
            ref=row.ref,
            title=row.title,
            plan_id=row.plan_id,
            run_ids=tuple(row.run_ids),
            body=row.body,
            fingerprint_key=row.fingerprint_key,
            created_at=_from_db(row.created_at),  # type: ignore[arg-type]
        )

    def add(
        self,
        *,
        kind: str,
        title: str,
        body: dict[str, Any],
        ref: str | None = None,
        plan_id: int | None = None,
        run_ids: list[int] | tuple[int, ...] = (),
        fingerprint_key: str | None = None,
    ) -> EvidenceRecordView:
        row = m.EvidenceRecord(
            kind=kind,
            ref=ref,
            title=title,
            plan_id=plan_id,
            run_ids=list(run_ids),
            body=json.loads(canonical_json(body)),
            fingerprint_key=fingerprint_key,
            created_at=_to_db(utcnow()),
        )
        self.s.add(row)
        self.s.flush()
        return self._rec(row)

    def update(
        self,
        record_id: int,
        *,
        body: dict[str, Any],
        title: str | None = None,
        run_ids: list[int] | tuple[int, ...] | None = None,
    ) -> EvidenceRecordView:
        """Replace a working record's body (a lab record gaining answers). Sealed exports are
        files with digests; this is the record they are made from."""
        row = self.s.get(m.EvidenceRecord, record_id)
        if row is None:
            ids = [str(i) for i in self.s.scalars(select(m.EvidenceRecord.id))]
            raise NotFoundError("evidence record", str(record_id), ids)
        row.body = json.loads(canonical_json(body))
        if title is not None:
            row.title = title
        if run_ids is not None:
            row.run_ids = list(run_ids)
        self.s.flush()
        return self._rec(row)

    def get(self, record_id: int) -> EvidenceRecordView:
        row = self.s.get(m.EvidenceRecord, record_id)
        if row is None:
            ids = [str(i) for i in self.s.scalars(select(m.EvidenceRecord.id))]
            raise NotFoundError("evidence record", str(record_id), ids)
        return self._rec(row)

    def list(
        self, *, kind: str | None = None, ref: str | None = None, plan_id: int | None = None
    ) -> list[EvidenceRecordView]:
        q = select(m.EvidenceRecord).order_by(m.EvidenceRecord.id.desc())
        if kind is not None:
            q = q.where(m.EvidenceRecord.kind == kind)
        if ref is not None:
            q = q.where(m.EvidenceRecord.ref == ref)
        if plan_id is not None:
            q = q.where(m.EvidenceRecord.plan_id == plan_id)
        return [self._rec(r) for r in self.s.scalars(q)]
