"""Measure and fit llama.cpp's CPU-backend decode constants on this machine.

    .venv/bin/python -m forgeplanner.calibration.cpu_backend measure [--passes 2] [--quick]
    .venv/bin/python -m forgeplanner.calibration.cpu_backend fit [--check]

`measure` appends rows to forgeplanner/calibration/data/cpu_runs.csv: real `llama-bench` decode
(tg, no prompt) of random-weight GGUFs written with forgeplanner.bench.synthetic_gguf in
several llama shapes (none of them the qwen2.5-0.5b acceptance shape), F16/Q8_0/Q4_0, 1 and 2
threads, each beside the built-in runner's decode simulation (float32 sgemv streaming a buffer
sized like the model, same thread count) and float32 matmul at the same thread count.
Configurations alternate (shuffled order per pass, several passes); every row records the load
average and the CPU share other processes took while it ran, so rows taken under load can be
discarded by the fit.

`fit` reads the CSV, discards loaded rows, takes the median per configuration, fits the
CPU-backend constants of forgeplanner.engine.speed (least squares on relative error,
non-negative) once per CPU kind (the vector extensions that decide ggml's kernels: AVX-512
or AVX2), cross-validates leaving one shape out and across the kinds (constants of one CPU
kind on the other's runs), writes forgeplanner/engine/speed_constants_cpu.py, and regenerates
docs/cpu-backend.md.

The model fitted (per decoded token; see forgeplanner/engine/speed.py, cpu_constants):

    t = R x a_bw / BW_sim + N x d_q / F_mm + L x (tau_layer + tau_sync x (threads - 1))

R = bytes read per token (engine's weights_read_per_token), BW_sim = decode-simulation
bandwidth, N = parameters, F_mm = float32 matmul FLOP/s, L = layers. One x86-64 host per kind.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forgeplanner.calibration.generated import ruff_format

ROOT = Path(__file__).resolve().parents[2]
CSV_PATH = Path(__file__).resolve().parent / "data" / "cpu_runs.csv"
DOC_MD = ROOT / "docs" / "cpu-backend.md"
CONSTANTS_PY = ROOT / "forgeplanner" / "engine" / "speed_constants_cpu.py"
GGUF_DIR = Path.home() / ".cache" / "ForgePlanner" / "cpu-calibration"

QUANTS = ("F16", "Q8_0", "Q4_0")
THREADS = (1, 2)
# A row is discarded when other processes took more than this share of the CPUs while it ran
# (on 2 shared cores, llama.cpp's spinning barriers collapse when a core is taken away).
MAX_FOREIGN_CPU = 0.25

FIELDS = [
    "date_utc", "machine", "fingerprint_key", "tool_version", "pass", "shape", "n_layers",
    "hidden", "ffn", "n_heads", "n_kv_heads", "vocab", "tied", "quant", "threads", "repack",
    "file_bytes", "n_params", "tg_tokens", "tg_tps", "tg_samples", "sim_gbps", "sim_bytes",
    "matmul_gflops", "load1_before", "load1_after", "foreign_cpu", "acceptance",
    "read_bytes", "active_params",
]  # fmt: skip


@dataclass(frozen=True)
class Shape:
    name: str
    n_layers: int
    hidden: int
    ffn: int
    n_heads: int
    n_kv_heads: int
    vocab: int
    tied: bool


# Llama-shaped decoders spanning the sizes and proportions of small models; the qwen2.5-0.5b
# shape (24 x 896, ffn 4864, vocab 151936, tied) is deliberately absent: it is the held-out
# acceptance check.
SHAPES: tuple[Shape, ...] = (
    Shape("s150m-untied", 12, 768, 2048, 12, 4, 32000, False),
    Shape("s250m-tied", 16, 1024, 2816, 16, 8, 50000, True),
    Shape("s100m-deep-tied", 32, 512, 1536, 8, 2, 16000, True),
    Shape("s600m-wide-untied", 8, 2048, 8192, 16, 4, 32000, False),
    Shape("s1b-llama-untied", 22, 2048, 5632, 32, 4, 32000, False),
)
QUICK_SHAPES = ("s150m-untied", "s250m-tied", "s100m-deep-tied")


def machine_summary() -> str:
    """CPU model (from /proc/cpuinfo: generic under KVM, so add the family/model and the
    ISA features that decide ggml's kernels), cores, memory."""
    import platform

    import psutil

    info: dict[str, str] = {}
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            k, _, v = line.partition(":")
            k = k.strip()
            if k in ("model name", "cpu family", "model") and k not in info:
                info[k] = v.strip()
            if k == "flags" and not flags:
                flags = set(v.split())
    except OSError:
        pass
    isa = "/".join(f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if f in flags)
    name = info.get("model name") or platform.processor() or platform.machine()
    fam = f"family {info['cpu family']} model {info['model']}" if "model" in info else ""
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{name} ({fam}, {isa}), {psutil.cpu_count(logical=False)} cores / "
        f"{psutil.cpu_count()} threads, {mem:.0f} GiB, {platform.system()} {platform.machine()}"
    )


