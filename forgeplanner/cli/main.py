"""Headless entry point. Every capability is reachable without the GUI.

Each command group lives in its own module under `forgeplanner.cli` and exposes
`register(subparsers)`; the module adds its parser(s) and sets `func` to a handler
`(args) -> int`. Heavy imports (numpy, pandas, SQLAlchemy, Qt) stay inside handlers so that
`forgeplanner --version` and `gui --screenshot` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from forgeplanner import __version__
from forgeplanner.errors import ForgePlannerError

# Order = order in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "catalog_cmd",
    "models_cmd",
    "estimate_cmd",
    "sweep_cmd",
    "bench_cmd",
    "recommend_cmd",
    "prices_cmd",
    "cluster_cmd",
    "platform_cmd",
    "plan_cmd",
    "governance_cmd",
    "gui_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forgeplanner",
        description="Plan, price, size and validate an Apple Silicon AI lab.",
    )
    parser.add_argument("--version", action="version", version=f"forgeplanner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"forgeplanner.cli.{name}")
        except ModuleNotFoundError as exc:
            # A command group that has not been written yet; anything else missing is a bug.
            if exc.name == f"forgeplanner.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        if args.command is None:
            # Bare `forgeplanner` starts the desktop app.
            return _start_gui()
        parser.parse_args([args.command, "--help"])
        return 2
    try:
        return int(args.func(args) or 0)
    except ForgePlannerError as exc:
        print(f"forgeplanner: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("forgeplanner: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `forgeplanner catalog list | head`: the reader left; not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _start_gui() -> int:
    try:
        gui = importlib.import_module("forgeplanner.cli.gui_cmd")
    except ModuleNotFoundError:
        print("forgeplanner: the desktop app is not built yet; see --help", file=sys.stderr)
        return 2
    return int(gui.start_gui(None))


if __name__ == "__main__":
    sys.exit(main())
