"""Units. Memory is always an int number of bytes.

Two bases, never mixed silently:
- GiB = 2**30 bytes. Apple's "GB" of unified memory is really GiB (a "64 GB" Mac has
  64 * 2**30 bytes), and llama.cpp logs buffer sizes in MiB (2**20).
- GB = 10**9 bytes. Memory *bandwidth* (GB/s) and storage are decimal.
"""

from __future__ import annotations

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
KB = 10**3
MB = 10**6
GB = 10**9


def gib(n: float) -> int:
    """Bytes in `n` GiB (binary), rounded to an int."""
    return round(n * GiB)


def mib(n: float) -> int:
    """Bytes in `n` MiB (binary), rounded to an int."""
    return round(n * MiB)


def to_gib(n_bytes: int) -> float:
    return n_bytes / GiB


def to_mib(n_bytes: int) -> float:
    return n_bytes / MiB


def to_gb(n_bytes: int) -> float:
    """Decimal gigabytes, for bandwidth-style figures only."""
    return n_bytes / GB


def unified_memory_bytes(marketing_gb: int) -> int:
    """Apple sells unified memory in binary units: '64 GB' = 64 GiB."""
    return marketing_gb * GiB


def fmt_gib(n_bytes: int | None, digits: int = 1) -> str:
    if n_bytes is None:
        return "unknown"
    return f"{n_bytes / GiB:.{digits}f} GiB"