def _busy_jiffies() -> float:
    """Busy CPU time of the whole machine, seconds (from /proc/stat; steal excluded)."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [float(x) for x in parts]
    user, nice, system, _idle, _iowait, irq, softirq = vals[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class LoadProbe:
    """Share of the CPUs used by *other* processes between start() and stop()."""

    def start(self) -> None:
        self.t0, self.busy0, self.own0 = time.perf_counter(), _busy_jiffies(), _own_cpu()
        self.load0 = os.getloadavg()[0]

    def stop(self) -> tuple[float, float, float]:
        wall = time.perf_counter() - self.t0
        busy = _busy_jiffies() - self.busy0
        own = _own_cpu() - self.own0
        foreign = max(0.0, busy - own) / max(1e-9, wall * (os.cpu_count() or 1))
        return self.load0, os.getloadavg()[0], foreign


def wait_for_quiet(threads: int, max_wait_s: float = 90.0) -> float:
    """Wait (at most max_wait_s) until other processes leave the cores this run needs idle,
    judged over 2-second windows; returns the seconds waited. The row is still classified
    afterwards from what happened while it ran."""
    n = os.cpu_count() or 2
    allowed = (n - threads) / n + 0.05
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait_s:
        b0, w0 = _busy_jiffies(), time.perf_counter()
        time.sleep(2.0)
        foreign = (_busy_jiffies() - b0) / ((time.perf_counter() - w0) * n)
        if foreign <= allowed:
            break
    return time.perf_counter() - t0


def gguf_for(shape: Shape | None, quant: str) -> Path:
    from forgeplanner.bench.synthetic_gguf import SyntheticShape, write_synthetic_gguf

    GGUF_DIR.mkdir(parents=True, exist_ok=True)
    if shape is None:  # the acceptance shape
        from models_db import load_models

        path = GGUF_DIR / f"qwen2.5-0.5b-{quant}.gguf"
        if not path.exists():
            write_synthetic_gguf(path, load_models().get("qwen2.5-0.5b"), quant)
        return path
    path = GGUF_DIR / f"{shape.name}-{quant}.gguf"
    if not path.exists():
        syn = SyntheticShape(
            n_layers=shape.n_layers, hidden_size=shape.hidden, intermediate_size=shape.ffn,
            n_heads=shape.n_heads, n_kv_heads=shape.n_kv_heads, vocab_size=shape.vocab,
            tie_word_embeddings=shape.tied, name=shape.name,
        )  # fmt: skip
        write_synthetic_gguf(path, syn, quant)
    return path


def measure_matmul(threads: int) -> float:
    from forgeplanner.bench.builtin import BuiltinConfig, matmul
    from forgeplanner.bench.progress import drive

    cfg = BuiltinConfig(kernels=("matmul",), threads=threads, matmul_repetitions=3)
    return drive(matmul(cfg), bar=False).median


def measure_sim(path: Path, spec, threads: int) -> tuple[float, int]:
    """Decode simulation sized like the model file, as the estimate's bandwidth is measured."""
    from forgeplanner.bench.builtin import BuiltinConfig, decode_sim_bytes, decode_simulation
    from forgeplanner.bench.progress import drive

    cfg = BuiltinConfig(
        kernels=("decode",), threads=threads, decode_weight_bytes=path.stat().st_size,
        decode_hidden=spec.hidden_size, decode_layers=spec.n_layers, decode_tokens=4,
    )  # fmt: skip
    _tps, gbps = drive(decode_simulation(cfg), bar=False)
    return gbps.median, decode_sim_bytes(cfg)


def measure_llama(path: Path, quant: str, threads: int, n_gen: int) -> tuple[object, object]:
    from forgeplanner.bench.llamacpp import LlamaBenchSpec, run_llama_bench
    from forgeplanner.bench.llamacpp_tools import find_llamacpp_tool
    from forgeplanner.bench.progress import drive

    binary = find_llamacpp_tool("llama-bench")
    if binary is None:
        raise SystemExit("llama-bench not found: run scripts/build_llamacpp_tools.py")
    # Q8_0/Q4_0: ggml's AMX repack path segfaults on this CPU; F16 runs llama.cpp's default
    spec = LlamaBenchSpec(
        str(path), n_prompt=(0,), n_gen=(n_gen,), repetitions=3, threads=threads,
        repack=None if quant == "F16" else False, progress=False,
    )  # fmt: skip
    run = drive(run_llama_bench(binary, spec), bar=False)
    (tg,) = [r for r in run.results if r.test == "tg"]
    return run, tg


