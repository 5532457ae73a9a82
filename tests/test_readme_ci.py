"""The README's two commands are the product's promise; CI must run the test one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
)
APP_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/forgeplanner"


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST_COMMAND in readme
    assert APP_COMMAND in readme
    ci_lines = [line.strip() for line in ci.splitlines()]
    assert TEST_COMMAND in ci_lines


def test_readme_has_exactly_two_shell_commands_for_a_fresh_machine() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:sh|bash|shell)\n(.*?)```", section, flags=re.S)
    commands = [line for block in blocks for line in block.strip().splitlines()]
    assert commands == [APP_COMMAND, TEST_COMMAND]
