"""llama.cpp runner: `llama-bench -o json` (pure argv builder + pure JSON parser + the one
process wrapper), llama-cpp-python as a fallback when llama-bench is absent, and RPC clusters.

Protocol (llama-bench's own, which is good benchmarking practice): a warm-up run per test
(unless --no-warmup), `-r` repetitions, exact prompt lengths (`-p N` evaluates N tokens; no
tokenizer in the way), generation of exactly `-n` tokens (llama-bench feeds tokens, it never
samples, so an end-of-sequence token cannot cut a run short), and `-d` tokens already in the
KV cache before each measurement. We report the median of `samples_ts` and keep the spread.

The fallback (forgeplanner.bench.llamacpp_py) follows the same protocol with llama-cpp-python
and prints the same JSON, so one parser serves both. It runs in a child Python process: a
crash in native code (seen here: ggml's AMX repack path segfaults on this CPU) must not take
the app down, and cancel can stop it like any process.
"""

from __future__ import annotations

import json
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forgeplanner.bench.process import ProcessResult, run_process, tcp_reachable
from forgeplanner.bench.progress import BenchGen, CancelLike, Progress
from forgeplanner.bench.result import BenchResult
from forgeplanner.errors import DataError, ForgePlannerError

RPC_HINT = (
    "start it on that node with `ggml-rpc-server -H <node address> -p <port>` (macOS: "
    "`brew install llama.cpp` provides it; elsewhere build llama.cpp with -DGGML_RPC=ON)"
)
DEFAULT_TIMEOUT_S = 3600.0


class LlamaBenchError(ForgePlannerError):
    pass


@dataclass(frozen=True, slots=True)
class RpcEndpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> RpcEndpoint:
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ForgePlannerError(f"--rpc: '{text}' is not host:port (e.g. 192.168.1.20:50052)")
        return cls(host.strip("[]"), int(port))


