"""Architecture contracts: import-linter (pyproject), the layers covering every module, no
import by name that climbs a layer, and the core running with Qt absent."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
import tomllib
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
        [str(lint), str(ROOT / "pyproject.toml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower() or "0 broken" in result.stdout


def _layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    assert len(contracts) == 1, "one layers contract for the whole house"
    assert "ignore_imports" not in contracts[0], "no exceptions to the layers"
    return [[m.strip() for m in re.split(r"[|:]", layer)] for layer in contracts[0]["layers"]]


def _layer_of(module: str, layers: list[list[str]]) -> int | None:
    for i, layer in enumerate(layers):
        if any(module == m or module.startswith(m + ".") for m in layer):
            return i
    return None


def test_every_top_level_module_is_in_one_layer() -> None:
    layers = _layers()
    named = [m for layer in layers for m in layer]
    assert len(named) == len(set(named))
    modules = ["catalog", "models_db", "ui"]
    modules += [
        f"forgeplanner.{info.name}"
        for info in pkgutil.iter_modules([str(ROOT / "forgeplanner")])
        if info.name != "__init__"
    ]
    missing = [m for m in modules if _layer_of(m, layers) is None]
    assert not missing, f"put these modules in a layer of the contract: {missing}"


# importlib.import_module("x.y") / import_module(f"x.{name}"): the static part of the name.
_BY_NAME = re.compile(r"""import_module\(\s*f?["']([A-Za-z_][\w.]*)""")


def test_no_import_by_name_climbs_a_layer() -> None:
    """import-linter cannot see an import by name; those that exist (lazy command modules, view
    modules, preloading) must stay within their layer or go down, never up."""
    layers = _layers()
    climbing = []
    for package in ("forgeplanner", "catalog", "models_db", "ui"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            source = _layer_of(module, layers)
            for target in _BY_NAME.findall(path.read_text(encoding="utf-8")):
                target = target.rstrip(".")
                where = _layer_of(target, layers)
                if source is not None and where is not None and where < source:
                    climbing.append(f"{module} imports {target} by name")
    assert not climbing, climbing


def test_core_imports_and_runs_with_qt_absent(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _QT_ABSENT],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "FORGEPLANNER_HOME": str(tmp_path), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
