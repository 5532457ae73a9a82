"""User data: SQLite (or any SQLAlchemy URL in FORGEPLANNER_DB) via SQLAlchemy 2.x + Alembic.

Usage, one session per user action (commit on success, rollback on any exception)::

    from forgeplanner.store import Store, PriceRepo
    store = Store()                      # paths.database_url(); migrates to head on open
    with store.session() as s:
        record, created = PriceRepo(s).add(config_id="mac-mini-m4-pro-20c-64gb", price=1999,
                                           currency="USD", observed_on=date.today(),
                                           condition="new", source="apple.com")

Repositories (forgeplanner.store.repos); each takes the open Session and returns frozen
records / domain objects, never ORM rows:

- `MachineRepo`      user machines: add, list, get(name) -> MachineRecord
- `UserModelRepo`    user models: save(ModelSpec) (upsert by id), get, list, delete, origins
- `PriceRepo`        price observations: add(...) -> (PriceRecord, created) with a dedupe key,
                     list(config_id)
- `PlanRepo`         plans, append-only versions: save(name, doc), get(name[, version]),
                     names, versions
- `BenchRunRepo`     benchmark runs: start(...) -> id, finish(id, status, measured, ...),
                     get, list, mark_interrupted
- `CalibrationRepo`  calibrations per machine fingerprint: add, latest(key, runtime), list
- `EvidenceRepo`     evidence records (lab records kind="lab", ref="L-001"): add, get, list

Schema changes: add a revision under forgeplanner/store/migrations/versions (Alembic); the
store upgrades on open and refuses a database whose revision it does not know
(`DatabaseError`, a ForgePlannerError).
"""

from __future__ import annotations

from forgeplanner.store.db import DatabaseError, Store, head_revision, open_store
from forgeplanner.store.repos import (
    BenchRunRepo,
    CalibrationRecord,
    CalibrationRepo,
    EvidenceRecordView,
    EvidenceRepo,
    MachineRecord,
    MachineRepo,
    PlanRecord,
    PlanRepo,
    PriceRecord,
    PriceRepo,
    RunRecord,
    UserModelRepo,
    fingerprint_key,
)

__all__ = [
    "BenchRunRepo",
    "CalibrationRecord",
    "CalibrationRepo",
    "DatabaseError",
    "EvidenceRecordView",
    "EvidenceRepo",
    "MachineRecord",
    "MachineRepo",
    "PlanRecord",
    "PlanRepo",
    "PriceRecord",
    "PriceRepo",
    "RunRecord",
    "Store",
    "UserModelRepo",
    "fingerprint_key",
    "head_revision",
    "open_store",
]
