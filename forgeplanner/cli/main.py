"""Headless entry point. Every capability is reachable without the GUI.

Each command group lives in its own module under `forgeplanner.cli` and exposes
`register(subparsers)`; the module adds its parser(s) and sets `func` to a handler
`(args) -> int`. Only the module of the command being run is imported (a command's start-up
pays for nothing else); the others appear in `--help` from `COMMANDS`, whose one-line help
texts a test keeps equal to what each module registers. Heavy imports (numpy, pandas,
SQLAlchemy, Qt) stay inside handlers.
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

# command -> (module under forgeplanner.cli, one-line help). Order = order in --help.
COMMANDS: dict[str, tuple[str, str]] = {
    "catalog": ("catalog_cmd", "hardware catalog: chips, machine configurations, links"),
    "models": ("models_cmd", "model database: list, show, import (config.json, GGUF, Ollama)"),
    "estimate": ("estimate_cmd", "memory, fit and speed of a model on a machine"),
    "sweep": ("sweep_cmd", "evaluate every configuration x model x quantization x context"),
    "bench": (
        "bench_cmd",
        "benchmark this machine (built-in, llama.cpp, Ollama, MLX) and keep the runs",
    ),
    "calibrate": (
        "bench_cmd",
        "fit this machine's effective bandwidth/compute from its llama.cpp runs",
    ),
    "lab": ("bench_cmd", "guided lab sessions (L-001, L-002, L-003)"),
    "recommend": ("recommend_cmd", "cheapest machines (or small clusters) that run your models"),
    "prices": ("prices_cmd", "used-market and refurbished price observations; CSV import"),
    "cluster": (
        "cluster_cmd",
        "spread one model over several Macs (llama.cpp RPC, exo, MLX distributed)",
    ),
    "platform": ("platform_cmd", "K3s platform layout: node roles, service placement, manifests"),
    "plan": ("plan_cmd", "build plans (.fplan)"),
    "export": ("plan_cmd", "export a plan (md, html, pdf, csv, xlsx, json evidence record)"),
    "evidence": ("plan_cmd", "check and sign evidence records"),
    "gate": (
        "plan_cmd",
        "evaluate a gate policy against a plan (exit 0 allow, 1 deny, 2 escalate)",
    ),
    "governance": (
        "governance_cmd",
        "the gate as a pre-commit hook, sign-offs, latency (learning track module 07)",
    ),
    "gui": ("gui_cmd", "start the desktop app"),
}


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block argparse prints before an error is three
    to ten lines of noise for a script and hides the line that matters (`--help` shows it).
    `usage_exit_code` lets a command keep its own exit codes free (`gate`: 2 is ESCALATE)."""

    usage_exit_code = 2

    def error(self, message: str) -> NoReturn:
        self.exit(self.usage_exit_code, f"{self.prog}: error: {message} (see --help)\n")


def command_of(argv: Sequence[str]) -> str | None:
    """The command named in argv (its first word that is not an option), if it is one."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for `argv`: the named command's module registers its full parser(s); every
    other command is a placeholder with its one-line help. `argv=None`: every module, as
    `--help` of each command needs."""
    parser = Parser(
        prog="forgeplanner",
        description="Plan, price, size and validate an Apple Silicon AI lab.",
    )
    parser.add_argument("--version", action="version", version=f"forgeplanner {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = set(COMMANDS) if argv is None else {command_of(argv)}
    modules = {COMMANDS[name][0] for name in wanted if name is not None}
    registered: set[str] = set()
    for name, (module_name, help_text) in COMMANDS.items():
        if name in registered:
            continue
        if module_name in modules:
            before = set(sub.choices)
            importlib.import_module(f"forgeplanner.cli.{module_name}").register(sub)
            registered |= set(sub.choices) - before
        else:
            sub.add_parser(name, help=help_text, add_help=False)
            registered.add(name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
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
    _use_data_cache()
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


def _use_data_cache() -> None:
    """Keep the validated catalog and model database between runs (services.datacache)."""
    from forgeplanner.services import datacache

    try:
        datacache.install()
    except (OSError, ForgePlannerError):
        # No usable cache directory (FORGEPLANNER_HOME a file, a read-only home): every run
        # reads the data files; a command that needs the user's folders says so itself.
        pass


def _start_gui() -> int:
    from forgeplanner.cli.gui_cmd import start_gui

    _use_data_cache()
    return int(start_gui(None))


if __name__ == "__main__":
    sys.exit(main())
