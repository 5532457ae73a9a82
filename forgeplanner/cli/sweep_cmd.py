"""`forgeplanner sweep`: every catalog configuration x model x quantization x context.

    forgeplanner sweep [--context N ...] [--runtime R] [--out FILE.csv|.parquet] [--json]

Prints {"evaluations": N, "seconds": S} with --json (S = wall time of the evaluation, from
loading the catalog to the last number; writing --out is timed separately as
"write_seconds"). benchmarks/bench_sweep.py measures the rate with process start included.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.errors import ForgePlannerError

DEFAULT_CONTEXTS = (2048, 8192, 32768, 131072)
MAX_CONTEXTS = 64  # each context multiplies the table (about 60,000 rows per context)


class SweepInputError(ForgePlannerError):
    pass


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="evaluate every configuration x model x quantization x context",
        description="Evaluate every catalog configuration x model x quantization x context.",
    )
    p.add_argument(
        "--context",
        type=argtypes.tokens,
        nargs="+",
        metavar="N",
        default=list(DEFAULT_CONTEXTS),
        help=f"contexts in tokens (default: {' '.join(map(str, DEFAULT_CONTEXTS))})",
    )
    p.add_argument("--runtime", default="llama.cpp", metavar="llama.cpp|mlx|ollama")
    p.add_argument("--out", metavar="FILE", help="write every point to FILE.csv or FILE.parquet")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if len(args.context) > MAX_CONTEXTS:
        raise SweepInputError(
            f"--context: at most {MAX_CONTEXTS} contexts, got {len(args.context)}"
        )
    if any(c <= 0 for c in args.context):
        bad = next(c for c in args.context if c <= 0)
        raise SweepInputError(f"--context must be positive numbers of tokens, got {bad}")
    if args.runtime not in ("llama.cpp", "mlx", "ollama"):
        raise SweepInputError(f"unknown runtime '{args.runtime}'; valid: llama.cpp, mlx, ollama")
    out = None
    if args.out:
        from pathlib import Path

        from forgeplanner.fileio import check_output_path

        out = check_output_path(Path(args.out))  # before the sweep: /dev/null, a FIFO: refused
        if out.suffix.lower() not in (".csv", ".parquet"):
            raise SweepInputError(f"--out {args.out}: use a .csv or .parquet file name")
    from catalog import load_catalog
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.sweep import sweep
    from forgeplanner.host import host_from_chip
    from models_db import load_models

    cat = load_catalog()
    hosts = [
        (cid, host_from_chip(cat.chip(cfg.chip_id), cfg.memory_gb, config=cfg))
        for cid, cfg in cat.configs.items()
    ]
    models = [m for m in load_models().all() if args.runtime in _runtimes_of(m)]
    res = sweep(hosts, models, args.context, RunOptions(runtime=args.runtime))
    seconds = time.perf_counter() - t0
    payload: dict[str, Any] = {"evaluations": res.evaluations, "seconds": round(seconds, 4)}
    if out is not None:
        t1 = time.perf_counter()
        _write(res.to_frame(), out)
        payload["out"] = str(out)
        payload["write_seconds"] = round(time.perf_counter() - t1, 4)
    if args.json:
        print_json(payload)
    else:
        print_table(
            ["configurations", "models", "quantizations", "contexts", "evaluations", "seconds"],
            [
                [
                    len(hosts),
                    len(models),
                    len(res.quants),
                    len(res.contexts),
                    res.evaluations,
                    f"{seconds:.3f}",
                ]
            ],
        )
        if out is not None:
            print(f"wrote {out}")
    return 0


def _runtimes_of(model) -> tuple[str, ...]:
    fmts = set(model.formats)
    return tuple(
        r for r, f in (("llama.cpp", "gguf"), ("ollama", "gguf"), ("mlx", "mlx")) if f in fmts
    )


def _write(frame, out) -> None:
    """Atomic, checked write (forgeplanner.fileio): a full disk or an interrupt leaves the old
    file and no temporary file; a device node or FIFO as --out is refused."""
    from forgeplanner.fileio import atomic_path, parquet_verifier

    parquet = out.suffix.lower() == ".parquet"
    with atomic_path(out, verify=parquet_verifier if parquet else None) as tmp:
        if parquet:
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
