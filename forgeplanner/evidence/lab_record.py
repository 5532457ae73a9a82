"""The sealed lab record: a lab session's steps, recording sheet, answers, the benchmark runs it
used (with their raw tool output) and the evidence it made (gate verdicts, sign-offs), with
SHA-256 digests that let anyone detect a changed byte. Same digest scheme as the plan's
evidence record (forgeplanner.evidence.record: RFC 8785 canonical JSON, UTF-8), other sections:

    {
      "format": "forgeplanner.lab-record", "record_version": 1,
      "created_at": "...", "tool": {...}, "record_id": 7,
      "lab": {the stored lab record body: lab, steps, sheet, observations, answers, status},
      "runs": [{run_id, runner, started_at, fingerprint, params, measured, estimate,
                error_pct, raw_sha256, raw_output, ...}],
      "evidence": [{id, kind, title, created_at, body}],    gate verdicts and sign-offs
      "digests": {"algorithm", "canonicalization", "sections": {...}, "seal"}
    }

Sections: created_at, tool, record_id, lab, lab.steps[<id>], lab.sheet, lab.observations,
lab.answers, runs[<id>], runs[<id>].raw_output (its exact bytes), evidence[<id>]. `seal` is the
digest of the whole record without `digests` and the optional `signatures` (Ed25519/SSH, added
after sealing by `forgeplanner evidence sign`). `forgeplanner evidence verify FILE
[--signer KEY.pub]` checks it.
"""

from __future__ import annotations

from typing import Any

from forgeplanner.evidence.record import (
    ALGORITHM,
    CANONICALIZATION,
    OPTIONAL,
    Verification,
    _without_digests,
    canonical,
    raw_digest,
    sha256_hex,
    tool_versions,
    verify_sealed,
)
from forgeplanner.store.repos import _iso

FORMAT = "forgeplanner.lab-record"
RECORD_VERSION = 1
TOP_LEVEL = ("format", "record_version", "created_at", "tool", "record_id", "lab", "runs",
             "evidence", "digests")  # fmt: skip


def run_entry(run: Any) -> dict[str, Any]:
    """A store RunRecord (fetched with raw=True) as the record keeps it."""
    raw = run.raw_output or ""
    return {
        "run_id": str(run.id),
        "runner": run.runner,
        "status": run.status,
        "model": run.model_ref,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "fingerprint": run.fingerprint,
        "tool_versions": run.tool_versions,
        "params": {k: v for k, v in (run.params or {}).items() if k != "model_spec"},
        "measured": run.measured,
        "estimate": run.estimate,
        "error_pct": run.error_pct,
        "raw_sha256": raw_digest(raw),
        "raw_output": raw,
    }


def evidence_entry(view: Any) -> dict[str, Any]:
    return {
        "id": view.id,
        "kind": view.kind,
        "title": view.title,
        "created_at": _iso(view.created_at),
        "body": view.body,
    }


def build_lab_record(
    record: Any,
    runs: list[Any],
    evidence: list[Any],
    created_at: str,
    tool: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The sealed lab record (a JSON-ready dict) for a stored lab record view."""
    out: dict[str, Any] = {
        "format": FORMAT,
        "record_version": RECORD_VERSION,
        "created_at": created_at,
        "tool": tool if tool is not None else tool_versions(),
        "record_id": record.id,
        "lab": record.body,
        "runs": [run_entry(r) for r in runs],
        "evidence": [evidence_entry(e) for e in evidence],
    }
    # round-trip through canonical JSON so floats and keys are what a reader will load
    import json

    out = json.loads(canonical(out).decode("utf-8"))
    out["digests"] = {
        "algorithm": ALGORITHM,
        "canonicalization": CANONICALIZATION,
        "sections": {name: sha256_hex(data) for name, data in sections(out).items()},
        "seal": sha256_hex(canonical(_without_digests(out))),
    }
    return out


def sections(record: dict[str, Any]) -> dict[str, bytes]:
    lab = record["lab"]
    out: dict[str, bytes] = {
        "created_at": canonical(record["created_at"]),
        "tool": canonical(record["tool"]),
        "record_id": canonical(record["record_id"]),
        "lab": canonical(lab),
        "lab.sheet": canonical(lab["sheet"]),
        "lab.observations": canonical(lab["observations"]),
        "lab.answers": canonical(lab.get("answers")),
    }
    for st in lab["steps"]:
        out[f"lab.steps[{st['id']}]"] = canonical(st)
    for run in record["runs"]:
        rid = run["run_id"]
        out[f"runs[{rid}]"] = canonical({k: v for k, v in run.items() if k != "raw_output"})
        out[f"runs[{rid}].raw_output"] = run["raw_output"].encode("utf-8")
    for ev in record["evidence"]:
        out[f"evidence[{ev['id']}]"] = canonical(ev)
    return out


def verify_lab_record(record: Any, signers: list[Any] | None = None) -> Verification:
    """As the plan's record (forgeplanner.evidence.record.verify_sealed): every digest, the
    seal, every signature present; with `signers`, one of them must have signed."""
    problems = _shape_problems(record)
    if problems:
        return Verification(False, problems)
    return verify_sealed(record, sections, signers)


def _shape_problems(record: Any) -> list[str]:
    if not isinstance(record, dict):
        return ["the record is not a JSON object"]
    missing = [k for k in TOP_LEVEL if k not in record]
    extra = [k for k in record if k not in TOP_LEVEL and k not in OPTIONAL]
    problems = []
    if missing:
        problems.append(f"missing top-level key(s): {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected top-level key(s): {', '.join(extra)}")
    if problems:
        return problems
    if record["record_version"] != RECORD_VERSION:
        problems.append(
            f"record_version is {record['record_version']!r}; this program verifies "
            f"version {RECORD_VERSION}"
        )
    d = record["digests"]
    if not isinstance(d, dict) or set(d) != {"algorithm", "canonicalization", "sections", "seal"}:
        return [*problems, "digests block altered (expected algorithm, canonicalization, "
                "sections, seal)"]  # fmt: skip
    if d["algorithm"] != ALGORITHM or d["canonicalization"] != CANONICALIZATION:
        problems.append("digests.algorithm or digests.canonicalization altered")
    if not isinstance(record["lab"], dict) or not isinstance(record["lab"].get("steps"), list):
        problems.append("lab altered: expected the lab record with its steps")
    if not isinstance(record["runs"], list) or not all(
        isinstance(r, dict) and isinstance(r.get("raw_output"), str) and "run_id" in r
        for r in record["runs"]
    ):
        problems.append("runs altered: each run needs run_id and a raw_output string")
    return problems
