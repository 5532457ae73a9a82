"""Find llama.cpp's command-line tools, or build them from the llama-cpp-python sdist.

On macOS users get `llama-bench` and `ggml-rpc-server` from Homebrew (`brew install llama.cpp`).
On Linux (and in CI) no binary package carries them, but the llama-cpp-python sdist on PyPI
ships the full llama.cpp tree under `vendor/llama.cpp/`; we configure it with CMake and build
only the tools we run (about 8 minutes on 2 cores), once, into a cache directory keyed by the
llama.cpp version and the CPU, because a native build may use instructions another CPU lacks.

Search order for a tool: $FORGEPLANNER_LLAMACPP_BIN, the PATH, the build cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from forgeplanner import paths
from forgeplanner.errors import ForgePlannerError

# The sdist whose vendored llama.cpp we build. Same version as the test extra's
# llama-cpp-python, so the in-process fallback and the CLI tools are one llama.cpp.
LLAMA_CPP_PYTHON_VERSION = "0.3.36"

TOOLS: tuple[str, ...] = ("llama-bench", "ggml-rpc-server", "llama-fit-params")
_ALIASES: dict[str, tuple[str, ...]] = {"ggml-rpc-server": ("ggml-rpc-server", "rpc-server")}

# Checked on this machine kind (shared/guide/LLAMACPP.md): RPC on, no curl, no tests,
# examples or server; static libraries so the cached binaries are self-contained.
CMAKE_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_RPC=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
)

INSTALL_HINT = (
    "install llama.cpp (macOS: `brew install llama.cpp`), put its tools on PATH or set "
    "FORGEPLANNER_LLAMACPP_BIN, or build them with `python scripts/build_llamacpp_tools.py`"
)


class ToolNotFound(ForgePlannerError):
    def __init__(self, name: str) -> None:
        super().__init__(f"llama.cpp tool '{name}' not found; {INSTALL_HINT}")


def _cpu_key() -> str:
    """A short hash of the CPU model and flags: a native build is only valid on such CPUs."""
    text = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(("model name", "flags", "Features")):
                    text += line
                if line.strip() == "":
                    break  # the first CPU is enough
    except OSError:
        text += platform.processor()
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def build_dir() -> Path:
    return paths.tools_cache_dir() / f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}-{_cpu_key()}"


def cached_bin_dir() -> Path | None:
    bin_dir = build_dir() / "bin"
    if all((bin_dir / t).is_file() for t in TOOLS):
        return bin_dir
    return None


def find_llamacpp_tool(name: str) -> Path | None:
    """Path of a llama.cpp tool, or None when it is nowhere to be found."""
    names = _ALIASES.get(name, (name,))
    override = os.environ.get("FORGEPLANNER_LLAMACPP_BIN")
    if override:
        for n in names:
            candidate = Path(override) / n
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    for n in names:
        found = shutil.which(n)
        if found:
            return Path(found)
    cached = cached_bin_dir()
    if cached is not None:
        for n in names:
            candidate = cached / n
            if candidate.is_file():
                return candidate
    return None


def require_llamacpp_tool(name: str) -> Path:
    found = find_llamacpp_tool(name)
    if found is None:
        raise ToolNotFound(name)
    return found


def _download_sdist(dest: Path, log: Callable[[str], None]) -> Path:
    log(f"downloading llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} sdist from PyPI")
    argv = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--disable-pip-version-check", "-d", str(dest),
        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
    ]  # fmt: skip
    subprocess.run(argv, check=True, timeout=1800, stdout=subprocess.DEVNULL)
    archives = sorted(dest.glob("llama_cpp_python-*.tar.gz"))
    if not archives:
        raise ForgePlannerError(f"pip download left no sdist in {dest}")
    return archives[0]


def _extract_llamacpp(archive: Path, dest: Path) -> Path:
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/vendor/llama.cpp/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(dest, members=members, filter="data")
    return dest / prefix


def build_llamacpp_tools(log: Callable[[str], None] = print, jobs: int | None = None) -> Path:
    """Build (or reuse) the tools; returns the bin directory. Safe to call concurrently:
    a file lock serialises builds, and the result appears atomically."""
    target = build_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / (target.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cached = cached_bin_dir()
        if cached is not None:
            return cached
        with tempfile.TemporaryDirectory(dir=target.parent, prefix="build-") as tmp:
            work = Path(tmp)
            archive = _download_sdist(work, log)
            src = _extract_llamacpp(archive, work / "src")
            build = work / "build"
            log(f"configuring llama.cpp in {build}")
            subprocess.run(
                ["cmake", "-S", str(src), "-B", str(build), *CMAKE_FLAGS],
                check=True, timeout=600, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            n = str(jobs or os.cpu_count() or 2)
            log(f"building {', '.join(TOOLS)} with {n} jobs (about 8 minutes on 2 cores)")
            subprocess.run(
                ["cmake", "--build", str(build), "--config", "Release", "-j", n,
                 "--target", *TOOLS],
                check=True, timeout=3600, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            staged = work / "result"
            (staged / "bin").mkdir(parents=True)
            for tool in TOOLS:
                shutil.copy2(build / "bin" / tool, staged / "bin" / tool)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staged, target)
        log(f"llama.cpp tools ready in {target / 'bin'}")
        return target / "bin"
