"""Measure and fit llama.cpp's CPU-backend decode constants on this machine.

    .venv/bin/python scripts/calibrate_cpu_backend.py measure [--passes 2] [--quick]
    .venv/bin/python scripts/calibrate_cpu_backend.py fit [--check]

`measure` appends rows to scripts/calibration_data/cpu_runs.csv: real `llama-bench` decode
(tg, no prompt) of random-weight GGUFs written with forgeplanner.bench.synthetic_gguf in
several llama shapes (none of them the qwen2.5-0.5b acceptance shape), F16/Q8_0/Q4_0, 1 and 2
threads, each beside the built-in runner's decode simulation (float32 sgemv streaming a buffer
sized like the model, same thread count) and float32 matmul at the same thread count.
Configurations alternate (shuffled order per pass, several passes); every row records the load
average and the CPU share other processes took while it ran, so rows taken under load can be
discarded by the fit.

`fit` reads the CSV, discards loaded rows, takes the median per configuration, fits the
CPU-backend constants of forgeplanner.engine.speed (least squares on relative error,
non-negative), cross-validates leaving one shape out, writes
forgeplanner/engine/speed_constants_cpu.py, and regenerates docs/calibration.md (its
"CPU backend (llama.cpp)" section is rendered by scripts/calibration_doc.py from this fit).

The model fitted (per decoded token; see forgeplanner/engine/speed.py, cpu_constants):

    t = R x a_bw / BW_sim + N x d_q / F_mm + L x (tau_layer + tau_sync x (threads - 1))

R = bytes read per token (engine's weights_read_per_token), BW_sim = decode-simulation
bandwidth, N = parameters, F_mm = float32 matmul FLOP/s, L = layers. One x86-64 host only.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
CSV_PATH = ROOT / "scripts" / "calibration_data" / "cpu_runs.csv"
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
            mm = {t: measure_matmul(t) for t in THREADS}
            for i, (shape, quant, threads) in enumerate(order):
                path = paths[(shape, quant)]
                target = target_from_gguf(path)
                spec = target.spec
                probe = LoadProbe()
                probe.start()
                sim, sim_bytes = measure_sim(path, spec, threads)
                run, tg = measure_llama(path, quant, threads, n_gen)
                load0, load1, foreign = probe.stop()
                ver = run.tool_version  # type: ignore[attr-defined]
                row = {
                    "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "machine": summary,
                    "fingerprint_key": fp["key"],
                    "tool_version": f"llama-bench {ver.get('version', '?')}"
                    f" ({ver.get('commit', ver.get('build', ''))})".replace(" ()", ""),
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
                    "matmul_gflops": round(statistics.median([mm[threads], mm[threads]]), 3),
                    "load1_before": round(load0, 2),
                    "load1_after": round(load1, 2),
                    "foreign_cpu": round(foreign, 3),
                    "acceptance": int(shape is None),
                }
                w.writerow(row)
                f.flush()
                print(
                    f"pass {p} [{i + 1}/{len(order)}] {row['shape']} {quant} t={threads}: "
                    f"tg {row['tg_tps']} tok/s, sim {row['sim_gbps']} GB/s, "
                    f"mm {row['matmul_gflops']} GFLOPS, foreign {row['foreign_cpu']}",
                    flush=True,
                )


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
    a = ap.parse_args(argv)
    if a.cmd == "measure":
        measure(a.passes, a.quick, not a.no_acceptance, a.n_gen)
        return 0
    return fit_main(check=a.check)


def fit_main(check: bool) -> int:
    raise NotImplementedError


if __name__ == "__main__":
    sys.exit(main())
