"""The entry point imports only the command it runs; `--help` lists every command from
`COMMANDS`, whose one-line help stays what each command module registers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from forgeplanner.cli.main import COMMANDS, build_parser, command_of, main

ROOT = Path(__file__).resolve().parents[2]


def _registered_help(parser) -> dict[str, str]:
    sub = next(a for a in parser._actions if a.dest == "command")
    return {a.dest: a.help for a in sub._choices_actions}


def test_the_command_table_is_what_the_modules_register():
    assert _registered_help(build_parser(None)) == {n: h for n, (_, h) in COMMANDS.items()}


def test_only_the_named_command_is_registered_for_real():
    parser = build_parser(["estimate", "--help"])
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(sub.choices) == list(COMMANDS)  # order of --help kept
    assert sub.choices["estimate"].get_default("func") is not None
    assert sub.choices["recommend"].get_default("func") is None  # a placeholder


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["estimate", "--model", "x"], "estimate"),
        (["--version"], None),
        (["calibrate", "--json"], "calibrate"),
        (["nope"], None),
        ([], None),
    ],
)
def test_command_of(argv, command):
    assert command_of(argv) == command


_PROBE = r"""
import io, contextlib, json, sys
from forgeplanner.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    rc = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in
                {"forgeplanner", "pandas", "sqlalchemy", "yaml", "kubernetes_validate",
                 "PySide6", "reportlab", "openpyxl"})
print(json.dumps({"rc": rc, "loaded": loaded}))
"""


def _loaded(tmp_path: Path, *argv: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
        env={"PATH": "/usr/bin:/bin", "FORGEPLANNER_HOME": str(tmp_path), "HOME": str(tmp_path)},
    )  # fmt: skip
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["rc"] == 0
    return out["loaded"]


def test_estimate_imports_only_what_it_needs(tmp_path):
    loaded = _loaded(
        tmp_path, "estimate", "--model", "llama-3.1-8b", "--machine",
        "mac-mini-m4-pro-20c-64gb", "--quant", "Q4_K_M", "--json",
    )  # fmt: skip
    other_commands = [m for m in loaded if m.startswith("forgeplanner.cli.")]
    assert other_commands == [
        "forgeplanner.cli.argtypes",  # the flags' value types: small, no imports of its own
        "forgeplanner.cli.estimate_cmd",
        "forgeplanner.cli.main",
        "forgeplanner.cli.output",
    ]
    for heavy in ("pandas", "sqlalchemy", "kubernetes_validate", "PySide6", "reportlab"):
        assert heavy not in loaded, heavy
    assert "forgeplanner.services.recommend" not in loaded


def test_help_lists_every_command_without_importing_them(capsys):
    assert main(["--help"]) == 0  # main returns argparse's exit code
    text = capsys.readouterr().out
    for name, (_, help_text) in COMMANDS.items():
        assert name in text and help_text.split()[0] in text
    done = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom forgeplanner.cli.main import main\n"
         "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
         "print(sorted(m for m in sys.modules if m.startswith('forgeplanner.cli.')))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "['forgeplanner.cli.main']"
