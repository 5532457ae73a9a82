"""likwid-bench, the reference our built-in copy bandwidth is checked against.

Only the argv builder and the parser of its text report live here (pure); the side-by-side
comparison is `benchmarks/bench_copy_vs_likwid.py`. likwid counts bytes the STREAM way for
`copy` ("Load bytes per element: 8", "Store bytes per elem.: 8") and prints decimal MByte/s.
"""

from __future__ import annotations

import re

from forgeplanner.errors import ForgePlannerError

INSTALL_HINT = "Debian/Ubuntu: `apt-get install likwid`; see https://github.com/RRZE-HPC/likwid"

_MBYTES = re.compile(r"^MByte/s:\s*([0-9.]+)\s*$", re.MULTILINE)
_SIZE = re.compile(r"^Size \(Byte\):\s*([0-9]+)\s*$", re.MULTILINE)
_THREADS = re.compile(r"^Using ([0-9]+) threads\s*$", re.MULTILINE)


def likwid_bench_argv(
    binary: str, test: str, working_set_bytes: int, threads: int, domain: str = "N"
) -> list[str]:
    """`likwid-bench -t TEST -w DOMAIN:SIZE:THREADS`. The size is the total working set of
    all the test's streams (copy: two arrays), in decimal kB as likwid reads it."""
    if threads <= 0:
        raise ValueError(f"threads must be >= 1, got {threads}")
    size_kb = max(1, working_set_bytes // 1000)
    return [binary, "-t", test, "-w", f"{domain}:{size_kb}kB:{threads}"]


def parse_likwid_bench(text: str) -> dict[str, float]:
    """-> {"gbps": decimal GB/s, "size_bytes": ..., "threads": ...} from likwid-bench's report."""
    m = _MBYTES.search(text)
    if m is None:
        raise ForgePlannerError(
            "likwid-bench output has no 'MByte/s:' line; first lines were: "
            + " | ".join(text.strip().splitlines()[:3])
        )
    out = {"gbps": float(m.group(1)) / 1000.0}
    if (s := _SIZE.search(text)) is not None:
        out["size_bytes"] = float(s.group(1))
    if (t := _THREADS.search(text)) is not None:
        out["threads"] = float(t.group(1))
    return out
