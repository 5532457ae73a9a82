"""Run a benchmark and record it: fingerprint, tool versions, the estimate made before the
run, the measurement, the raw tool output with its SHA-256, the error per metric.

Each `record_*` function is a progress generator (the CLI drives it with a console bar, the
GUI in a worker thread) returning the stored `RunRecord`. The run row is committed as
"running" before the tool starts and finished in a second transaction, so a run that is killed
half way leaves one "running" row (marked "interrupted" later) and never touches earlier runs.
A cancelled or failed run is stored with that status and the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from forgeplanner.bench.builtin import BuiltinConfig, run_builtin
from forgeplanner.bench.estimate_link import errors, estimate_for_run, host_for_this_machine
from forgeplanner.bench.fingerprint import machine_fingerprint, tool_versions
from forgeplanner.bench.llamacpp import (
    LlamaBenchSpec,
    LlamaRun,
    RpcEndpoint,
    check_llamacpp_tools,
    check_rpc_servers,
    run_llamacpp,
)
from forgeplanner.bench.progress import BenchGen, Cancelled, CancelLike, Progress
from forgeplanner.bench.result import headline
from forgeplanner.domain.model import ModelSpec
from forgeplanner.domain.units import GB
from forgeplanner.errors import ForgePlannerError
from forgeplanner.measurement.load import (
    DEFAULT_RULE,
    NOT_JUDGED,
    NOT_RECORDED,
    QUIET,
    LoadSampler,
    NoiseRule,
    load_block,
    spreads_of,
    verdict_of,
)
from forgeplanner.store import BenchRunRepo, RunRecord, Store
from forgeplanner.store.codec import model_to_json


def _pid_alive(pid: int) -> bool:
    import psutil

    return psutil.pid_exists(pid)


def mark_interrupted(store: Store, fingerprint: dict[str, Any]) -> list[int]:
    with store.session() as s:
        return BenchRunRepo(s).mark_interrupted(fingerprint["hostname"], _pid_alive)


def _start(
    store: Store,
    *,
    runner: str,
    fingerprint: dict[str, Any],
    versions: dict[str, Any],
    params: dict[str, Any],
    model_ref: str | None,
    estimate: dict[str, Any] | None,
) -> int:
    with store.session() as s:
        return BenchRunRepo(s).start(
            runner=runner,
            fingerprint=fingerprint,
            tool_versions=versions,
            params=params,
            model_ref=model_ref,
            estimate=estimate,
            pid=os.getpid(),
            hostname=fingerprint["hostname"],
        )


@dataclass(frozen=True, slots=True)
class LoadPolicy:
    """How a run's load is judged (forgeplanner.measurement.load): the rule's thresholds, whether
    the user keeps the run even if it is noisy (`--accept-load`), and, for runs whose work
    happens outside this process tree, why they are not judged."""

    rule: NoiseRule = DEFAULT_RULE
    accept_load: bool = False
    not_judged_reason: str = ""
    interval_s: float = 1.0


def _load_note(load: dict[str, Any], runner: str) -> str:
    """The run's note when it was noisy (the reasons are in measured["load"])."""
    if not load.get("noisy"):
        return ""
    use = {"builtin": "this machine's bandwidth and compute", "llama.cpp": "`calibrate`"}
    if runner not in use:
        return "noisy run (see its load)"
    if load.get("accepted"):
        return (
            f"noisy run, kept with --accept-load: used by {use[runner]} only while no quiet "
            "run exists"
        )
    return f"noisy run (see its load): not used by {use[runner]}"