def measure(passes: int, quick: bool, acceptance: bool, n_gen: int) -> None:
    from forgeplanner.bench.fingerprint import machine_fingerprint
    from forgeplanner.bench.session import target_from_gguf

    shapes = [s for s in SHAPES if not quick or s.name in QUICK_SHAPES]
    configs: list[tuple[Shape | None, str, int]] = [
        (s, q, t) for s in shapes for q in QUANTS for t in THREADS
    ]
    if acceptance:
        configs += [(None, q, t) for q in ("F16", "Q8_0") for t in THREADS]
    print(f"writing {len({(c[0], c[1]) for c in configs})} GGUF files to {GGUF_DIR}", flush=True)
    paths = {(s, q): gguf_for(s, q) for s, q, _ in configs}
    fp = machine_fingerprint()
    summary = machine_summary()
    CSV_PATH.parent.mkdir(parents=True, exist_ok=True)
    new = not CSV_PATH.exists()
    rng = random.Random(int(time.time()))
    with CSV_PATH.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        for p in range(passes):
            order = configs[:]
            rng.shuffle(order)
            for i, (shape, quant, threads) in enumerate(order):
                path = paths[(shape, quant)]
                target = target_from_gguf(path)
                spec = target.spec
                waited = wait_for_quiet(threads)
                probe = LoadProbe()
                probe.start()
                # the three measurements back to back, as a built-in run precedes a bench run
                mm = {threads: measure_matmul(threads)}
                sim, sim_bytes = measure_sim(path, spec, threads)
                run, tg = measure_llama(path, quant, threads, n_gen)
                load0, load1, foreign = probe.stop()
                ver = run.tool_version  # type: ignore[attr-defined]
                row = {
                    "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "machine": summary,
                    "fingerprint_key": fp["key"],
                    "tool_version": f"llama-bench {ver.get('version', '?')} "
                    f"({Path(run.argv[0]).parent.parent.name})",  # type: ignore[attr-defined]
                    "pass": p,
                    "shape": shape.name if shape else "qwen2.5-0.5b",
                    "n_layers": spec.n_layers,
                    "hidden": spec.hidden_size,
                    "ffn": spec.intermediate_size,
                    "n_heads": spec.n_heads,
                    "n_kv_heads": spec.n_kv_heads,
                    "vocab": spec.vocab_size,
                    "tied": int(bool(spec.tie_word_embeddings)),
                    "quant": quant,
                    "threads": threads,
                    "repack": "default" if run.spec.repack is None else int(run.spec.repack),  # type: ignore[attr-defined]
                    "file_bytes": path.stat().st_size,
                    "n_params": tg.model_n_params,
                    "tg_tokens": tg.n_gen,
                    "tg_tps": round(tg.median_ts, 4),
                    "tg_samples": " ".join(f"{x:.3f}" for x in tg.samples_ts),
                    "sim_gbps": round(sim, 4),
                    "sim_bytes": sim_bytes,
                    "matmul_gflops": round(mm[threads], 3),
                    "load1_before": round(load0, 2),
                    "load1_after": round(load1, 2),
                    "foreign_cpu": round(foreign, 3),
                    "acceptance": int(shape is None),
                }
                read, n_par = engine_quantities(row)
                row["read_bytes"], row["active_params"] = int(read), int(n_par)
                w.writerow(row)
                f.flush()
                print(
                    f"pass {p} [{i + 1}/{len(order)}] {row['shape']} {quant} t={threads}: "
                    f"tg {row['tg_tps']} tok/s, sim {row['sim_gbps']} GB/s, "
                    f"mm {row['matmul_gflops']} GFLOPS, foreign {row['foreign_cpu']}, "
                    f"waited {waited:.0f} s",
                    flush=True,
                )


