"""The built-in runner: memory bandwidth, matrix multiply, decode simulation. numpy only.

Memory bandwidth follows STREAM's conventions (McCalpin, https://www.cs.virginia.edu/stream/
ref.html): copy `a[i] = b[i]` counts 16 bytes per element (8 read + 8 written), triad
`a[i] = b[i] + s*c[i]` counts 24; write-allocate traffic is not counted. Each array must be
well beyond the last-level cache, otherwise we measure the cache.

All cores take part: one Python thread per logical CPU, each owning a contiguous slice of the
arrays (first-touched by that thread), released together by a barrier. numpy's copy and ufunc
loops release the GIL, so the threads really run in parallel.

The triad runs in L2-sized blocks: numpy has no fused multiply-add ufunc, and doing
`a = s*c` then `a += b` over whole arrays would move 5 arrays' worth of data instead of 3; in
blocks the intermediate stays in cache and memory sees STREAM's traffic.

The decode simulation does what token generation does to memory: every weight byte is read
once per token by matrix-vector products, layer by layer (float32 weights, OpenBLAS gemv).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forgeplanner.bench.progress import BenchGen, CancelLike, Progress, check
from forgeplanner.bench.stats import Spread
from forgeplanner.domain.units import GB, MiB

COPY_BYTES_PER_ELEMENT = 16  # STREAM: 8 read + 8 written (float64)
TRIAD_BYTES_PER_ELEMENT = 24  # STREAM: 16 read + 8 written
TRIAD_BLOCK = 64 * 1024  # float64 elements: 3 blocks = 1.5 MiB, inside a 2 MiB L2
TRIAD_SCALAR = 3.0


def last_level_cache_bytes() -> int | None:
    """Largest CPU cache on Linux (sysfs). None elsewhere (macOS does not expose the SLC)."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    best = None
    try:
        for idx in base.glob("index*"):
            text = (idx / "size").read_text().strip()
            mult = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
            num = int(text[:-1]) if text[-1:].isalpha() else int(text)
            size = num * mult
            best = size if best is None else max(best, size)
    except (OSError, ValueError):
        return None
    return best


