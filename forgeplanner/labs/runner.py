"""Run a lab protocol as a guided session on this machine and store its lab record.

`run_lab(lab_id, store, cancel, answers=...)` is a progress generator (CLI bar / GUI worker)
that walks the protocol's steps in order: automated steps run here (benchmarks through
forgeplanner.bench, estimates through the engine, L-003's commands in its plan repository),
manual steps are confirmed from the answers (an answers file or the app) or left "pending",
and the record (steps, recording sheet, observation prompts with their answers, the ids of the
benchmark runs it made, whether it is complete and what is missing) is stored as an evidence
record (kind "lab"). `answer_lab(record_id, answers, store)` adds answers later: progress is
saved in the record, and a pending L-003 sign-off is carried out then.
"""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from forgeplanner.bench.progress import BenchGen, CancelLike, Progress, check
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.units import GiB
from forgeplanner.errors import ForgePlannerError
from forgeplanner.labs.answers import LabAnswers
from forgeplanner.labs.protocols import (
    L003_GITOPS,
    L003_REPO,
    LADDER_FIT,
    RUN_LADDER,
    SIZE_QUANTS,
    LabCommand,
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

    def __init__(
        self,
        lab: LabProtocol,
        store: Store,
        options: dict[str, Any],
        answers: LabAnswers | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.lab = lab
        self.store = store
        self.options = options
        self.answers = answers or LabAnswers(source="")
        self.workdir = workdir or Path(".")
        self.steps: list[dict[str, Any]] = []
        self.sheet: dict[str, Any] = {f.key: None for f in lab.sheet}
        self.run_ids: list[int] = []
        self.fp: dict[str, Any] = {}
        self.host = None
        self.evidence_ids: list[int] = []  # gate verdicts and sign-offs (L-003)


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
    p, n, r = sess.options.get("ladder_pnr", (256, 64, 3))
    rows = []
    for i, (model_id, quant) in enumerate(ladder):
        check(cancel)
        yield Progress("ladder", i / len(ladder), f"{model_id} {quant}")
        target = yield from _within(target_from_model(model_id, quant), i, len(ladder))
        spec = LlamaBenchSpec(str(target.gguf_path), n_prompt=(p,), n_gen=(n,), repetitions=r)
        rec = yield from _within(record_llamacpp(sess.store, target, spec, cancel), i, len(ladder))
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


# ----------------------------------------------------------------------- L-003 steps


def run_command(cmd: LabCommand | str, cwd: Path, timeout: float = 600.0) -> dict[str, Any]:
    """Run one printed lab command as typed (argv from shlex, never a shell): `forgeplanner`
    as this interpreter's module, anything else (git) from PATH."""
    text = cmd.text if isinstance(cmd, LabCommand) else cmd
    argv = shlex.split(text)
    if argv and argv[0] == "forgeplanner":
        argv = [sys.executable, "-m", "forgeplanner", *argv[1:]]
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              check=False)  # fmt: skip
    except FileNotFoundError as exc:
        raise ForgePlannerError(f"`{text}`: {argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise ForgePlannerError(f"`{text}` did not finish in {timeout:.0f} s") from exc
    return {"command": text, "exit_code": proc.returncode,
            "output": (proc.stdout + proc.stderr)[-4000:]}  # fmt: skip


def _run_step_commands(sess: _Session, step_id: str) -> list[dict[str, Any]]:
    step = next(s for s in sess.lab.steps if s.id == step_id)
    out = []
    for cmd in step.commands:
        res = run_command(cmd, sess.workdir)
        out.append(res)
        if res["exit_code"] != cmd.expect_exit:
            raise ForgePlannerError(
                f"`{cmd.text}` ended with exit code {res['exit_code']}, expected "
                f"{cmd.expect_exit}: {res['output'].strip()[-400:]}"
            )
    return out


def _new_evidence(sess: _Session, kind: str, since: int) -> list[Any]:
    from forgeplanner.store import EvidenceRepo

    with sess.store.session() as s:
        recs = [r for r in EvidenceRepo(s).list(kind=kind) if r.id > since]
    return sorted(recs, key=lambda r: r.id)


def _last_evidence_id(sess: _Session) -> int:
    from forgeplanner.store import EvidenceRepo

    with sess.store.session() as s:
        recs = EvidenceRepo(s).list()
    return max((r.id for r in recs), default=0)


def _l003_plain(step_id: str) -> Callable[[_Session], BenchGen[dict[str, Any]]]:
    def fn(sess: _Session) -> BenchGen[dict[str, Any]]:
        yield Progress(step_id, None, "running the step's commands")
        return {"commands": _run_step_commands(sess, step_id)}

    return fn


def _l003_change(step_id: str, expected: str) -> Callable[[_Session], BenchGen[dict[str, Any]]]:
    def fn(sess: _Session) -> BenchGen[dict[str, Any]]:
        mark = _last_evidence_id(sess)
        yield Progress(step_id, None, f"change and commit (expect {expected})")
        commands = _run_step_commands(sess, step_id)
        verdicts = _new_evidence(sess, "gate", mark)
        if not verdicts:
            raise ForgePlannerError(f"{step_id}: the hook recorded no verdict")
        v = verdicts[-1]
        sess.evidence_ids += [r.id for r in verdicts]
        if v.body["outcome"] != expected:
            raise ForgePlannerError(f"{step_id}: the gate said {v.body['outcome']}, expected "
                                    f"{expected}")  # fmt: skip
        reasons = [x["reason"] for x in v.body["verdicts"] if x["outcome"] == expected]
        key = {"ALLOW": "allow", "DENY": "deny", "ESCALATE": "escalate"}[expected]
        sess.sheet[f"{key}_outcome"] = v.body["outcome"]
        if f"{key}_reason" in sess.sheet:
            sess.sheet[f"{key}_reason"] = "; ".join(reasons)
        return {"commands": commands, "verdict": {"evidence_id": v.id, **v.body}}

    return fn


def _forgeplanner_json(sess: _Session, argv: list[str], what: str) -> dict[str, Any]:
    """A forgeplanner command (argv, no shell) in the lab's directory, its --json answer."""
    import json

    try:
        proc = subprocess.run(
            [sys.executable, "-m", "forgeplanner", *argv, "--json"], cwd=sess.workdir,
            capture_output=True, text=True, timeout=1800, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise ForgePlannerError(f"{what} did not finish in {exc.timeout:.0f} s") from None
    if proc.returncode != 0:
        raise ForgePlannerError(f"{what}: {(proc.stderr or proc.stdout).strip()[-400:]}")
    return json.loads(proc.stdout)


def _l003_signoff(sess: _Session) -> BenchGen[dict[str, Any]]:
    """The human part: sign-off from the answers (who, why) with the step's own command, then
    the commit."""
    from forgeplanner.labs.protocols import L003_REPO as repo_name

    who, why = sess.answers.signoff.get("who"), sess.answers.signoff.get("why")
    yield Progress("signoff", None, f"sign-off by {who}")
    plan, policy = f"{repo_name}/lab.fplan", f"{repo_name}/policy.toml"
    argv = ["governance", "sign-off", plan, "--policy", policy, "--who", who or "",
            "--why", why or ""]  # fmt: skip
    body = _forgeplanner_json(sess, argv, "sign-off")["signoff"]
    sess.evidence_ids.append(body["id"])
    mark = _last_evidence_id(sess)
    step = next(s for s in sess.lab.steps if s.id == "signoff")
    commit = run_command(step.more[0], sess.workdir)
    if commit["exit_code"] != 0:
        raise ForgePlannerError(f"the signed-off commit was refused: {commit['output'][-400:]}")
    verdicts = _new_evidence(sess, "gate", mark)
    sess.evidence_ids += [r.id for r in verdicts]
    log = run_command(f"git -C {repo_name} log --oneline", sess.workdir)
    sess.sheet.update(
        signed_off_by=body["who"],
        signed_off_at=body["when"],
        commits=len(log["output"].strip().splitlines()),
    )
    return {"signoff": body, "commit": commit, "git_log": log["output"].strip().splitlines()}


def _l003_latency(sess: _Session) -> BenchGen[dict[str, Any]]:
    runs, process_runs = sess.options.get("latency_runs", (50, 5))
    yield Progress("latency", None, f"{runs} gate runs, {process_runs} hook processes")
    argv = ["governance", "latency", f"{L003_REPO}/lab.fplan", "--policy",
            f"{L003_REPO}/policy.toml", "--runs", str(runs),
            "--process-runs", str(process_runs)]  # fmt: skip
    d = _forgeplanner_json(sess, argv, "gate latency")
    sess.sheet.update(
        gate_median_ms=round(d["in_process"]["median_ms"], 2),
        gate_p95_ms=round(d["in_process"]["p95_ms"], 2),
        hook_median_ms=None if d["hook_process"] is None
        else round(d["hook_process"]["median_ms"], 1),
    )  # fmt: skip
    return d


def _l003_cluster(sess: _Session) -> BenchGen[dict[str, Any]]:
    import yaml

    yield Progress("cluster", None, "rendering the admission policies")
    commands = _run_step_commands(sess, "cluster")
    path = sess.workdir / L003_GITOPS / "components" / "policy" / "base" / "policy.yaml"
    objs = [o for o in yaml.safe_load_all(path.read_text(encoding="utf-8")) if o]
    names = [o["metadata"]["name"] for o in objs if o["kind"] == "ValidatingAdmissionPolicy"]
    sess.sheet["admission_policies"] = ", ".join(names)
    return {"commands": commands, "policy_file": str(path), "objects": objs}


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
    ("L-003", "repo"): lambda s, c: _l003_plain("repo")(s),
    ("L-003", "hook"): lambda s, c: _l003_plain("hook")(s),
    ("L-003", "allow"): lambda s, c: _l003_change("allow", "ALLOW")(s),
    ("L-003", "deny"): lambda s, c: _l003_change("deny", "DENY")(s),
    ("L-003", "escalate"): lambda s, c: _l003_change("escalate", "ESCALATE")(s),
    ("L-003", "latency"): lambda s, c: _l003_latency(s),
    ("L-003", "cluster"): lambda s, c: _l003_cluster(s),
}
# Manual steps that run once the person has answered (the sign-off needs who and why).
ANSWERED: dict[tuple[str, str], Callable[[_Session], BenchGen[dict[str, Any]]]] = {
    ("L-003", "signoff"): _l003_signoff,
}


def _skip_reason(step: LabStep) -> str | None:
    if step.macos_only and not _is_mac() and not step.automated:
        return "manual: needs a Mac; run the command there and confirm the step"
    if step.macos_only and not _is_mac():
        return None  # automated and meaningful elsewhere (e.g. the budget of this host)
    if not step.automated:
        return "manual: follow the procedure and confirm the step"
    return None


def _manual_entry(sess: _Session, step: LabStep, why: str) -> dict[str, Any]:
    """A manual step: confirmed (or skipped, with the reason) from the answers, or pending."""
    ans = sess.answers.steps.get(step.id)
    if (sess.lab.id, step.id) in ANSWERED:
        if sess.answers.signoff.get("who") and sess.answers.signoff.get("why"):
            return {}  # run it (below)
        return {"status": "pending", "note": "give signoff.who and signoff.why (answers file)"}
    if ans is None:
        return {"status": "pending", "note": why}
    if ans["done"]:
        return {"status": "confirmed", "note": ans.get("note", "")}
    return {"status": "skipped", "note": ans.get("note", "")}


def _fill_answers(sess: _Session) -> None:
    for key, value in sess.answers.sheet.items():
        sess.sheet[key] = value


def missing_answers(lab: LabProtocol, body: dict[str, Any]) -> list[str]:
    """The answer keys a record still needs to be complete."""
    missing = []
    for st in body["steps"]:
        if st["status"] == "pending":
            step = next(s for s in lab.steps if s.id == st["id"])
            if (lab.id, step.id) in ANSWERED:
                missing += ["signoff.who", "signoff.why"]
            else:
                missing.append(f"steps.{st['id']}.done")
    for f in lab.sheet:
        if f.manual and body["sheet"].get(f.key) is None:
            step = next((x for x in body["steps"] if x["id"] == f.step), None)
            if step is None or step["status"] != "skipped":
                missing.append(f"sheet.{f.key}")
    missing += [f"observations.{o['key']}" for o in body["observations"] if not o["answer"]]
    return missing


def _status(lab: LabProtocol, body: dict[str, Any]) -> str:
    if any(st["status"] == "failed" for st in body["steps"]):
        return "failed"
    return "incomplete" if missing_answers(lab, body) else "complete"


def run_lab(
    lab_id: str,
    store: Store,
    cancel: CancelLike | None = None,
    *,
    options: dict[str, Any] | None = None,
    answers: LabAnswers | None = None,
    workdir: str | Path | None = None,
) -> BenchGen[EvidenceRecordView]:
    lab = get_lab(lab_id)
    wd = Path(workdir) if workdir is not None else None
    if lab.id == "L-003":
        wd = wd or Path(".")
        wd.mkdir(parents=True, exist_ok=True)
        busy = [n for n in (L003_REPO, L003_GITOPS) if (wd / n).exists()]
        if busy:
            raise ForgePlannerError(
                f"L-003 works in {wd.resolve()}: {', '.join(busy)} already exist there; "
                "run it with --workdir NEW_DIR"
            )
    sess = _Session(lab, store, options or {}, answers, wd)
    _fill_answers(sess)
    n = len(lab.steps)
    for i, step in enumerate(lab.steps):
        check(cancel, f"lab {lab.id}")
        yield Progress(f"{lab.id} step {i + 1}/{n}", i / n, step.title)
        entry: dict[str, Any] = {
            "id": step.id,
            "title": step.title,
            "procedure": step.procedure,
            "command": step.command,
            "commands": [c.text for c in step.commands],
        }
        why = _skip_reason(step)
        fn = AUTOMATED.get((lab.id, step.id))
        answered = ANSWERED.get((lab.id, step.id))
        if why is not None or fn is None:
            entry.update(_manual_entry(sess, step, why or "manual step"))
            if "status" not in entry and answered is not None:
                fn = lambda s, c, a=answered: a(s)  # noqa: E731 - the answered step runs now
        if "status" not in entry and fn is not None:
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
        if entry["status"] == "failed" and lab.id == "L-003":
            # each L-003 step builds on the last: stop, the record says where and why
            for later in lab.steps[i + 1 :]:
                sess.steps.append(
                    {
                        "id": later.id,
                        "title": later.title,
                        "procedure": later.procedure,
                        "command": later.command,
                        "commands": [c.text for c in later.commands],
                        "status": "not-run",
                        "note": f"after the failed step {step.id}",
                    }
                )
            break
    body = _body(sess)
    with store.session() as s:
        rec = EvidenceRepo(s).add(
            kind="lab",
            ref=lab.id,
            title=f"{lab.id} {lab.title}",
            body=body,
            run_ids=sess.run_ids,
            fingerprint_key=sess.fp.get("key"),
        )
    yield Progress(lab.id, 1.0, f"lab record {rec.id} stored ({body['status']})")
    return rec


def _body(sess: _Session) -> dict[str, Any]:
    lab = sess.lab
    body = {
        "lab": lab.id,
        "title": lab.title,
        "module": lab.module,
        "goal": lab.goal,
        "machine": {k: sess.fp.get(k) for k in ("hostname", "cpu_brand", "memory_bytes",
                                                 "gpu_cores", "macos_version", "key")},
        "workdir": None if lab.id != "L-003" else str(sess.workdir.resolve()),
        "steps": sess.steps,
        "sheet": sess.sheet,
        "observations": [
            {"key": o.key, "prompt": o.prompt, "answer": sess.answers.observations.get(o.key, "")}
            for o in lab.observations
        ],
        "answers": sess.answers.to_dict(),
        "evidence_ids": sess.evidence_ids,
    }  # fmt: skip
    body["status"] = _status(lab, body)
    body["missing"] = missing_answers(lab, body)
    return body


def answer_lab(record_id: int, answers: LabAnswers, store: Store) -> EvidenceRecordView:
    """Add answers to a stored lab record (progress saved): manual steps, sheet fields and
    observations are updated, and a pending L-003 sign-off is carried out now."""
    from forgeplanner.store import EvidenceRepo

    with store.session() as s:
        rec = EvidenceRepo(s).get(record_id)
    if rec.kind != "lab":
        raise ForgePlannerError(f"evidence record {record_id} is a {rec.kind} record, not a lab")
    lab = get_lab(rec.ref or "")
    body = rec.body
    merged = LabAnswers.from_dict(body.get("answers")).merged(answers)
    sess = _Session(lab, store, {}, merged, Path(body.get("workdir") or "."))
    sess.steps = [dict(st) for st in body["steps"]]
    sess.sheet = dict(body["sheet"])
    sess.run_ids = list(rec.run_ids)
    sess.evidence_ids = list(body.get("evidence_ids", []))
    sess.fp = {k: v for k, v in (body.get("machine") or {}).items() if v is not None}
    _fill_answers(sess)
    for entry in sess.steps:
        if entry["status"] not in ("pending", "confirmed", "skipped"):
            continue
        step = next(s for s in lab.steps if s.id == entry["id"])
        update = _manual_entry(sess, step, entry.get("note", ""))
        answered = ANSWERED.get((lab.id, step.id))
        if not update and answered is not None and entry["status"] == "pending":
            try:
                gen = answered(sess)
                while True:
                    next(gen)
            except StopIteration as stop:
                entry.update(status="done", result=stop.value, note="")
            except ForgePlannerError as exc:
                entry.update(status="failed", note=str(exc))
        elif update:
            entry.update(update)
    new_body = _body(sess)
    with store.session() as s:
        return EvidenceRepo(s).update(record_id, body=new_body, title=rec.title)


T = TypeVar("T")


def _within(gen: BenchGen[T], i: int, n: int) -> BenchGen[T]:
    """Map the progress (0..1) of part i of n into the step's own progress, so a step made
    of several runs never goes backwards."""
    while True:
        try:
            ev = next(gen)
        except StopIteration as stop:
            return stop.value
        yield replace(ev, fraction=None if ev.fraction is None else (i + ev.fraction) / n)


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