def _record(
    store: Store,
    run_id: int,
    work: Callable[[], BenchGen[tuple[dict[str, Any], dict[str, Any] | None, str | None, str]]],
    policy: LoadPolicy | None = None,
    runner: str = "",
) -> BenchGen[RunRecord]:
    """Drive `work` (yielding progress, returning measured, error_pct, raw, message) while
    the load is sampled, store the load and its verdict in measured["load"], and finish the
    run row with ok / cancelled / failed."""
    policy = policy or LoadPolicy()
    sampler = LoadSampler(policy.interval_s).start()
    try:
        measured, err, raw, message = yield from work()
    except Cancelled as exc:
        sampler.close()
        with store.session() as s:
            BenchRunRepo(s).finish(run_id, status="cancelled", message=str(exc))
        raise
    except (ForgePlannerError, OSError, RuntimeError, ValueError) as exc:
        sampler.close()
        with store.session() as s:
            BenchRunRepo(s).finish(run_id, status="failed", message=str(exc))
        raise
    except GeneratorExit:
        sampler.close()
        with store.session() as s:
            BenchRunRepo(s).finish(run_id, status="cancelled", message="stopped by the caller")
        raise
    except BaseException:
        sampler.close()
        raise
    load = load_block(
        sampler.stop(),
        rule=policy.rule,
        spreads=spreads_of(measured),
        judged=not policy.not_judged_reason,
        not_judged_reason=policy.not_judged_reason,
        accepted=policy.accept_load,
    )
    measured = {**measured, "load": load}
    note = _load_note(load, runner)
    message = "; ".join(m for m in (message, note) if m)
    with store.session() as s:
        verdict = verdict_of(measured)
        return BenchRunRepo(s).finish(
            run_id, status="ok", measured=measured, error_pct=err, raw_output=raw,
            message=message, load_verdict=verdict,
            other_cpu_share=load["other_cpu_share"],
        )  # fmt: skip


# ------------------------------------------------------------------------------- built-in


