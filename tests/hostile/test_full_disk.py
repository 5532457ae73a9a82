"""A full disk: every export format, `sweep --out` and a plan edit fail with one line, and the
good file that was there before is left exactly as it was, with no temporary file behind.

The disk is a real one: a 4 MiB tmpfs mounted in a private mount namespace (`unshare`), so the
test needs no loop device and leaves nothing mounted on the machine. As root `unshare
--mount` is enough; otherwise a user namespace maps the caller to root inside it (tmpfs may
be mounted there). The scenario runs the real CLI in that namespace and reports as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "70b-home-lab.fplan"

SCENARIO = r"""
import contextlib, json, os, subprocess, sys
from pathlib import Path

disk, example = Path(sys.argv[1]), Path(sys.argv[2])
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)

from forgeplanner.cli.main import main

def run(argv):
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()

results = {}
plan = disk / "lab.fplan"
plan.write_bytes(example.read_bytes())
outputs = {f: disk / f"report.{f}" for f in ("md", "html", "csv", "xlsx", "json")}
for fmt, out in outputs.items():  # good files first, while there is room
    code, err = run(["export", str(plan), "--format", fmt, "--out", str(out), "--no-db"])
    assert code == 0, err
for name in ("sweep.csv", "sweep.parquet"):
    (disk / name).write_bytes(b"the previous sweep\n")
before = {p.name: p.read_bytes() for p in disk.iterdir() if p.is_file()}

with open(disk / "filler", "wb", buffering=0) as fh:  # fill the disk to the last byte
    for size in (65536, 1):
        with contextlib.suppress(OSError):
            while fh.write(b"\0" * size):
                pass

for fmt, out in outputs.items():
    results[f"export {fmt}"] = run(
        ["export", str(plan), "--format", fmt, "--out", str(out), "--no-db"]
    )
for name in ("sweep.csv", "sweep.parquet"):
    results[f"sweep --out {name}"] = run(["sweep", "--context", "8192", "--out", str(disk / name)])
results["plan add-model"] = run(
    ["plan", "add-model", str(plan), "llama-3.1-8b", "--quant", "Q4_K_M", "--no-db"]
)
after = {p.name: p.read_bytes() for p in disk.iterdir() if p.is_file() and p.name != "filler"}
print(json.dumps({
    "results": results,
    "unchanged": {k: after.get(k) == v for k, v in before.items()},
    "left": sorted(p.name for p in disk.iterdir() if p.name.endswith(".tmp")),
}))
"""


def _unshare() -> list[str]:
    tool = shutil.which("unshare")
    assert tool, (
        "util-linux `unshare` is needed for the full-disk test (apt-get install util-linux)"
    )
    if os.geteuid() == 0:
        return [tool, "--mount", "--propagation", "private"]
    return [tool, "--user", "--map-root-user", "--mount", "--propagation", "private"]


def test_full_disk_leaves_every_old_file_and_no_temporary(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FORGEPLANNER_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [
            *_unshare(),
            sys.executable,
            "-c",
            SCENARIO,
            str(disk),
            str(ROOT / "examples" / "70b-home-lab.fplan"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for what, (code, err) in report["results"].items():
        lines = err.strip().splitlines()
        assert code == 2, f"{what}: exit {code}: {err}"
        assert len(lines) == 1 and "No space left on device" in lines[0], f"{what}: {err!r}"
        assert "unchanged" in lines[0] or "plan add-model" in what, lines[0]
    assert all(report["unchanged"].values()), report["unchanged"]
    assert report["left"] == [], report["left"]
    assert not list(disk.iterdir()), "the tmpfs must be gone with its namespace"
