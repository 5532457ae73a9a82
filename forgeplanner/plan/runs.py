"""Benchmark runs from the store, as runs attached to a plan (with their raw output)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from forgeplanner.domain.plan import AttachedRun
from forgeplanner.errors import ForgePlannerError


def _floats(d: dict[str, Any] | None) -> dict[str, float]:
    """The numeric metrics of a measured/estimate dict (nested blocks are left out)."""
    out: dict[str, float] = {}
    for k, v in (d or {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[str(k)] = float(v)
    return out


def attached_from_record(record: Any, config_id: str = "") -> AttachedRun:
    """A store `RunRecord` (fetched with raw=True) -> AttachedRun."""
    if record.status != "ok":
        raise ForgePlannerError(
            f"benchmark run {record.id} has status '{record.status}'; only finished runs "
            "('ok') can be attached as evidence"
        )
    params = dict(record.params or {})
    return AttachedRun(
        run_id=str(record.id),
        runner=record.runner,
        started_at=record.started_at.isoformat(),
        finished_at=None if record.finished_at is None else record.finished_at.isoformat(),
        model_ref=record.model_ref or "",
        model_id=str(params.get("model_id") or params.get("model") or ""),
        quant=str(params.get("quant") or ""),
        config_id=config_id,
        status=record.status,
        fingerprint=dict(record.fingerprint or {}),
        tool_versions=dict(record.tool_versions or {}),
        params=params,
        measured=_floats(record.measured),
        estimate=_floats(record.estimate),
        raw_output=record.raw_output or "",
        raw_sha256=record.raw_sha256 or "",
    )


def runs_from_store(
    run_ids: Sequence[str], config_id: str = "", store: Any = None
) -> list[AttachedRun]:
    from forgeplanner.store import BenchRunRepo, open_store

    ids = []
    for rid in run_ids:
        text = str(rid).strip()
        # A database id fits in 63 bits; a longer number is no run (and overflows SQLite).
        if not text.isdigit() or len(text) > 18:
            shown = text if len(text) <= 30 else text[:27] + "..."
            raise ForgePlannerError(f"run id '{shown}' is not a run number (see `bench list`)")
        ids.append(int(text))
    own = store is None
    store = store or open_store()
    try:
        with store.session() as s:
            repo = BenchRunRepo(s)
            return [attached_from_record(repo.get(i, raw=True), config_id) for i in ids]
    finally:
        if own:
            store.close()
