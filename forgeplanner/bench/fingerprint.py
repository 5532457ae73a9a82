"""Machine fingerprint and tool versions, stored with every run.

The fingerprint says which machine a run was on (so calibrations apply to the same machine
only): psutil + platform everywhere; on macOS also sysctl's chip name, memory size, macOS
version, `iogpu.wired_limit_mb` and the GPU core count (forgeplanner.host.probe_this_machine
reads the I/O registry for it).

`key` identifies the machine across runs: a hash of the hardware fields that do not change
between reboots (not the load, not the free memory, not the OS patch level).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

KEY_FIELDS = ("hostname", "system", "machine", "cpu_brand", "cpu_physical", "cpu_logical",
              "memory_bytes", "gpu_cores")  # fmt: skip


def _linux_cpu_brand() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine_fingerprint() -> dict[str, Any]:
    import psutil

    from forgeplanner.host import probe_this_machine

    facts = probe_this_machine()
    fp: dict[str, Any] = {
        "hostname": facts.get("hostname") or platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_brand": facts.get("cpu_brand") or platform.processor(),
        "cpu_physical": psutil.cpu_count(logical=False),
        "cpu_logical": psutil.cpu_count(logical=True),
        "memory_bytes": int(facts.get("memory_bytes") or psutil.virtual_memory().total),
        "memory_available_bytes": int(psutil.virtual_memory().available),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "gpu_cores": facts.get("gpu_cores"),
        "macos_version": facts.get("macos_version"),
        "wired_limit_mb": facts.get("wired_limit_mb"),
        "p_cores": facts.get("p_cores"),
        "python": platform.python_version(),
    }
    if fp["system"] == "Linux":
        fp["cpu_brand"] = _linux_cpu_brand() or fp["cpu_brand"]
        fp["distro"] = _linux_distro()
    try:
        freq = psutil.cpu_freq()
        fp["cpu_max_mhz"] = round(freq.max, 1) if freq and freq.max else None
    except (OSError, NotImplementedError, FileNotFoundError):
        fp["cpu_max_mhz"] = None
    fp["key"] = fingerprint_key_of(fp)
    return fp


def _linux_distro() -> str | None:
    try:
        info = platform.freedesktop_os_release()
    except OSError:
        return None
    return info.get("PRETTY_NAME")


def fingerprint_key_of(fp: dict[str, Any]) -> str:
    stable = {k: fp.get(k) for k in KEY_FIELDS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:32]


def _pkg(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def tool_versions(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions of what produced a run (the app, Python, numpy and BLAS, runtimes)."""
    import numpy as np

    from forgeplanner import __version__

    out: dict[str, Any] = {
        "forgeplanner": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # type: ignore[index]
        out["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # show_config's layout differs across numpy versions; optional info
        out["blas"] = None
    for pkg in ("llama-cpp-python", "ollama", "mlx-lm"):
        v = _pkg(pkg)
        if v:
            out[pkg] = v
    if extra:
        out.update(extra)
    return out


def describe(fp: dict[str, Any]) -> str:
    """One line for tables: 'hostname: CPU, 2 cores, 24 GiB'."""
    mem = fp.get("memory_bytes")
    mem_s = f"{mem / 2**30:.0f} GiB" if isinstance(mem, int) else "? GiB"
    gpu = f", {fp['gpu_cores']}-core GPU" if fp.get("gpu_cores") else ""
    return (
        f"{fp.get('hostname', '?')}: {fp.get('cpu_brand', '?')}, "
        f"{fp.get('cpu_logical', '?')} threads{gpu}, {mem_s}"
    )