def builtin_estimate(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Before a built-in run: the catalog's bandwidth for this machine, if it has one."""
    from forgeplanner.host import host_this_machine

    host = host_this_machine()
    catalog = host.bandwidth_basis.startswith("catalog")
    return {
        "memory_bandwidth_gbps": host.bandwidth_bytes_per_s / GB
        if catalog and host.bandwidth_bytes_per_s
        else None,
        "basis": host.bandwidth_basis if catalog else "no catalog figure for this machine",
    }


def record_builtin(
    store: Store,
    config: BuiltinConfig | None = None,
    cancel: CancelLike | None = None,
    *,
    load: LoadPolicy | None = None,
) -> BenchGen[RunRecord]:
    config = config or BuiltinConfig()
    fp = machine_fingerprint()
    mark_interrupted(store, fp)
    estimate = builtin_estimate(fp)
    run_id = _start(
        store,
        runner="builtin",
        fingerprint=fp,
        versions=tool_versions(),
        params={"config": {k: getattr(config, k) for k in config.__slots__}},  # type: ignore[attr-defined]
        model_ref=None,
        estimate=estimate,
    )

    def work():
        res = yield from run_builtin(config, cancel)
        measured = res.measured()
        # What decode can stream: the decode simulation reads weights the way token generation
        # does (read-only, layer by layer, all cores, a barrier per layer). The copy kernel
        # (STREAM convention) also counts writes. forgeplanner.host reads this key.
        if res.decode_gbps is not None:
            measured["bandwidth_bytes_per_s"] = res.decode_gbps.median * GB
            measured["bandwidth_basis"] = (
                f"decode simulation over {res.decode_weight_bytes / 2**20:.0f} MiB, "
                f"{res.threads} threads"
            )
        if res.matmul_gflops is not None:
            measured["compute_flops"] = res.matmul_gflops.median * 1e9
        err = {}
        if estimate.get("memory_bandwidth_gbps") and measured.get("memory_bandwidth_gbps"):
            from forgeplanner.bench.stats import error_pct

            err["memory_bandwidth_gbps"] = error_pct(
                estimate["memory_bandwidth_gbps"], measured["memory_bandwidth_gbps"]
            )
        raw = json.dumps(measured, sort_keys=True, indent=1)
        return measured, err or None, raw, ""

    return (yield from _record(store, run_id, work, load, "builtin"))


# ------------------------------------------------------------------------------- llama.cpp


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """What is benchmarked: a GGUF file and the ModelSpec/quant its estimate is made for."""

    gguf_path: Path
    spec: ModelSpec
    quant: str
    synthetic: bool  # True: random weights of the model's shape (`--model ID`)
    note: str = ""


def target_from_gguf(path: str | Path) -> ModelTarget:
    from models_db.importers.gguf_file import import_gguf

    p = Path(path)
    if not p.is_file():
        raise ForgePlannerError(f"GGUF file not found: {p}")
    spec = import_gguf(p)
    quant = spec.gguf_file_type or "unknown"
    return ModelTarget(p, spec, quant, synthetic=False)


def synthetic_gguf_path(model_id: str, quant: str) -> Path:
    from forgeplanner import paths

    return paths.cache_dir() / "synthetic-gguf" / f"{model_id}-{quant}.gguf"


SYNTHETIC_QUANTS = ("F16", "Q8_0", "Q4_0", "F32")


def target_from_model(
    model_id: str,
    quant: str = "Q8_0",
    *,
    max_bytes: int | None = None,
    rpc: tuple[RpcEndpoint, ...] = (),
    binary: str | Path | None = None,
) -> BenchGen[ModelTarget]:
    """A random-weight GGUF with the real shape of a catalog model (cached by id and quant).

    Writing it takes tens of seconds, so first the llama.cpp tool that will run it must be
    there and run (llama-bench answering `--version`: `binary`, else the one found; or
    llama-cpp-python when `rpc` is empty), and with `rpc` the RPC servers must answer: a
    missing piece is one error before any work."""
    from forgeplanner.bench.synthetic_gguf import write_synthetic_gguf
    from models_db import load_models

    check_llamacpp_tools(rpc=bool(rpc), binary=binary)
    if rpc:
        check_rpc_servers(rpc)
    quant = quant.upper()
    if quant not in SYNTHETIC_QUANTS:
        raise ForgePlannerError(
            f"--quant {quant}: synthetic GGUF files can be {', '.join(SYNTHETIC_QUANTS)}"
        )
    spec = load_models().get(model_id)
    path = synthetic_gguf_path(model_id, quant)
    if not path.is_file():
        from forgeplanner.engine.weights import weights_breakdown

        need = weights_breakdown(spec, quant).total_bytes
        import psutil

        free_disk = psutil.disk_usage(str(path.parent.parent)).free
        limit = max_bytes if max_bytes is not None else free_disk // 2
        if need > limit:
            raise ForgePlannerError(
                f"a synthetic {model_id} {quant} file needs {need / GB:.1f} GB; only "
                f"{limit / GB:.1f} GB may be used here. Pick a smaller model or quant, or "
                "benchmark a real file with --gguf PATH"
            )
        yield Progress("synthetic model", None, f"writing {path.name} ({need / GB:.2f} GB)")
        try:
            write_synthetic_gguf(path, spec, quant, seed=0)
        except ValueError as exc:
            raise ForgePlannerError(f"cannot make a synthetic GGUF of {model_id}: {exc}") from exc
    from models_db.importers.gguf_file import import_gguf

    file_spec = import_gguf(path, model_id=spec.id)
    note = (
        f"synthetic random-weight GGUF with the shape of {spec.id} ({quant}); speed depends on "
        "shapes and bytes, not on weight values, but no text quality is measured"
    )
    return ModelTarget(path, file_spec, quant, synthetic=True, note=note)


def record_llamacpp(
    store: Store,
    target: ModelTarget,
    spec: LlamaBenchSpec,
    cancel: CancelLike | None = None,
    *,
    binary: str | Path | None = None,
    timeout: float = 3600.0,
    constants=None,
    host=None,
    load: LoadPolicy | None = None,
) -> BenchGen[RunRecord]:
    from forgeplanner.bench.calibrate import constants_for

    # before a run row is written: the tool (and a cluster's RPC servers) must be there
    tool = check_llamacpp_tools(rpc=bool(spec.rpc), binary=binary)
    if spec.rpc:
        check_rpc_servers(spec.rpc)
    fp = machine_fingerprint()
    mark_interrupted(store, fp)
    host = host or host_for_this_machine(fp, store)
    calibration_note = ""
    if constants is None:
        constants, calibration_note = constants_for(store, fp, "llama.cpp", host)
    est = estimate_for_run(
        target.spec,
        target.quant,
        host,
        prompt_tokens=max(spec.n_prompt) if spec.n_prompt else 512,
        depth=min(spec.depth) if spec.depth else 0,
        flash_attention=spec.flash_attn,  # None = llama-bench's default -fa auto
        constants=constants,
    )
    if calibration_note:
        est["calibration"] = calibration_note
    if spec.rpc:
        est["note"] = (
            "cluster run: the estimate is for this machine alone; RPC splits the layers over "
            "the nodes and adds network transfers"
        )
    params = {
        **spec.to_dict(),
        "model_id": target.spec.id,
        "quant": target.quant,
        "synthetic": target.synthetic,
        "model_spec": model_to_json(target.spec),
    }
    run_id = _start(
        store,
        runner="llama.cpp",
        fingerprint=fp,
        versions=tool_versions(),
        params=params,
        model_ref=str(target.gguf_path),
        estimate=est,
    )

    def work():
        run: LlamaRun = yield from run_llamacpp(spec, cancel, binary=tool.binary, timeout=timeout)
        measured: dict[str, Any] = dict(headline(run.results))
        measured["tests"] = [r.to_dict() for r in run.results]
        measured["tool"] = run.tool
        measured["argv"] = list(run.argv)
        with store.session() as s:  # the tool version is known only now
            from forgeplanner.store import models as m

            row = s.get(m.BenchRun, run_id)
            if row is not None:
                row.tool_versions = {**row.tool_versions, run.tool: run.tool_version}
        notes = list(run.notes)
        if target.note:
            notes.append(target.note)
        err = None if spec.rpc else errors(est, measured)
        return measured, err, run.raw_output, "; ".join(notes)

    return (yield from _record(store, run_id, work, load, "llama.cpp"))


def run_summary(rec: RunRecord) -> dict[str, Any]:
    """The CLI's JSON for one run (stable contract: id, measured, estimate, error_pct,
    fingerprint; builtin runs also flatten their metrics to the top level)."""
    measured = rec.measured or {}
    est = rec.estimate or {}
    out: dict[str, Any] = {
        "id": rec.id,
        "runner": rec.runner,
        "status": rec.status,
        "model": rec.model_ref,
        "started_at": rec.started_at.isoformat(),
        "finished_at": rec.finished_at.isoformat() if rec.finished_at else None,
    }
    if rec.runner == "builtin":
        for k in ("memory_bandwidth_gbps", "copy_gbps", "triad_gbps", "matmul_gflops",
                  "decode_sim_tps", "decode_sim_gbps", "threads", "array_bytes"):  # fmt: skip
            out[k] = measured.get(k)
        out["measured"] = measured
    else:
        out["measured"] = {
            "decode_tps": measured.get("decode_tps"),
            "prefill_tps": measured.get("prefill_tps"),
            "tests": measured.get("tests", []),
        }
    out["estimate"] = {
        **({"decode_tps": est.get("decode_tps"), "prefill_tps": est.get("prefill_tps")}
           if rec.runner != "builtin" else {}),
        **{k: v for k, v in est.items() if k not in ("explain",)},
    }  # fmt: skip
    out["error_pct"] = rec.error_pct or {}
    # the machine's load during the run and its verdict (forgeplanner.measurement.load): `noisy`
    # is None when the load was not recorded (older runs) or not judged (Ollama)
    out["load"] = measured.get("load")
    verdict = verdict_of(measured)
    out["load_verdict"] = verdict
    out["noisy"] = None if verdict in (NOT_RECORDED, NOT_JUDGED) else verdict != QUIET
    out["fingerprint"] = rec.fingerprint
    out["tool_versions"] = rec.tool_versions
    out["params"] = {k: v for k, v in rec.params.items() if k != "model_spec"}
    out["raw_sha256"] = rec.raw_sha256
    out["message"] = rec.message
    return out


# ------------------------------------------------------------------------------- Ollama, MLX


def _model_estimate(model_id: str | None, quant: str | None, runtime: str, store: Store, fp):
    """Estimate for a catalog model (Ollama/MLX names map to catalog ids only when the user
    gives --catalog-model); None when we cannot tell which model and quant it is."""
    if not model_id or not quant:
        return None
    from models_db import load_models

    spec = load_models().get(model_id)
    host = host_for_this_machine(fp, store)
    return estimate_for_run(spec, quant, host, prompt_tokens=512, runtime=runtime)


def record_ollama(
    store: Store,
    spec,
    cancel: CancelLike | None = None,
    *,
    catalog_model: str | None = None,
    quant: str | None = None,
    load: LoadPolicy | None = None,
) -> BenchGen[RunRecord]:
    from forgeplanner.bench.ollama_runner import run_ollama

    fp = machine_fingerprint()
    mark_interrupted(store, fp)
    est = _model_estimate(catalog_model, quant, "ollama", store, fp)
    params = {
        "model": spec.model,
        "url": spec.url,
        "prompt_words": spec.prompt_words,
        "n_gen": spec.n_gen,
        "repetitions": spec.repetitions,
        "catalog_model": catalog_model,
        "quant": quant,
    }
    run_id = _start(
        store,
        runner="ollama",
        fingerprint=fp,
        versions=tool_versions(),
        params=params,
        model_ref=spec.model,
        estimate=est,
    )

    def work():
        run = yield from run_ollama(spec, cancel)
        measured: dict[str, Any] = dict(headline(run.results))
        measured["tests"] = [r.to_dict() for r in run.results]
        measured["memory"] = run.memory
        measured["ollama_version"] = run.version
        return measured, errors(est, measured) if est else None, json.dumps(run.raw, indent=1), ""

    # the model runs in the Ollama server, outside this process tree: its work would count
    # as other processes' load, so the load is recorded but not judged
    policy = replace(
        load or LoadPolicy(),
        not_judged_reason="the model runs in the Ollama server, outside this process tree",
    )
    return (yield from _record(store, run_id, work, policy, "ollama"))


def record_mlx(
    store: Store,
    spec,
    cancel: CancelLike | None = None,
    *,
    catalog_model: str | None = None,
    quant: str | None = None,
    load: LoadPolicy | None = None,
) -> BenchGen[RunRecord]:
    from forgeplanner.bench.mlx_runner import MlxError, mlx_unavailable_reason, run_mlx

    why = mlx_unavailable_reason()
    if why is not None:  # refuse before writing a run row
        raise MlxError(why)
    fp = machine_fingerprint()
    est = _model_estimate(catalog_model, quant, "mlx", store, fp)
    run_id = _start(
        store,
        runner="mlx",
        fingerprint=fp,
        versions=tool_versions(),
        params={"model": spec.model, "n_prompt": spec.n_prompt, "n_gen": spec.n_gen,
                "trials": spec.trials, "catalog_model": catalog_model, "quant": quant},
        model_ref=spec.model,
        estimate=est,
    )  # fmt: skip

    def work():
        run = yield from run_mlx(spec, cancel)
        measured: dict[str, Any] = dict(headline(run.results))
        measured["tests"] = [r.to_dict() for r in run.results]
        return measured, errors(est, measured) if est else None, run.raw_output, ""

    return (yield from _record(store, run_id, work, load, "mlx"))
