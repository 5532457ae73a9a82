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
from typing import Any, NoReturn

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


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block argparse prints before an error is three
    to ten lines of noise for a script and hides the line that matters (`--help` shows it).
    `usage_exit_code` lets a command keep its own exit codes free (`gate`: 2 is ESCALATE)."""

    usage_exit_code = 2

    def error(self, message: str) -> NoReturn:
        self.exit(self.usage_exit_code, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
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
    try:
        args, extras = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help, --version, a usage error: its exit code, returned
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if extras:
        # Left over after the command parsed its own: the command's usage exit code (the
        # root parser does not know that `gate` keeps 2 for ESCALATE).
        print(
            f"forgeplanner: error: unrecognized arguments: {' '.join(extras)} (see --help)",
            file=sys.stderr,
        )
        return int(getattr(args, "usage_exit_code", 2))
    if getattr(args, "func", None) is None:
        if args.command is None:
            # Bare `forgeplanner` starts the desktop app.
            return _start_gui()
        try:  # `forgeplanner plan`: the group's help, then the usage exit code
            parser.parse_args([args.command, "--help"])
        except SystemExit:
            pass
        return 2
    previous = _terminate_cleanly() if args.command != "gui" else None
    try:
        return _run(args)
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except ForgePlannerError as exc:
        print(f"forgeplanner: error: {_one_line(exc)}", file=sys.stderr)
        return int(getattr(args, "error_exit_code", 2))
    except KeyboardInterrupt:
        print("forgeplanner: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `forgeplanner catalog list | head`: the reader left; not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except RecursionError:
        print("forgeplanner: error: input nested too deeply to process", file=sys.stderr)
        return int(getattr(args, "error_exit_code", 2))
    except MemoryError:
        print("forgeplanner: error: out of memory (input too large?)", file=sys.stderr)
        return int(getattr(args, "error_exit_code", 2))
    except Exception as exc:
        crash = getattr(args, "crash_exit_code", None)
        if crash is None:
            raise  # a bug: the traceback is what a bug report needs
        # A command whose exit codes a script acts on (`gate`) must never exit with a code
        # that means something else; the one line still names the bug.
        print(
            f"forgeplanner: internal error: {type(exc).__name__}: {_one_line(exc)}",
            file=sys.stderr,
        )
        return int(crash)


def _one_line(exc: BaseException) -> str:
    """Errors are one line: multi-line messages (pydantic, SQL) are joined."""
    return " ".join(str(exc).split())


def _terminate_cleanly() -> Any:
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so atomic writes remove their
    temporary files and database transactions roll back (SIGKILL cannot be caught: the next
    write to the same file removes what a killed writer left)."""
    import signal

    def _raise(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    try:
        return signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread (a test calling main() from a worker)
        return None


def _start_gui() -> int:
    try:
        gui = importlib.import_module("forgeplanner.cli.gui_cmd")
    except ModuleNotFoundError:
        print("forgeplanner: the desktop app is not built yet; see --help", file=sys.stderr)
        return 2
    return int(gui.start_gui(None))


if __name__ == "__main__":
    sys.exit(main())
