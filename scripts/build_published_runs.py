#!/usr/bin/env python3
"""Rebuild the published-runs dataset from its inputs.

    .venv/bin/python scripts/build_published_runs.py [--check]

Reads forgeplanner/calibration/data/sources/*.csv (the gathered tables, one row per published
number with its URL) and data/lookups/*.csv (chip bins, llama.cpp builds, runtime versions,
Ollama's engines, model ids and names, curated row flags), and writes

  forgeplanner/calibration/data/published_runs.csv   the dataset
  docs/published-runs.md                              its generated counts block

Both are written atomically. `--check` writes nothing and exits 1 when either file is stale.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from forgeplanner.calibration.runs_dataset import (  # noqa: E402
    DATASET_PATH,
    build_dataset,
    render_csv,
)
from forgeplanner.calibration.runs_summary import replace_block, summary_markdown  # noqa: E402
from forgeplanner.errors import ForgePlannerError  # noqa: E402
from forgeplanner.plan.files import atomic_write  # noqa: E402

DOC_PATH = REPO / "docs" / "published-runs.md"


def expected_outputs() -> dict[Path, str]:
    """Each output file and the text it must hold."""
    frame = build_dataset()
    document = DOC_PATH.read_text(encoding="utf-8")
    return {
        DATASET_PATH: render_csv(frame),
        DOC_PATH: replace_block(document, summary_markdown(frame)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    try:
        outputs = expected_outputs()
    except (ForgePlannerError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = [
        path
        for path, text in outputs.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(REPO)}")
        return 1 if stale else 0
    for path in stale:
        atomic_write(path, outputs[path].encode("utf-8"))
        print(f"wrote {path.relative_to(REPO)}")
    if not stale:
        print("up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
