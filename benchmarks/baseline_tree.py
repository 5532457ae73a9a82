"""A commit's tree, for the benchmarks that time the working tree beside an older commit
(`--baseline-ref`): bench_cli_startup.py and bench_recommend.py."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def checkout(ref: str, into: Path) -> Path:
    """The tree of `ref` in `into` (git archive), to import instead of the working tree."""
    archive = into / "ref.tar"
    with archive.open("wb") as fh:
        subprocess.run(["git", "archive", ref], cwd=ROOT, stdout=fh, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"
