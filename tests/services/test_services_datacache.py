"""The data cache (forgeplanner.services.datacache): the validated catalog and model database
kept between runs, keyed by what they were made from, and never trusted when damaged."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from catalog.loader import DATA_DIR, _load
from forgeplanner.services.datacache import DataCache
from models_db import read_models_file
from models_db.loader import DATA_FILE

ROOT = Path(__file__).resolve().parents[2]


class Counting:
    def __init__(self, build):
        self.build, self.calls = build, 0

    def __call__(self):
        self.calls += 1
        return self.build()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    copy = tmp_path / "catalog-data"
    shutil.copytree(DATA_DIR, copy)
    return copy


def _files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("*.toml"))


def test_a_second_run_reads_the_cache_and_gets_the_same_catalog(tmp_path, data_dir):
    build = Counting(lambda: _load(data_dir))
    first = DataCache(tmp_path / "cache")("catalog", _files(data_dir), build)
    again = DataCache(tmp_path / "cache")("catalog", _files(data_dir), build)  # a new process
    assert build.calls == 1
    assert again == first and again is not first
    assert [p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()] == ["catalog"]


def test_a_changed_data_file_is_read_again_and_the_old_copy_goes(tmp_path, data_dir):
    build = Counting(lambda: _load(data_dir))
    cache = DataCache(tmp_path / "cache")
    cache("catalog", _files(data_dir), build)
    prices = data_dir / "price_observations.toml"
    prices.write_text(prices.read_text(encoding="utf-8") + "\n# a reviewed edit\n")
    cache("catalog", _files(data_dir), build)
    assert build.calls == 2
    assert len(list((tmp_path / "cache").glob("catalog-*.pickle"))) == 1


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05\x95 truncated"])
def test_a_damaged_cache_file_is_rebuilt(tmp_path, damage):
    build = Counting(lambda: read_models_file(DATA_FILE))
    cache = DataCache(tmp_path / "cache")
    cache("models", [DATA_FILE], build)
    (pickled,) = (tmp_path / "cache").glob("models-*.pickle")
    pickled.write_bytes(damage)
    assert cache("models", [DATA_FILE], build).ids() == read_models_file(DATA_FILE).ids()
    assert build.calls == 2
    assert pickled.stat().st_size > 1000  # written again, whole


def test_a_cache_path_that_is_a_file_only_costs_time(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("not a directory")
    build = Counting(lambda: read_models_file(DATA_FILE))
    assert DataCache(blocker)("models", [DATA_FILE], build).ids()
    assert build.calls == 1


def test_commands_use_the_cache_and_print_the_same(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "FORGEPLANNER_HOME": str(tmp_path), "HOME": str(tmp_path)}

    def run(*argv: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "forgeplanner", *argv, "--json"],
            cwd=ROOT, capture_output=True, text=True, timeout=300, check=True, env=env,
        )  # fmt: skip
        return json.loads(done.stdout)

    first = run("catalog", "list")
    kept = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "data").iterdir())
    assert kept == ["catalog"]
    assert run("catalog", "list") == first
    run("models", "show", "llama-3.1-8b")
    kept = sorted(p.name.split("-")[0] for p in (tmp_path / "cache" / "data").iterdir())
    assert kept == ["catalog", "models"]
