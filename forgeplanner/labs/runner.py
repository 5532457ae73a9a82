"""Run a lab protocol as a guided session on this machine and store its lab record.

`run_lab(lab_id, store, cancel)` is a progress generator (CLI bar / GUI worker) that walks the
protocol's steps in order: automated steps run here (benchmarks through forgeplanner.bench,
estimates through the engine), macOS-only steps off a Mac are recorded as "manual" with the
exact command, and the record (steps, recording sheet, observation prompts with empty answers,
the ids of the benchmark runs it made) is stored as an evidence record (kind "lab").
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from forgeplanner.bench.progress import BenchGen, CancelLike, Progress, check
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.units import GiB
from forgeplanner.errors import ForgePlannerError
from forgeplanner.labs.protocols import (
    LADDER_FIT,
    RUN_LADDER,
    SIZE_QUANTS,
    LabProtocol,
    LabStep,
    get_lab,
)
from forgeplanner.store import EvidenceRecordView, EvidenceRepo, Store

CONTEXT = 8192


def _is_mac() -> bool:
    return platform.system() == "Darwin"


class _Session:
    """Mutable state of one lab session (steps done, sheet values, runs made)."""

    def __init__(self, lab: LabProtocol, store: Store, options: dict[str, Any]) -> None:
        self.lab = lab
        self.store = store
        self.options = options
        self.steps: list[dict[str, Any]] = []
        self.sheet: dict[str, Any] = {f.key: None for f in lab.sheet}
        self.run_ids: list[int] = []
        self.fp: dict[str, Any] = {}
        self.host = None


def _host(sess: _Session):
    if sess.host is None:
        from forgeplanner.bench.estimate_link import host_for_this_machine

        sess.host = host_for_this_machine(sess.fp, sess.store)
    return sess.host


# ----------------------------------------------------------------------- L-001 steps


def _machine(sess: _Session) -> BenchGen[dict[str, Any]]:
    from forgeplanner.bench.fingerprint import machine_fingerprint

    sess.fp = machine_fingerprint()
    fp = sess.fp
    os_version = fp.get("macos_version") or f"{fp.get('system')} {fp.get('release')}"
    sess.sheet.update(
        chip=fp.get("cpu_brand"),
        gpu_cores=fp.get("gpu_cores"),
        memory_gib=round(fp["memory_bytes"] / GiB, 2),
        os_version=os_version,
    )
    yield Progress("machine", None, str(fp.get("cpu_brand")))
    keys = ("hostname", "cpu_brand", "cpu_logical", "gpu_cores", "memory_bytes",
            "macos_version", "system", "release")  # fmt: skip
    return {k: fp.get(k) for k in keys}


def _wired_limit(sess: _Session) -> BenchGen[dict[str, Any]]:
    from forgeplanner.engine.budget import gpu_budget

    budget = gpu_budget(_host(sess))
    sess.sheet["wired_limit_mb"] = sess.fp.get("wired_limit_mb")
    sess.sheet["gpu_budget_gib"] = round(budget.gpu_limit_bytes / GiB, 2)
    yield Progress("wired-limit", None, budget.basis)
    return {
        "wired_limit_mb": sess.fp.get("wired_limit_mb"),
        "gpu_limit_bytes": budget.gpu_limit_bytes,
        "os_reserve_bytes": budget.os_reserve_bytes,
        "basis": budget.basis,
    }


def _bandwidth(sess: _Session, cancel: CancelLike | None) -> BenchGen[dict[str, Any]]:
    from forgeplanner.bench.builtin import BuiltinConfig
    from forgeplanner.bench.session import record_builtin

    cfg = sess.options.get("builtin_config") or BuiltinConfig()
    rec = yield from record_builtin(sess.store, cfg, cancel)
    sess.run_ids.append(rec.id)
    m = rec.measured or {}
    catalog = (rec.estimate or {}).get("memory_bandwidth_gbps")
    sess.sheet.update(
        copy_gbps=m.get("copy_gbps"),
        triad_gbps=m.get("triad_gbps"),
        decode_sim_gbps=m.get("decode_sim_gbps"),
        catalog_gbps=catalog,
        bandwidth_ratio=(m["copy_gbps"] / catalog) if catalog and m.get("copy_gbps") else None,
    )
    sess.host = None  # the new measurement changes this machine's host
    return {"run_id": rec.id, **{k: m.get(k) for k in ("copy_gbps", "triad_gbps",
            "matmul_gflops", "decode_sim_gbps", "decode_sim_tps")}}  # fmt: skip


def _what_fits(sess: _Session) -> BenchGen[dict[str, Any]]:
    from forgeplanner.engine.fit import fit
    from models_db import load_models

    db = load_models()
    host = _host(sess)
    rows = []
    largest: dict[str, str | None] = {"Q4_K_M": None, "Q8_0": None}
    for model_id in LADDER_FIT:
        spec = db.get(model_id)
        for quant in ("Q4_K_M", "Q8_0"):
            fr = fit(spec, quant, host, RunOptions(context=CONTEXT))
            rows.append(
                {
                    "model": model_id,
                    "quant": quant,
                    "verdict": fr.verdict,
                    "total_gib": round(fr.memory.total_bytes / GiB, 2),
                    "headroom_gib": round(fr.headroom_bytes / GiB, 2),
                    "sysctl_command": fr.sysctl_command,
                }
            )
            if fr.verdict == "fits":
                largest[quant] = model_id
        yield Progress("what-fits", None, model_id)
    sess.sheet["largest_fit_q4"] = largest["Q4_K_M"]
    sess.sheet["largest_fit_q8"] = largest["Q8_0"]
    return {"context": CONTEXT, "host": host.name, "rows": rows}


# ----------------------------------------------------------------------- L-002 steps


def _sizes(sess: _Session) -> BenchGen[dict[str, Any]]:
    from forgeplanner.engine.weights import weights_breakdown
    from models_db import load_models

    if not sess.fp:
        from forgeplanner.bench.fingerprint import machine_fingerprint

        sess.fp = machine_fingerprint()
    db = load_models()
    out: dict[str, Any] = {}
    for model_id, key in (("llama-3.1-8b", "sizes_8b"), ("llama-3.1-70b", "sizes_70b")):
        spec = db.get(model_id)
        table = {}
        for q in SIZE_QUANTS:
            wb = weights_breakdown(spec, q)
            table[q] = {
                "gib": round(wb.total_bytes / GiB, 2),
                "bits_per_weight": round(wb.total_bytes * 8 / spec.params_total, 2),
            }
        out[model_id] = table
        sess.sheet[key] = {q: v["gib"] for q, v in table.items()}
        yield Progress("sizes", None, model_id)
    return out


def _seventy(sess: _Session) -> BenchGen[dict[str, Any]]:
    from forgeplanner.engine.fit import fit, max_context_that_fits
    from models_db import load_models

    spec = load_models().get("llama-3.1-70b")
    host = _host(sess)
    rows = []
    for q in SIZE_QUANTS:
        opts = RunOptions(context=CONTEXT)
        fr = fit(spec, q, host, opts)
        rows.append(
            {
                "quant": q,
                "verdict": fr.verdict,
                "total_gib": round(fr.memory.total_bytes / GiB, 2),
                "budget_gib": round(fr.budget.gpu_limit_bytes / GiB, 2),
                "max_context": max_context_that_fits(spec, q, host, opts),
                "sysctl_command": fr.sysctl_command,
            }
        )
    sess.sheet["fit_70b"] = {r["quant"]: r["verdict"] for r in rows}
    yield Progress("70b", None, host.name)
    return {"host": host.name, "context": CONTEXT, "rows": rows}


def _ladder(sess: _Session, cancel: CancelLike | None) -> BenchGen[dict[str, Any]]:
    from forgeplanner.bench.llamacpp import LlamaBenchSpec
    from forgeplanner.bench.session import record_llamacpp, target_from_model

    ladder = sess.options.get("ladder") or RUN_LADDER
    p, n, r = sess.options.get("ladder_pnr", (512, 128, 5))
    rows = []
    for i, (model_id, quant) in enumerate(ladder):
        check(cancel)
        yield Progress("ladder", i / len(ladder), f"{model_id} {quant}")
        target = yield from target_from_model(model_id, quant)
        spec = LlamaBenchSpec(str(target.gguf_path), n_prompt=(p,), n_gen=(n,), repetitions=r)
        rec = yield from record_llamacpp(sess.store, target, spec, cancel)
        sess.run_ids.append(rec.id)
        m, e, err = rec.measured or {}, rec.estimate or {}, rec.error_pct or {}
        rows.append(
            {
                "model": model_id,
                "quant": quant,
                "run_id": rec.id,
                "file_gib": round(target.gguf_path.stat().st_size / GiB, 3),
                "decode_tps": m.get("decode_tps"),
                "prefill_tps": m.get("prefill_tps"),
                "estimate_decode_tps": e.get("decode_tps"),
                "estimate_prefill_tps": e.get("prefill_tps"),
                "error_decode_pct": err.get("decode_tps"),
                "error_prefill_pct": err.get("prefill_tps"),
            }
        )
    sess.sheet["ladder"] = rows
    return {"synthetic": True, "prompt": p, "gen": n, "repetitions": r, "rows": rows}


# ----------------------------------------------------------------------- driver

StepFn = Callable[[_Session, CancelLike | None], BenchGen[dict[str, Any]]]

AUTOMATED: dict[tuple[str, str], StepFn] = {
    ("L-001", "machine"): lambda s, c: _machine(s),
    ("L-001", "wired-limit"): lambda s, c: _wired_limit(s),
    ("L-001", "bandwidth"): _bandwidth,
    ("L-001", "what-fits"): lambda s, c: _what_fits(s),
    ("L-002", "sizes"): lambda s, c: _sizes(s),
    ("L-002", "70b"): lambda s, c: _seventy(s),
    ("L-002", "ladder"): _ladder,
}


def _skip_reason(step: LabStep) -> str | None:
    if step.macos_only and not _is_mac() and not step.automated:
        return "manual: needs a Mac; run the command there and fill the sheet"
    if step.macos_only and not _is_mac():
        return None  # automated and meaningful elsewhere (e.g. the budget of this host)
    if not step.automated:
        return "manual: follow the procedure and fill the sheet"
    return None


def run_lab(
    lab_id: str,
    store: Store,
    cancel: CancelLike | None = None,
    *,
    options: dict[str, Any] | None = None,
) -> BenchGen[EvidenceRecordView]:
    lab = get_lab(lab_id)
    sess = _Session(lab, store, options or {})
    n = len(lab.steps)
    for i, step in enumerate(lab.steps):
        check(cancel, f"lab {lab.id}")
        yield Progress(f"{lab.id} step {i + 1}/{n}", i / n, step.title)
        entry: dict[str, Any] = {
            "id": step.id,
            "title": step.title,
            "procedure": step.procedure,
            "command": step.command,
        }
        why = _skip_reason(step)
        fn = AUTOMATED.get((lab.id, step.id))
        if why is not None or fn is None:
            entry.update(status="manual", note=why or "manual step")
        else:
            try:
                result = yield from _relabel(fn(sess, cancel), f"{lab.id} {step.id}", i, n)
                entry.update(status="done", result=result)
                if step.macos_only and not _is_mac():
                    entry["note"] = "not a Mac: computed for this machine's CPU memory budget"
            except ForgePlannerError as exc:
                if exc.__class__.__name__ == "Cancelled":
                    raise
                entry.update(status="failed", note=str(exc))
        sess.steps.append(entry)
    body = {
        "lab": lab.id,
        "title": lab.title,
        "module": lab.module,
        "goal": lab.goal,
        "machine": {k: sess.fp.get(k) for k in ("hostname", "cpu_brand", "memory_bytes",
                                                 "gpu_cores", "macos_version", "key")},
        "steps": sess.steps,
        "sheet": sess.sheet,
        "observations": [{"prompt": p, "answer": ""} for p in lab.observations],
    }  # fmt: skip
    with store.session() as s:
        rec = EvidenceRepo(s).add(
            kind="lab",
            ref=lab.id,
            title=f"{lab.id} {lab.title}",
            body=body,
            run_ids=sess.run_ids,
            fingerprint_key=sess.fp.get("key"),
        )
    yield Progress(lab.id, 1.0, f"lab record {rec.id} stored")
    return rec


def _relabel(gen: BenchGen[dict[str, Any]], stage: str, i: int, n: int) -> BenchGen[dict[str, Any]]:
    """Map a step's own progress (0..1) into the lab's overall progress."""
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            return stop.value
        frac = None if ev.fraction is None else (i + ev.fraction) / n
        yield replace(
            ev, stage=f"{stage}: {ev.stage}", fraction=frac if frac is not None else i / n
        )