def enrich() -> int:
    """Add the engine's read_bytes / active_params to rows measured without them, so the fit
    needs only the CSV (not the GGUF files in the cache)."""
    import io

    rows = read_rows()
    for r in rows:
        if not r.get("read_bytes") or not r.get("active_params"):
            read, n_par = engine_quantities(r)
            r["read_bytes"], r["active_params"] = str(int(read)), str(int(n_par))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows({k: r.get(k, "") for k in FIELDS} for r in rows)
    atomic_write(CSV_PATH, buf.getvalue())
    print(f"{len(rows)} rows in {CSV_PATH.relative_to(ROOT)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="run llama-bench and the built-in kernels, append rows")
    m.add_argument("--passes", type=int, default=2)
    m.add_argument("--quick", action="store_true", help="three small shapes only")
    m.add_argument("--no-acceptance", action="store_true", help="skip the qwen2.5-0.5b rows")
    m.add_argument("--n-gen", type=int, default=16)
    fitp = sub.add_parser("fit", help="fit the constants, write them and the doc")
    fitp.add_argument("--check", action="store_true", help="fit and print; write nothing")
    sub.add_parser("enrich", help="add the engine quantities to rows measured without them")
    a = ap.parse_args(argv)
    if a.cmd == "enrich":
        return enrich()
    if a.cmd == "measure":
        measure(a.passes, a.quick, not a.no_acceptance, a.n_gen)
        return 0
    return fit_main(check=a.check)


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------

PARAMS = ("a_bw", "d_float", "d_q8", "d_legacy4", "tau_layer", "tau_sync")
QCLASS = {"F16": "float", "Q8_0": "q8", "Q4_0": "legacy4"}


def read_rows(path: Path = CSV_PATH) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def usable(row: dict[str, str]) -> tuple[bool, str]:
    """Rows where other processes needed the cores llama.cpp ran on are discarded: the share
    of the CPUs others took must fit in the cores this run left idle, plus a small margin."""
    n = os.cpu_count() or 2
    threads = int(row["threads"])
    idle_share = (n - threads) / n
    foreign = float(row["foreign_cpu"])
    if foreign > idle_share + 0.10:
        return False, f"other processes took {foreign:.0%} of the CPUs ({threads} thread run)"
    return True, ""


def engine_quantities(row: dict[str, str]) -> tuple[float, float]:
    """(bytes read per token, parameters per token) as the engine computes them for the GGUF
    (exact tensors), the quantities an estimate uses; from the CSV when recorded."""
    if row.get("read_bytes") and row.get("active_params"):
        return float(row["read_bytes"]), float(row["active_params"])
    from forgeplanner.bench.session import target_from_gguf
    from forgeplanner.engine.speed import weights_read_per_token

    shape = next((s for s in SHAPES if s.name == row["shape"]), None)
    spec = target_from_gguf(gguf_for(shape, row["quant"])).spec
    read, _total = weights_read_per_token(spec, row["quant"])
    return read, float(spec.active_params)


def cpu_kind(machine: str) -> str:
    """The CPU kind of a row's machine summary ('<name> (<family/model>, <ISA flags>), ...'):
    "avx512" when it has AVX-512F, else "avx2" when it has AVX2, else "other". ggml picks its
    CPU dot-product kernels by these extensions (ggml-cpu's arch-specific quants code), so a
    kind's constants transfer to CPUs of the same kind better than across kinds."""
    isa = machine.partition("), ")[0]
    if "avx512f" in isa:
        return "avx512"
    return "avx2" if "avx2" in isa else "other"


@dataclass(frozen=True)
class Point:
    kind: str
    shape: str
    quant: str
    threads: int
    acceptance: bool
    t_meas: float  # s/token, median over passes
    n_rows: int
    features: dict[str, float]
    sim_gbps: float
    matmul_gflops: float
    tg_tps: float


def points(rows: list[dict[str, str]]) -> tuple[list[Point], list[tuple[dict[str, str], str]]]:
    """Median per configuration over the usable rows; and the discarded rows with why."""
    groups: dict[tuple[str, str, int], list[dict[str, str]]] = {}
    dropped = []
    for r in rows:
        ok, why = usable(r)
        if not ok:
            dropped.append((r, why))
            continue
        key = (cpu_kind(r["machine"]), r["shape"], r["quant"], int(r["threads"]))
        groups.setdefault(key, []).append(r)
    cache: dict[tuple[str, str], tuple[float, float]] = {}
    out = []
    for (kind, shape, quant, threads), rs in sorted(groups.items()):
        key = (shape, quant)
        if key not in cache:
            cache[key] = engine_quantities(rs[0])
        read, n_par = cache[key]
        tps = statistics.median(float(r["tg_tps"]) for r in rs)
        bw = statistics.median(float(r["sim_gbps"]) for r in rs) * 1e9
        mm = statistics.median(float(r["matmul_gflops"]) for r in rs) * 1e9
        layers = float(rs[0]["n_layers"])
        feats = {p: 0.0 for p in PARAMS}
        feats["a_bw"] = read / bw
        feats["d_" + QCLASS[quant]] = n_par / mm
        feats["tau_layer"] = layers
        feats["tau_sync"] = layers * (threads - 1)
        out.append(
            Point(
                kind,
                shape,
                quant,
                threads,
                rs[0].get("acceptance") == "1",
                1.0 / tps,
                len(rs),
                feats,
                bw / 1e9,
                mm / 1e9,
                tps,
            )
        )
    return out, dropped


def fit_points(pts: list[Point]) -> dict[str, float]:
    return nnls_relative([p.features for p in pts], [p.t_meas for p in pts], PARAMS)


def predict_tps(coefs: dict[str, float], p: Point) -> float:
    return 1.0 / sum(coefs[k] * v for k, v in p.features.items())


def err_pct(coefs: dict[str, float], p: Point) -> float:
    return 100.0 * (predict_tps(coefs, p) - p.tg_tps) / p.tg_tps


@dataclass(frozen=True)
class CpuFit:
    kind: str
    coefs: dict[str, float]
    train: list[Point]
    acceptance: list[Point]
    in_sample: dict[tuple[str, str, int], float]
    held_out: dict[tuple[str, str, int], float]  # leave one shape out
    dropped: list[tuple[dict[str, str], str]]
    rows: list[dict[str, str]]

    @staticmethod
    def mape(errs) -> float:
        errs = list(errs)
        return statistics.mean(abs(e) for e in errs) if errs else float("nan")

    def acceptance_errors(self) -> dict[tuple[str, str, int], float]:
        return {(p.shape, p.quant, p.threads): err_pct(self.coefs, p) for p in self.acceptance}


def run_fits(rows: list[dict[str, str]] | None = None) -> dict[str, CpuFit]:
    """One fit per CPU kind with rows, keyed by kind."""
    rows = rows if rows is not None else read_rows()
    kinds = sorted({cpu_kind(r["machine"]) for r in rows} - {"other"})
    return {k: run_fit([r for r in rows if cpu_kind(r["machine"]) == k], k) for k in kinds}


def cross_kind_errors(fits: dict[str, CpuFit]) -> dict[tuple[str, str], list[float]]:
    """(constants' kind, runs' kind) -> decode errors % of every configuration (training shapes
    and the acceptance shape) of the runs' kind estimated with the other kind's constants:
    what an uncalibrated estimate is worth on a CPU kind that was never measured."""
    out: dict[tuple[str, str], list[float]] = {}
    for a, fa in fits.items():
        for b, fb in fits.items():
            if a != b:
                out[(a, b)] = [err_pct(fa.coefs, p) for p in fb.train + fb.acceptance]
    return out


def run_fit(rows: list[dict[str, str]], kind: str) -> CpuFit:
    pts, dropped = points(rows)
    train = [p for p in pts if not p.acceptance]
    acc = [p for p in pts if p.acceptance]
    coefs = fit_points(train)
    ins = {(p.shape, p.quant, p.threads): err_pct(coefs, p) for p in train}
    held: dict[tuple[str, str, int], float] = {}
    for shape in sorted({p.shape for p in train}):
        c = fit_points([p for p in train if p.shape != shape])
        for p in train:
            if p.shape == shape:
                held[(p.shape, p.quant, p.threads)] = err_pct(c, p)
    return CpuFit(kind, coefs, train, acc, ins, held, dropped, rows)


def fit_summary(f: CpuFit) -> dict[str, object]:
    """What the generated constants module and the doc record."""
    rows = f.rows
    return {
        "machine": rows[0]["machine"],
        "tool": rows[0]["tool_version"],
        "dates": (min(r["date_utc"] for r in rows)[:10], max(r["date_utc"] for r in rows)[:10]),
    }


def cpu_model_label(machine: str) -> str:
    """Short host label for the basis string: '<cpu model> (<family/model>, <ISA>), N cores'."""
    head, _, rest = machine.partition("), ")
    name, _, inner = head.partition(" (")
    fam, _, isa = inner.partition(", ")
    short = "AVX-512" if "avx512f" in isa else ("AVX2" if "avx2" in isa else "")
    if "amx_int8" in isa:
        short += "/AMX"
    cores = rest.split(" / ")[0]
    return f"{name} ({', '.join(x for x in (fam, short) if x)}), {cores}"


KIND_LABEL = {"avx512": "AVX-512", "avx2": "AVX2 (no AVX-512)"}


def constants_errors(f: CpuFit, cross: dict[tuple[str, str], list[float]]) -> dict[str, float]:
    errs = {
        "in-sample decode MAPE %": round(f.mape(f.in_sample.values()), 2),
        "leave one shape out: decode MAPE %": round(f.mape(f.held_out.values()), 2),
        "leave one shape out: decode max abs %": round(
            max((abs(v) for v in f.held_out.values()), default=float("nan")), 2
        ),
    }
    for (shape, quant, threads), e in sorted(f.acceptance_errors().items()):
        errs[f"held-out {shape} {quant} {threads}t: decode error %"] = round(e, 2)
    for (a, b), es in sorted(cross.items()):
        if a == f.kind:
            errs[f"on the {b} host's runs (another CPU kind): decode MAPE %"] = round(f.mape(es), 2)
    return errs


def _constants_literal(f: CpuFit, cross: dict[tuple[str, str], list[float]]) -> str:
    s = fit_summary(f)
    c = f.coefs
    return f"""CpuBackendConstants(
        kind={f.kind!r},
        a_bw={c["a_bw"]!r},
        dequant={{"float": {c["d_float"]!r}, "q8": {c["d_q8"]!r}, "legacy4": {c["d_legacy4"]!r}}},
        tau_layer_s={c["tau_layer"]!r},
        tau_sync_s={c["tau_sync"]!r},
        measured_on={cpu_model_label(str(s["machine"]))!r},
        fit_date={s["dates"][1]!r},
        tool={s["tool"]!r},
        errors={constants_errors(f, cross)!r},
    )"""


def render_constants_module(fits: dict[str, CpuFit]) -> str:
    import textwrap

    cross = cross_kind_errors(fits)
    parts = []
    for f in fits.values():
        s = fit_summary(f)
        parts.append(
            f"{KIND_LABEL.get(f.kind, f.kind)}: {len(f.train)} configurations "
            f"({sum(p.n_rows for p in f.train)} usable rows) on ONE host ({s['machine']}), "
            f"{s['tool']}, measured {s['dates'][0]}..{s['dates'][1]}."  # type: ignore[index]
        )
    head = (
        "Fitted per CPU kind on forgeplanner/calibration/data/cpu_runs.csv: real llama-bench "
        "decode of random-weight GGUFs. " + " ".join(parts) + " A host uses the constants of its "
        "own kind; a CPU of a kind without runs (the 2012 Intel Mac minis' AVX) or of unknown "
        "kind uses the AVX2 ones, labelled so; `forgeplanner calibrate` on the user's own runs "
        "replaces them. Formula: forgeplanner/engine/speed.py (CpuBackendConstants); "
        "fit and errors: docs/cpu-backend.md."
    )
    doc = "\n".join(textwrap.wrap(head, 96))
    body = ",\n    ".join(f"{k!r}: {_constants_literal(f, cross)}" for k, f in fits.items())
    return f'''"""llama.cpp CPU-backend decode constants. GENERATED FILE - do not edit by hand.

Regenerate with:  .venv/bin/python scripts/calibrate_cpu_backend.py fit
{doc}
"""

from forgeplanner.engine.speed import CpuBackendConstants

CPU_BACKENDS: dict[str, CpuBackendConstants] = {{
    {body},
}}
'''


def print_fit(f: CpuFit) -> None:
    c = f.coefs
    print(f"== {KIND_LABEL.get(f.kind, f.kind)}")
    print("constants:", {k: (f"{v * 1e6:.1f} us" if k.startswith("tau") else f"{v:.4f}")
                          for k, v in c.items()})  # fmt: skip
    print(f"rows: {len(f.rows)}, discarded {len(f.dropped)}; configurations {len(f.train)}")
    for p in f.train:
        k = (p.shape, p.quant, p.threads)
        print(f"  {p.shape:20s} {p.quant:5s} {p.threads}t n={p.n_rows} tg {p.tg_tps:7.2f} "
              f"sim {p.sim_gbps:5.1f} mm {p.matmul_gflops:5.0f}  in {f.in_sample[k]:+6.1f} % "
              f"held-out {f.held_out[k]:+6.1f} %")  # fmt: skip
    print(f"MAPE in-sample {f.mape(f.in_sample.values()):.1f} %, "
          f"leave-one-shape-out {f.mape(f.held_out.values()):.1f} %")  # fmt: skip
    for p in f.acceptance:
        print(f"  acceptance {p.shape} {p.quant} {p.threads}t n={p.n_rows}: real {p.tg_tps:.2f}, "
              f"estimate {predict_tps(c, p):.2f} ({err_pct(c, p):+.1f} %)")  # fmt: skip


def fit_main(check: bool) -> int:
    fits = run_fits()
    for f in fits.values():
        print_fit(f)
    for (a, b), es in sorted(cross_kind_errors(fits).items()):
        print(f"{a} constants on {b} runs: decode MAPE {CpuFit.mape(es):.1f} %, "
              f"median {statistics.median(es):+.1f} %")  # fmt: skip
    if check:
        return 0
    atomic_write(CONSTANTS_PY, render_constants_module(fits))
    ruff_format(CONSTANTS_PY)
    atomic_write(DOC_MD, render_cpu_doc(fits))
    print(f"wrote {CONSTANTS_PY.relative_to(ROOT)} and {DOC_MD.relative_to(ROOT)}")
    return 0


def nnls_relative(
    rows: Sequence[dict[str, float]], times: Sequence[float], names: Sequence[str]
) -> dict[str, float]:
    """Minimise sum(((A x - t) / t)^2) with x >= 0; columns with no data get 0."""
    a = np.array([[r[n] for n in names] for r in rows], dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    w = 1.0 / t
    aw = a * w[:, None]
    tw = t * w
    # scale columns so lstsq is well conditioned (bytes/BW ~1e-2, FLOPs/F ~1e-3, 1.0 ...)
    scale = np.abs(aw).max(axis=0)
    active = scale > 0
    scale[~active] = 1.0
    x = np.zeros(len(names))
    for _ in range(len(names) + 1):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        sol, *_ = np.linalg.lstsq(aw[:, idx] / scale[idx], tw, rcond=None)
        sol = sol / scale[idx]
        if (sol >= 0).all():
            x[:] = 0.0
            x[idx] = sol
            break
        active[idx[np.argmin(sol)]] = False
    return dict(zip(names, (float(v) for v in x), strict=True))


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename (no half-written file)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pct(x: float) -> str:
    return f"{x:+.1f} %"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def render_cpu_doc(fits: dict[str, CpuFit] | None = None) -> str:
    """The CPU-backend page, from data/cpu_runs.csv through this module's fits (the same fits
    that wrote forgeplanner/engine/speed_constants_cpu.py)."""
    fits = fits if fits is not None else run_fits()
    cross = cross_kind_errors(fits)
    out: list[str] = ["# CPU backend (llama.cpp) decode constants", ""]
    add = out.append
    add(
        "Generated by `python -m forgeplanner.calibration.cpu_backend fit` from "
        "`forgeplanner/calibration/data/cpu_runs.csv` (measure more: the same module's "
        "`measure`); constants: `forgeplanner/engine/speed_constants_cpu.py`; formula: "
        "`CpuBackendConstants` in `forgeplanner/engine/speed.py`. Used for every CPU host "
        "(Intel Mac minis, Linux/Windows machines) until the user's own `forgeplanner calibrate` "
        "replaces them; the estimate's basis says which."
    )
    add("")
    add(
        "On a CPU, llama.cpp's decode kernels do not stream at the bandwidth a BLAS mat-vec "
        "reaches: `ggml_vec_dot_f16` converts every half-float, Q8_0/Q4_0 weights are dotted "
        "with activations quantized to q8_0 per token (integer dot products on the vector "
        "units), and every op ends at a thread barrier. Fitted per decoded token:"
    )
    add("")
    add("```")
    add("t_decode = R x a_bw / BW + N x d_q / F + L x (tau_layer + tau_sync x (threads - 1))")
    add("R  = bytes read per token (the engine's weights_read_per_token for the GGUF)")
    add("BW = ForgePlanner's measured bandwidth: built-in decode simulation (float32 sgemv over")
    add("     a buffer sized like the model), same thread count")
    add("N  = parameters per token; F = built-in float32 matmul FLOP/s, same thread count")
    add("L  = layers; threads = llama.cpp threads (default: the physical cores)")
    add("```")
    add("")
    add(
        "The constants are fitted **per CPU kind**: ggml chooses its dot-product kernels by the "
        "CPU's vector extensions, and the ratio of those kernels' speed to float32 matmul "
        "differs between kinds. A host uses its own kind's constants: this machine reads its "
        "CPU flags; the catalog's Intel Mac minis take their kind from the CPU model (AVX2 on "
        "the 2014 and 2018 models, whose constants come from an AMD host, not an Intel one; "
        "AVX on the 2012 models, a kind with no runs, so the AVX2 constants, the nearest). "
        "A host whose extensions are not known also gets the AVX2 constants, and the basis "
        "says which and why."
    )
    add("")
    if len(fits) > 1:
        add("What an uncalibrated estimate is worth on a CPU kind that was never measured: each "
            "kind's constants on the other kind's runs (every configuration, training shapes "
            "and the acceptance shape):")  # fmt: skip
        add("")
        rows = [
            [KIND_LABEL.get(a, a), KIND_LABEL.get(b, b), str(len(es)),
             f"{CpuFit.mape(es):.1f} %", _pct(statistics.median(es)),
             f"{max(abs(e) for e in es):.1f} %"]
            for (a, b), es in sorted(cross.items())
        ]  # fmt: skip
        add(_table(["constants of", "runs of", "configurations", "decode MAPE",
                    "median error", "max abs"], rows))  # fmt: skip
        add("")
        add(
            "These errors are large: the per-weight cost of a kind's kernels does not follow "
            "from float32 matmul alone. That is why the estimate uses a host's own kind and why "
            "`forgeplanner calibrate` on the user's own runs (a few minutes) is the step that "
            "makes a CPU estimate trustworthy."
        )
        add("")
    for f in fits.values():
        out.extend(_kind_section(f))
    add(
        "The slow test `tests/bench/test_llamacpp_real.py::test_estimate_with_measured_bandwidth_"
        "is_within_20pct_of_real_decode_on_a_0_5b_model` repeats the acceptance check through the "
        "product path (built-in run, then `bench run llama.cpp`'s stored estimate, `-p 16 -n 64`, "
        "one thread) on whatever CPU runs the tests and asserts 20 %, uncalibrated and "
        "calibrated. On a shared machine real decode drifts by about 5 % within an hour "
        "(other guests share the memory system) more than the decode simulation beside it does."
    )
    add("")
    add("Limitations:")
    add("")
    for line in (
        "One host per kind (2-vCPU KVM guests): a_bw and d_q describe those hosts' kernels; "
        "another CPU's own `forgeplanner calibrate` replaces them.",
        "Intel Mac minis have no measured bandwidth or matmul: their estimates use the catalog "
        "peak bandwidth and cores x clock x FLOPs/cycle, where these constants expect measured "
        "figures (measured values are lower), so those estimates lean optimistic.",
        "tau_sync is fitted on 1 and 2 threads and extrapolated linearly to more threads.",
        "Prefill on CPU is not fitted here; it keeps the GPU fit's compute efficiencies.",
        "Models that fit in the last-level cache (the small Q4_0 files here) run partly from "
        "cache; BW_sim is measured with a buffer of the same size, so it sees the same effect.",
    ):
        add(f"- {line}")
    return "\n".join(out) + "\n"


def _kind_section(f: CpuFit) -> list[str]:
    s = fit_summary(f)
    c = f.coefs
    out: list[str] = []
    add = out.append
    add(f"## {KIND_LABEL.get(f.kind, f.kind)}")
    add("")
    dates = s["dates"]
    add(
        f"Host: {s['machine']}; {s['tool']}; measured {dates[0]}"  # type: ignore[index]
        + (f"..{dates[1]}" if dates[1] != dates[0] else "")  # type: ignore[index]
        + "."
    )
    add("")
    shapes = sorted({(p.shape) for p in f.train})
    add(
        f"Protocol: random-weight GGUFs (`write_synthetic_gguf`) in {len(shapes)} llama shapes "
        f"({', '.join(f'`{x}`' for x in shapes)}; tied and untied, 8..32 layers, hidden "
        "512..2048), F16 / Q8_0 / Q4_0 (Q8_0 and Q4_0 with `--repack 0`: ggml's AMX repack "
        "path segfaults on the AMX host), 1 and 2 threads; `llama-bench -p 0 -n 16 -r 3`, each "
        "run right after the built-in matmul and decode simulation (sized like the file) at the "
        "same thread count, as `bench run builtin` precedes `bench run llama.cpp`; "
        "configurations shuffled per pass, several passes, medians per configuration. "
        f"The machine was shared: each row records the load average and the CPU share other "
        f"processes took while it ran; {len(f.dropped)} of {len(f.rows)} rows were discarded "
        "because other processes needed the cores llama.cpp ran on (share above the idle "
        "cores' share + 10 points)."
    )
    add("")
    add(_table(
        ["constant", "value", "meaning"],
        [
            ["a_bw", f"{c['a_bw']:.3f}", "inverse efficiency vs the decode-simulation bandwidth"],
            ["d_float", f"{c['d_float']:.2f}", "F16: FLOP-equivalents of matmul time per weight"],
            ["d_q8", f"{c['d_q8']:.2f}", "Q8_0 (q8_0 x q8_0 dot)"],
            ["d_legacy4", f"{c['d_legacy4']:.2f}",
             "Q4_0 (q4_0 x q8_0 dot); K-/I-quants, MXFP4 use it (no CPU runs)"],
            ["tau_layer", f"{c['tau_layer'] * 1e6:.1f} us", "per layer per token, one thread"],
            ["tau_sync", f"{c['tau_sync'] * 1e6:.1f} us", "per layer per token per extra thread"],
        ],
    ))  # fmt: skip
    add("")
    ins, held = f.in_sample, f.held_out
    add(
        f"Errors (decode tokens/s, % of the measurement): in-sample MAPE "
        f"{f.mape(ins.values()):.1f} %, leave one shape out MAPE {f.mape(held.values()):.1f} % "
        f"(max {max((abs(v) for v in held.values()), default=float('nan')):.1f} %)."
    )
    add("")
    rows = []
    for p in f.train:
        k = (p.shape, p.quant, p.threads)
        rows.append([p.shape, p.quant, str(p.threads), str(p.n_rows), f"{p.tg_tps:.2f}",
                     f"{p.sim_gbps:.1f}", f"{p.matmul_gflops:.0f}", _pct(ins[k]),
                     _pct(held[k])])  # fmt: skip
    add(_table(["shape", "quant", "threads", "runs", "decode t/s (median)", "BW_sim GB/s",
                "matmul GFLOPS", "in-sample", "leave shape out"], rows))  # fmt: skip
    add("")
    add(
        "Acceptance check, not in the fit: the qwen2.5-0.5b shape (24 x 896, vocab 151936, "
        "tied), same protocol:"
    )
    add("")
    acc = [
        [p.quant, str(p.threads), str(p.n_rows), f"{p.tg_tps:.2f}",
         f"{predict_tps(c, p):.2f}", _pct(err_pct(c, p))]
        for p in f.acceptance
    ]  # fmt: skip
    add(_table(["quant", "threads", "runs", "real decode t/s", "estimate t/s", "error"], acc))
    add("")
    return out


if __name__ == "__main__":
    sys.exit(main())