def parse_rpc_list(text: str | Sequence[str]) -> tuple[RpcEndpoint, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(RpcEndpoint.parse(i) for i in items if i.strip())


def rpc_server_command(endpoint: RpcEndpoint, threads: int | None = None) -> list[str]:
    """The command to start on each cluster node (argv)."""
    argv = ["ggml-rpc-server", "-H", endpoint.host, "-p", str(endpoint.port)]
    if threads:
        argv += ["-t", str(threads)]
    return argv


@dataclass(frozen=True, slots=True)
class LlamaBenchSpec:
    model_path: str
    n_prompt: tuple[int, ...] = (512,)
    n_gen: tuple[int, ...] = (128,)
    depth: tuple[int, ...] = (0,)
    repetitions: int = 5
    threads: int | None = None
    rpc: tuple[RpcEndpoint, ...] = ()
    tensor_split: tuple[float, ...] = ()
    n_gpu_layers: int | None = None
    flash_attn: bool | None = None
    batch_size: int | None = None
    ubatch_size: int | None = None
    repack: bool | None = None  # None = llama.cpp's default (on)
    warmup: bool = True
    progress: bool = True
    extra_args: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("n_prompt", "n_gen", "depth"):
            vals = getattr(self, name)
            if any(v < 0 for v in vals):
                raise ValueError(f"{name} must be >= 0 tokens, got {vals}")
        if self.repetitions < 1:
            raise ValueError(f"repetitions must be >= 1, got {self.repetitions}")
        if self.tensor_split and self.rpc and len(self.tensor_split) < len(self.rpc):
            raise ValueError(
                f"tensor split {self.tensor_split} has fewer parts than the "
                f"{len(self.rpc)} RPC servers"
            )
        if any(t < 0 for t in self.tensor_split):
            raise ValueError(f"tensor split parts must be >= 0, got {self.tensor_split}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_path": self.model_path,
            "n_prompt": list(self.n_prompt),
            "n_gen": list(self.n_gen),
            "depth": list(self.depth),
            "repetitions": self.repetitions,
            "threads": self.threads,
            "rpc": [str(e) for e in self.rpc],
            "tensor_split": list(self.tensor_split),
            "n_gpu_layers": self.n_gpu_layers,
            "flash_attn": self.flash_attn,
            "repack": self.repack,
            "warmup": self.warmup,
        }


def _csv(values: Sequence[int]) -> str:
    return ",".join(str(v) for v in values)


def llama_bench_argv(binary: str | Path, spec: LlamaBenchSpec) -> list[str]:
    """argv for `llama-bench -o json` (pure)."""
    argv = [str(binary), "-m", spec.model_path, "-o", "json"]
    argv += ["-p", _csv(spec.n_prompt), "-n", _csv(spec.n_gen), "-d", _csv(spec.depth)]
    argv += ["-r", str(spec.repetitions)]
    if spec.threads:
        argv += ["-t", str(spec.threads)]
    if spec.n_gpu_layers is not None:
        argv += ["-ngl", str(spec.n_gpu_layers)]
    if spec.flash_attn is not None:
        argv += ["-fa", "on" if spec.flash_attn else "off"]
    if spec.batch_size:
        argv += ["-b", str(spec.batch_size)]
    if spec.ubatch_size:
        argv += ["-ub", str(spec.ubatch_size)]
    if spec.repack is not None:
        argv += ["--repack", "1" if spec.repack else "0"]
    if spec.rpc:
        argv += ["--rpc", ",".join(str(e) for e in spec.rpc)]
    if spec.tensor_split:
        argv += ["-ts", "/".join(f"{t:g}" for t in spec.tensor_split)]
    if not spec.warmup:
        argv.append("--no-warmup")
    if spec.progress:
        argv.append("--progress")
    argv += list(spec.extra_args)
    return argv


def _int(row: dict[str, Any], key: str, source: str, i: int) -> int:
    v = row.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise DataError(source, f"[{i}].{key}", v, "expected a non-negative integer")
    return v


def _num(row: dict[str, Any], key: str, source: str, i: int) -> float:
    v = row.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != v:
        raise DataError(source, f"[{i}].{key}", v, "expected a non-negative number")
    return float(v)


def parse_llama_bench_json(text: str, source: str = "llama-bench output") -> list[BenchResult]:
    """llama-bench `-o json` (a JSON array of test objects) -> BenchResults (pure)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(source, "(document)", text[:60], f"not JSON: {exc.msg}") from None
    if not isinstance(data, list):
        raise DataError(source, "(document)", type(data).__name__, "expected a JSON array")
    out = []
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(source, f"[{i}]", row, "expected an object")
        n_prompt = _int(row, "n_prompt", source, i)
        n_gen = _int(row, "n_gen", source, i)
        n_depth = _int(row, "n_depth", source, i) if "n_depth" in row else 0
        if n_prompt and n_gen:
            test = "pg"
        elif n_gen:
            test = "tg"
        elif n_prompt:
            test = "pp"
        else:
            raise DataError(source, f"[{i}].n_prompt", 0, "neither prompt nor generation tokens")
        samples = row.get("samples_ts") or []
        if not isinstance(samples, list) or not all(
            isinstance(s, (int, float)) and not isinstance(s, bool) for s in samples
        ):
            raise DataError(source, f"[{i}].samples_ts", samples, "expected a list of numbers")
        size = row.get("model_size")
        params = row.get("model_n_params")
        extra = {
            k: row[k]
            for k in ("model_type", "model_filename", "cpu_info", "gpu_info", "n_gpu_layers",
                      "tensor_split", "flash_attn", "type_k", "type_v", "n_batch", "n_ubatch",
                      "devices", "test_time", "build_number", "repack")
            if k in row
        }  # fmt: skip
        out.append(
            BenchResult(
                test=test,
                n_prompt=n_prompt,
                n_gen=n_gen,
                n_depth=n_depth,
                avg_ts=_num(row, "avg_ts", source, i),
                stddev_ts=_num(row, "stddev_ts", source, i) if "stddev_ts" in row else 0.0,
                samples_ts=tuple(float(s) for s in samples),
                model_size=size if isinstance(size, int) else None,
                model_n_params=params if isinstance(params, int) else None,
                backends=str(row.get("backends", "")),
                build_commit=str(row.get("build_commit", "")),
                n_threads=row.get("n_threads") if isinstance(row.get("n_threads"), int) else None,
                runner=str(row.get("runner", "llama.cpp")),
                extra=extra,
            )
        )
    return out


_PROGRESS = re.compile(r"benchmark (\d+)/(\d+): (.+)$")
_VERSION = re.compile(r"version:\s*(\S+)(?:\s*\(build (\d+), commit (\S+)\))?")


def parse_progress_line(line: str) -> tuple[int, int, str] | None:
    """'llama-bench: benchmark 2/4: generation run 1/5' -> (2, 4, 'generation run 1/5')."""
    m = _PROGRESS.search(line)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), m.group(3).strip()


def parse_version(text: str) -> dict[str, str]:
    """`llama-bench --version` ('version: 0.5.0-dev (build 0, commit unknown)')."""
    m = _VERSION.search(text)
    if m is None:
        return {"version": text.strip().splitlines()[0] if text.strip() else "unknown"}
    out = {"version": m.group(1)}
    if m.group(2) is not None:
        out["build"] = m.group(2)
        out["commit"] = m.group(3)
    return out


def llama_bench_version(binary: str | Path) -> dict[str, str]:
    from forgeplanner.bench.process import run_to_end

    try:
        res = run_to_end([str(binary), "--version"], timeout=30)
    except OSError as exc:
        return {"version": f"unknown ({exc})"}
    return parse_version(res.stdout + res.stderr)


def check_rpc_servers(endpoints: Sequence[RpcEndpoint]) -> None:
    """Refuse early, with the command to run, when an RPC server is not listening."""
    down = []
    for ep in endpoints:
        why = tcp_reachable(ep.host, ep.port)
        if why is not None:
            down.append(f"{ep} ({why})")
    if down:
        raise LlamaBenchError(
            f"RPC server{'s' if len(down) > 1 else ''} not reachable: {', '.join(down)}; "
            + RPC_HINT
        )


@dataclass(frozen=True, slots=True)
class LlamaRun:
    results: tuple[BenchResult, ...]
    raw_output: str
    argv: tuple[str, ...]
    tool: str  # "llama-bench" | "llama-cpp-python"
    tool_version: dict[str, str]
    notes: tuple[str, ...] = ()
    spec: LlamaBenchSpec | None = None


def _count_tests(spec: LlamaBenchSpec) -> int:
    pp = sum(1 for p in spec.n_prompt if p) * len(spec.depth)
    tg = sum(1 for n in spec.n_gen if n) * len(spec.depth)
    return max(1, pp + tg)


def _drive_tool(
    argv: list[str], spec: LlamaBenchSpec, cancel: CancelLike | None, timeout: float, stage: str
) -> BenchGen[ProcessResult]:
    total = _count_tests(spec)
    runs_per_test = spec.repetitions + (1 if spec.warmup else 0)
    gen = run_process(argv, timeout=timeout, cancel=cancel)
    sub = 0
    try:
        while True:
            try:
                line = next(gen)
            except StopIteration as stop:
                return stop.value
            parsed = parse_progress_line(line)
            if parsed is None:
                continue
            i, n, what = parsed
            total = n
            sub = 0 if what == "starting" else min(sub + 1, runs_per_test)
            frac = ((i - 1) + sub / runs_per_test) / max(1, total)
            yield Progress(stage, min(frac, 1.0), f"test {i}/{n}: {what}")
    finally:
        gen.close()


def run_llama_bench(
    binary: str | Path,
    spec: LlamaBenchSpec,
    cancel: CancelLike | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> BenchGen[LlamaRun]:
    """Run real llama-bench; yields progress, returns the parsed run."""
    if not Path(spec.model_path).is_file():
        raise LlamaBenchError(f"model file not found: {spec.model_path}")
    if spec.rpc:
        check_rpc_servers(spec.rpc)
    version = llama_bench_version(binary)
    notes: list[str] = []
    argv = llama_bench_argv(binary, spec)
    yield Progress("llama-bench", 0.0, "loading " + Path(spec.model_path).name)
    res = yield from _drive_tool(argv, spec, cancel, timeout, "llama-bench")
    if res.returncode == -signal.SIGSEGV and spec.repack is None:
        # ggml's CPU "extra buffer" path (AMX / repacked weights) crashes on some CPUs and
        # hypervisors (seen here on a KVM Xeon with AMX). The same measurement without the
        # repacked copy is still llama.cpp's CPU path; say so in the run's notes.
        notes.append(
            "llama-bench crashed (SIGSEGV) with repacked weights (ggml AMX/CPU_REPACK path); "
            "re-ran with --repack 0"
        )
        spec = replace(spec, repack=False)
        argv = llama_bench_argv(binary, spec)
        yield Progress("llama-bench", 0.0, "re-running without weight repacking")
        res = yield from _drive_tool(argv, spec, cancel, timeout, "llama-bench")
    if res.returncode != 0:
        tail = " | ".join(res.stderr.strip().splitlines()[-3:])
        raise LlamaBenchError(
            f"llama-bench exited with {_exit_text(res.returncode)}: {tail or 'no message'}"
        )
    results = parse_llama_bench_json(res.stdout, "llama-bench -o json")
    yield Progress("llama-bench", 1.0, f"{len(results)} tests done")
    return LlamaRun(
        results=tuple(results),
        raw_output=res.stdout,
        argv=res.argv,
        tool="llama-bench",
        tool_version=version,
        notes=tuple(notes),
        spec=spec,
    )


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def llama_cpp_python_version() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def run_llama_cpp_python(
    spec: LlamaBenchSpec,
    cancel: CancelLike | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> BenchGen[LlamaRun]:
    """The fallback: llama-cpp-python (same protocol, same JSON) in a child process."""
    ver = llama_cpp_python_version()
    if ver is None:
        raise LlamaBenchError(
            "neither llama-bench nor llama-cpp-python is available; install llama.cpp "
            "(macOS: `brew install llama.cpp`) or `pip install llama-cpp-python`"
        )
    if spec.rpc:
        from forgeplanner.bench.llamacpp_tools import INSTALL_HINT

        raise LlamaBenchError(
            "RPC clusters need llama-bench (not found; llama-cpp-python cannot drive RPC "
            f"servers): {INSTALL_HINT}"
        )
    if not Path(spec.model_path).is_file():
        raise LlamaBenchError(f"model file not found: {spec.model_path}")
    argv = [sys.executable, "-m", "forgeplanner.bench.llamacpp_py", json.dumps(spec.to_dict())]
    yield Progress("llama-cpp-python", 0.0, "loading " + Path(spec.model_path).name)
    res = yield from _drive_tool(argv, spec, cancel, timeout, "llama-cpp-python")
    if res.returncode != 0:
        tail = " | ".join(res.stderr.strip().splitlines()[-3:])
        raise LlamaBenchError(
            f"llama-cpp-python benchmark exited with {_exit_text(res.returncode)}: {tail}"
        )
    results = parse_llama_bench_json(res.stdout, "llama-cpp-python benchmark")
    return LlamaRun(
        results=tuple(results),
        raw_output=res.stdout,
        argv=res.argv,
        tool="llama-cpp-python",
        tool_version={"version": ver},
        notes=("llama-bench not found: measured with llama-cpp-python in a child process",),
        spec=spec,
    )


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """Which program will run a llama.cpp benchmark."""

    tool: str  # "llama-bench" | "llama-cpp-python"
    binary: Path | None  # llama-bench's path; None for the llama-cpp-python fallback
    version: str = ""  # what `llama-bench --version` answered (llama-cpp-python's version)


def choose_llamacpp_tool(
    llama_bench: Path | None, llama_cpp_python: str | None, *, rpc: bool
) -> ToolChoice:
    """llama-bench when found, else the llama-cpp-python fallback (not for RPC clusters:
    only llama-bench drives RPC servers); one error that says how to install what is missing
    (pure: takes what was found)."""
    from forgeplanner.bench.llamacpp_tools import INSTALL_HINT

    if llama_bench is not None:
        return ToolChoice("llama-bench", llama_bench)
    if rpc:
        raise LlamaBenchError(
            "RPC clusters need llama-bench (not found; llama-cpp-python cannot drive RPC "
            f"servers): {INSTALL_HINT}"
        )
    if llama_cpp_python is None:
        raise LlamaBenchError(
            f"neither llama-bench nor llama-cpp-python is available: {INSTALL_HINT}, or "
            "`pip install llama-cpp-python`"
        )
    return ToolChoice("llama-cpp-python", None, llama_cpp_python)


VERSION_CHECK_TIMEOUT_S = 30.0


def probe_llama_bench(path: Path) -> str:
    """Run `llama-bench --version` and return its version line; LlamaBenchError (one line
    naming the binary and how to get a working one) when it is missing, not executable, or
    does not run (a binary for another CPU, a missing shared library, a wrong file)."""
    import os

    from forgeplanner.bench.llamacpp_tools import INSTALL_HINT
    from forgeplanner.bench.process import ProcessTimeout, run_to_end

    if not path.is_file():
        raise LlamaBenchError(f"llama-bench not found at {path}: {INSTALL_HINT}")
    if not os.access(path, os.X_OK):
        raise LlamaBenchError(f"llama-bench at {path} is not executable: {INSTALL_HINT}")
    try:
        res = run_to_end([str(path), "--version"], timeout=VERSION_CHECK_TIMEOUT_S)
    except (OSError, ProcessTimeout) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise LlamaBenchError(
            f"llama-bench at {path} does not run ({why}): {INSTALL_HINT}"
        ) from exc
    text = (res.stdout + res.stderr).strip()
    if res.returncode != 0 or not _VERSION.search(text):
        last = text.splitlines()[-1][:160] if text else "no output"
        raise LlamaBenchError(
            f"llama-bench at {path} does not run (`--version` exited {res.returncode}: "
            f"{last}): {INSTALL_HINT}"
        )
    return parse_version(text)["version"]


def check_llamacpp_tools(*, rpc: bool = False, binary: str | Path | None = None) -> ToolChoice:
    """What will run the benchmark, checked before anything slow (writing a synthetic model
    takes tens of seconds): a given binary must exist and answer `--version`, else llama-bench
    is looked up ($FORGEPLANNER_LLAMACPP_BIN, PATH, the build cache) and must answer too, else
    llama-cpp-python (not for RPC clusters)."""
    if binary is not None:
        path = Path(binary)
        return ToolChoice("llama-bench", path, probe_llama_bench(path))
    from forgeplanner.bench.llamacpp_tools import find_llamacpp_tool

    choice = choose_llamacpp_tool(
        find_llamacpp_tool("llama-bench"), llama_cpp_python_version(), rpc=rpc
    )
    if choice.binary is not None:
        return ToolChoice(choice.tool, choice.binary, probe_llama_bench(choice.binary))
    return choice


def run_llamacpp(
    spec: LlamaBenchSpec,
    cancel: CancelLike | None = None,
    *,
    binary: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> BenchGen[LlamaRun]:
    """llama-bench when found (or given), else the llama-cpp-python fallback."""
    choice = check_llamacpp_tools(rpc=bool(spec.rpc), binary=binary)
    if choice.binary is None:
        return (yield from run_llama_cpp_python(spec, cancel, timeout=timeout))
    return (yield from run_llama_bench(choice.binary, spec, cancel, timeout=timeout))