def default_array_bytes() -> int:
    """Per-array size: at least the last-level cache (so copy's two arrays are twice it),
    at least 256 MiB, at most an eighth of the available memory."""
    import psutil

    llc = last_level_cache_bytes() or 0
    want = max(256 * MiB, llc)
    cap = max(64 * MiB, psutil.virtual_memory().available // 8)
    return int(min(want, cap))


@dataclass(frozen=True, slots=True)
class BuiltinConfig:
    array_bytes: int | None = None  # per STREAM array; None = default_array_bytes()
    repetitions: int = 7
    warmup: int = 1
    threads: int | None = None  # every kernel; None = every logical CPU
    matmul_n: int = 2048
    matmul_repetitions: int = 5
    decode_weight_bytes: int = 256 * MiB  # "sized like the model": set from the model
    decode_layers: int = 24
    decode_hidden: int = 1024
    decode_tokens: int = 8
    kernels: tuple[str, ...] = ("copy", "triad", "matmul", "decode")

    def resolved_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    def resolved_array_bytes(self) -> int:
        return self.array_bytes or default_array_bytes()


@dataclass(frozen=True, slots=True)
class BuiltinResult:
    threads: int
    array_bytes: int
    copy_gbps: Spread | None = None
    triad_gbps: Spread | None = None
    matmul_gflops: Spread | None = None
    decode_tps: Spread | None = None
    decode_gbps: Spread | None = None
    decode_weight_bytes: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    def measured(self) -> dict[str, Any]:
        """Flat metrics as stored with the run and printed as JSON."""

        def med(s: Spread | None) -> float | None:
            return None if s is None else s.median

        return {
            "memory_bandwidth_gbps": med(self.copy_gbps),
            "copy_gbps": med(self.copy_gbps),
            "triad_gbps": med(self.triad_gbps),
            "matmul_gflops": med(self.matmul_gflops),
            "decode_sim_tps": med(self.decode_tps),
            "decode_sim_gbps": med(self.decode_gbps),
            "decode_sim_weight_bytes": self.decode_weight_bytes,
            "threads": self.threads,
            "array_bytes": self.array_bytes,
            "spread": {
                k: v.to_dict()
                for k, v in (
                    ("copy_gbps", self.copy_gbps),
                    ("triad_gbps", self.triad_gbps),
                    ("matmul_gflops", self.matmul_gflops),
                    ("decode_sim_tps", self.decode_tps),
                )
                if v is not None
            },
        }


class _Team:
    """`n` threads that each run `kernel(index)` on their own slice, started together.
    Timing covers release-to-last-finish, like STREAM's timing of the whole parallel loop."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._start = threading.Barrier(n + 1)
        self._done = threading.Barrier(n + 1)
        self._kernel: Callable[[int], None] | None = None
        self._errors: list[BaseException] = []
        self._stop = False
        self._threads = [
            threading.Thread(target=self._loop, args=(i,), daemon=True, name=f"fp-bench-{i}")
            for i in range(n)
        ]
        for t in self._threads:
            t.start()

    def _loop(self, i: int) -> None:
        while True:
            self._start.wait()
            if self._stop:
                return
            try:
                assert self._kernel is not None
                self._kernel(i)
            except BaseException as exc:  # surfaced by run()
                self._errors.append(exc)
            self._done.wait()

    def run(self, kernel: Callable[[int], None]) -> float:
        self._kernel = kernel
        t0 = time.perf_counter()
        self._start.wait()
        self._done.wait()
        elapsed = time.perf_counter() - t0
        if self._errors:
            raise self._errors[0]
        return elapsed

    def close(self) -> None:
        self._stop = True
        self._start.wait()
        for t in self._threads:
            t.join()


def _slices(n_elements: int, parts: int) -> list[slice]:
    bounds = np.linspace(0, n_elements, parts + 1).astype(int)
    return [slice(int(bounds[i]), int(bounds[i + 1])) for i in range(parts)]


def _triad_block(a: np.ndarray, b: np.ndarray, c: np.ndarray, sl: slice) -> None:
    for start in range(sl.start, sl.stop, TRIAD_BLOCK):
        stop = min(start + TRIAD_BLOCK, sl.stop)
        ab, bb, cb = a[start:stop], b[start:stop], c[start:stop]
        np.multiply(cb, TRIAD_SCALAR, out=ab)
        np.add(ab, bb, out=ab)


def stream_kernels(
    config: BuiltinConfig, cancel: CancelLike | None = None, *, base_fraction: float = 0.0,
    span: float = 1.0,
) -> BenchGen[dict[str, Spread]]:  # fmt: skip
    """Copy and triad across all cores; returns {"copy": Spread(GB/s), "triad": ...}."""
    threads = config.resolved_threads()
    n = config.resolved_array_bytes() // 8
    kernels = [k for k in ("copy", "triad") if k in config.kernels]
    if not kernels:
        return {}
    need_c = "triad" in kernels
    a = np.empty(n, dtype=np.float64)
    b = np.empty(n, dtype=np.float64)
    c = np.empty(n, dtype=np.float64) if need_c else None
    parts = _slices(n, threads)
    team = _Team(threads)
    out: dict[str, Spread] = {}
    try:
        # First touch by the owning thread (pages land on its NUMA node).
        def init(i: int) -> None:
            sl = parts[i]
            a[sl] = 1.0
            b[sl] = 2.0
            if c is not None:
                c[sl] = 0.5

        team.run(init)
        steps = len(kernels) * (config.warmup + config.repetitions)
        done = 0
        for name in kernels:
            if name == "copy":

                def kernel(i: int) -> None:
                    np.copyto(a[parts[i]], b[parts[i]])

                per_el = COPY_BYTES_PER_ELEMENT
            else:

                def kernel(i: int) -> None:
                    _triad_block(a, b, c, parts[i])  # type: ignore[arg-type]

                per_el = TRIAD_BYTES_PER_ELEMENT
            samples = []
            for rep in range(config.warmup + config.repetitions):
                check(cancel)
                elapsed = team.run(kernel)
                done += 1
                gbps = per_el * n / elapsed / GB
                if rep >= config.warmup:
                    samples.append(gbps)
                yield Progress(
                    stage=f"memory {name}",
                    fraction=base_fraction + span * done / steps,
                    message=f"{gbps:.1f} GB/s" + (" (warm-up)" if rep < config.warmup else ""),
                    metric=f"{name}_gbps",
                    value=gbps,
                )
            out[name] = Spread.of(samples)
        # Sanity: the kernels really computed (guards against a silently broken slice).
        if "triad" in kernels and not np.allclose(a[:: max(1, n // 97)], 2.0 + TRIAD_SCALAR * 0.5):
            raise RuntimeError("triad produced wrong values")
    finally:
        team.close()
        pass
    return out


def _blas_child(
    config: BuiltinConfig, args: dict[str, Any], cancel: CancelLike | None, tag: str
) -> BenchGen[dict[str, Any]]:
    """Run a BLAS kernel (forgeplanner.bench.decode_sim) in a child process with the BLAS
    thread count set to `threads`; yields the per-step values it prints."""
    import json
    import sys

    from forgeplanner.bench.process import run_process

    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "MKL_NUM_THREADS"):  # fmt: skip
        env[var] = str(config.resolved_threads())
    argv = [sys.executable, "-m", "forgeplanner.bench.decode_sim", json.dumps(args)]
    gen = run_process(argv, timeout=3600, cancel=cancel, env=env)
    try:
        while True:
            try:
                line = next(gen)
            except StopIteration as stop:
                res = stop.value
                break
            if line.startswith(tag + " "):
                yield float(line.split()[1])  # type: ignore[misc]
    finally:
        gen.close()
    if res.returncode != 0:
        raise RuntimeError(f"{args.get('kernel')} kernel failed: {res.stderr.strip()[-300:]}")
    return json.loads(res.stdout)


def matmul(
    config: BuiltinConfig, cancel: CancelLike | None = None, *, base_fraction: float = 0.0,
    span: float = 1.0,
) -> BenchGen[Spread]:  # fmt: skip
    """float32 GEMM through numpy's BLAS on `threads` cores: 2 n^3 FLOP per product."""
    args = {"kernel": "matmul", "n": config.matmul_n, "warmup": config.warmup,
            "repetitions": config.matmul_repetitions}  # fmt: skip
    total = config.warmup + config.matmul_repetitions
    gen = _blas_child(config, args, cancel, "gflops")
    done = 0
    while True:
        try:
            gflops = next(gen)
        except StopIteration as stop:
            out = stop.value
            break
        done += 1
        yield Progress(
            stage="matmul",
            fraction=base_fraction + span * done / total,
            message=f"{gflops:.1f} GFLOP/s",
            metric="matmul_gflops",
            value=gflops,
        )
    return Spread.of(out["gflops"])


def decode_simulation(
    config: BuiltinConfig, cancel: CancelLike | None = None, *, base_fraction: float = 0.0,
    span: float = 1.0,
) -> BenchGen[tuple[Spread, Spread]]:  # fmt: skip
    """Matrix-vector products over a float32 weight buffer of `decode_weight_bytes`, split in
    `decode_layers` layers; one "token" reads every weight once, layer after layer, each
    layer's input being the previous layer's output. Returns (tokens/s, GB/s of weights).

    The products go through numpy's BLAS (sgemv) on `threads` cores, in a child process
    (see _blas_child). Our own thread team was tried and rejected: numpy.einsum does not
    scale past one core, blocked multiply+reduce is 2-3x slower than sgemv."""
    args = {
        "weight_bytes": config.decode_weight_bytes,
        "layers": config.decode_layers,
        "hidden": config.decode_hidden,
        "tokens": config.decode_tokens,
        "warmup": config.warmup,
    }
    total = config.warmup + config.decode_tokens
    mib = decode_sim_bytes(config) / 2**20
    gen = _blas_child(config, args, cancel, "token")
    done = 0
    while True:
        try:
            tps = next(gen)
        except StopIteration as stop:
            out = stop.value
            break
        done += 1
        yield Progress(
            stage="decode simulation",
            fraction=base_fraction + span * done / total,
            message=f"{tps:.1f} tok/s over {mib:.0f} MiB",
            metric="decode_sim_tps",
            value=tps,
        )
    return Spread.of(out["tps"]), Spread.of(out["gbps"])


def decode_sim_bytes(config: BuiltinConfig) -> int:
    """Bytes the decode simulation really streams per token (rows rounded to whole rows)."""
    h, layers = config.decode_hidden, config.decode_layers
    rows = max(h, config.decode_weight_bytes // (4 * h * layers))
    return rows * h * 4 * layers


def run_builtin(
    config: BuiltinConfig | None = None, cancel: CancelLike | None = None
) -> BenchGen[BuiltinResult]:
    """The whole built-in suite as one progress generator."""
    config = config or BuiltinConfig()
    threads = config.resolved_threads()
    array_bytes = config.resolved_array_bytes()
    config_used = BuiltinConfig(
        **{**_asdict(config), "threads": threads, "array_bytes": array_bytes}
    )
    weights = {"stream": 0.55, "matmul": 0.2, "decode": 0.25}
    streams: dict[str, Spread] = {}
    mm = None
    dec = None
    pos = 0.0
    yield Progress("start", 0.0, f"{threads} threads, {array_bytes / MiB:.0f} MiB per array")
    if {"copy", "triad"} & set(config.kernels):
        streams = yield from stream_kernels(
            config_used, cancel, base_fraction=pos, span=weights["stream"]
        )
    pos += weights["stream"]
    if "matmul" in config.kernels:
        mm = yield from matmul(config_used, cancel, base_fraction=pos, span=weights["matmul"])
    pos += weights["matmul"]
    if "decode" in config.kernels:
        dec = yield from decode_simulation(
            config_used, cancel, base_fraction=pos, span=weights["decode"]
        )
    yield Progress("done", 1.0, "built-in suite finished")
    return BuiltinResult(
        threads=threads,
        array_bytes=array_bytes,
        copy_gbps=streams.get("copy"),
        triad_gbps=streams.get("triad"),
        matmul_gflops=mm,
        decode_tps=dec[0] if dec else None,
        decode_gbps=dec[1] if dec else None,
        decode_weight_bytes=decode_sim_bytes(config_used) if dec else 0,
        config=_asdict(config_used),
    )


def _asdict(config: BuiltinConfig) -> dict[str, Any]:
    return {f: getattr(config, f) for f in BuiltinConfig.__slots__}  # type: ignore[attr-defined]
