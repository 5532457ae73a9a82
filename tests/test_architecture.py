"""Architecture contracts: import-linter (pyproject), and the core running with Qt absent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Blocks Qt at import time, then imports every core module and runs headless commands.
_QT_ABSENT = r"""
import importlib, pkgutil, sys

class _NoQt:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"PySide6", "shiboken6", "pyqtgraph"}:
            raise ImportError(f"Qt is absent in this test: {name}")
        return None

sys.meta_path.insert(0, _NoQt())

import forgeplanner, catalog, models_db
failed = []
for pkg in (forgeplanner, catalog, models_db):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if ".migrations" in info.name:
            continue
        try:
            importlib.import_module(info.name)
        except ImportError as exc:
            failed.append(f"{info.name}: {exc}")
if failed:
    print("\n".join(failed))
    sys.exit(1)

from forgeplanner.cli.main import main
for argv in (["--version"], ["catalog", "list", "--json"], ["models", "list", "--json"]):
    try:
        rc = main(argv)
    except SystemExit as exc:  # --version exits through argparse
        rc = exc.code
    if rc not in (0, None):
        print("command failed:", argv, rc)
        sys.exit(1)
"""


def test_import_linter_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower() or "0 broken" in result.stdout


def test_core_imports_and_runs_with_qt_absent(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _QT_ABSENT],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "FORGEPLANNER_HOME": str(tmp_path), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
