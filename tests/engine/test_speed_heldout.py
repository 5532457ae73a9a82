"""Held-out validation of the speed estimates: published runs on chips and models the calibration
never saw (benchmarks/data/heldout_published_runs.csv, sources in docs/speed-validation.md),
estimated through the real estimator (benchmarks/validate_speed_heldout.py).

The issue's goal on unseen hardware is a mean absolute error of 4 % or less on decode and 6 % or
less on prefill. The bounds below are NOT that goal: they are the errors measured on
2026-11-26 (final run noted next to each bound) plus a little slack, so that a change that makes
the held-out estimates worse fails here. Where the measured error is below the goal, the goal is
the bound. docs/speed-validation.md states the gap.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "validate_speed_heldout.py"
SLACK_PP = 1.0  # percentage points of slack over the measured error


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def heldout():
    return _load("validate_speed_heldout", SCRIPT)


@pytest.fixture(scope="module")
def rows(heldout):
    return heldout.load_rows()


@pytest.fixture(scope="module")
def results(heldout, rows):
    return heldout.evaluate(rows)


@pytest.fixture(scope="module")
def summ(heldout, results):
    return heldout.summary(results)


def _mape(block, kind: str) -> float:
    s = block[kind]
    assert s is not None and s.rows > 0
    return s.mape_pct


# --------------------------------------------------------------------------------------------
# the data set: real, sourced, and really held out
# --------------------------------------------------------------------------------------------


def test_every_row_names_its_source_and_mapping(rows):
    import csv

    with (REPO / "benchmarks" / "data" / "heldout_published_runs.csv").open(encoding="utf-8") as f:
        raw = list(csv.DictReader(f))
    assert len(raw) == len(rows) >= 120
    for r in raw:
        for field in ("source", "source_quality", "model_mapping", "model_name", "test", "date"):
            assert r[field].strip(), f"row {r['row_id']}: empty {field}"


def test_rows_resolve_to_catalog_bins_and_database_models(rows):
    from catalog import load_catalog
    from models_db import load_models

    cat, db = load_catalog(), load_models()
    for r in rows:
        chip = cat.find_chip(r.chip, r.gpu_cores)
        assert chip.gpu_cores == r.gpu_cores
        db.get(r.model_id)


def test_rows_are_held_out_from_the_calibration(rows):
    """M3/M4/M5 chips are absent from the calibration files (M1/M2 only); M1/M2 rows must be
    of models the calibration never used (its own model mapping decides)."""
    cal = _load("calibrate_speed", REPO / "scripts" / "calibrate_speed.py")
    calibrated_models = {mid for mid, _why in cal.MODEL_MAP.values()}
    for r in rows:
        if r.chip.split()[0] in ("M1", "M2"):
            assert r.model_id not in calibrated_models, r.row_id
        else:
            assert r.chip.split()[0] in ("M3", "M4", "M5"), r.row_id


def test_bad_row_is_one_clear_error(heldout, tmp_path):
    src = (REPO / "benchmarks" / "data" / "heldout_published_runs.csv").read_text(encoding="utf-8")
    lines = src.splitlines()
    bad = lines[1].replace(",187.52,", ",fast,")
    assert bad != lines[1]
    p = tmp_path / "bad.csv"
    p.write_text("\n".join([lines[0], bad]) + "\n", encoding="utf-8")
    with pytest.raises(heldout.HeldoutDataError) as exc:
        heldout.load_rows(p)
    msg = str(exc.value)
    assert str(p) in msg and "h001" in msg and "tokens_per_s" in msg and "'fast'" in msg


# --------------------------------------------------------------------------------------------
# the estimator path: same numbers as the CLI's estimate
# --------------------------------------------------------------------------------------------


def test_row_estimate_equals_the_estimate_the_cli_computes(heldout, rows, results):
    """One decode and one prefill row recomputed by hand through host_from_chip_name and
    estimate(): the script adds nothing of its own."""
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.estimate import estimate
    from forgeplanner.host import host_from_chip_name
    from models_db import load_models

    by_id = {r.row_id: r for r in results}
    # h026: M3 Max 40c, Llama 2 7B Q4_0, tg128 (mean depth 64)
    host = host_from_chip_name("M3 Max", 40)
    e = estimate(load_models().get("llama-2-7b"), "Q4_0", host, RunOptions(depth=64))
    assert e.speed is not None
    assert by_id["h026"].estimated_tps == pytest.approx(e.speed.decode_tps, rel=1e-12)
    # h033: M3 Ultra 80c, Llama 2 7B F16, pp512
    host = host_from_chip_name("M3 Ultra", 80)
    e = estimate(load_models().get("llama-2-7b"), "F16", host, RunOptions(prompt_tokens=512))
    assert e.speed is not None
    assert by_id["h033"].estimated_tps == pytest.approx(e.speed.prefill_tps, rel=1e-12)


def test_json_report(heldout, capsys):
    assert heldout.main(["--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["goal_mape_pct"] == {"decode": 4.0, "prefill": 6.0}
    assert doc["rows_used"] == len(doc["rows"]) >= 120
    ov = doc["summary"]["llama.cpp"]["overall"]
    assert {"rows", "mape_pct", "median_ape_pct", "bias_pct", "max_ape_pct"} <= set(ov["decode"])


# --------------------------------------------------------------------------------------------
# the errors: regression bounds at the measured values (goal: 4 % decode / 6 % prefill)
# --------------------------------------------------------------------------------------------

# Measured 2026-11-26 15:44 UTC (final run, constants fit 2026-11-26); bound = measured + SLACK_PP,
# or the goal where the measured error already meets it. Gap to the goal (4 % / 6 %) at that run:
# decode +0.8 points, prefill +1.2 points overall. (set, group, kind) -> measured MAPE %.
MEASURED = {
    ("llama.cpp", "overall", "decode"): 4.8,
    ("llama.cpp", "overall", "prefill"): 7.2,
    ("llama.cpp", "M3", "decode"): 4.2,
    ("llama.cpp", "M3", "prefill"): 6.4,
    ("llama.cpp", "M4", "decode"): 6.3,
    ("llama.cpp", "M4", "prefill"): 6.1,
    ("llama.cpp", "2023-2024", "decode"): 4.2,
    ("llama.cpp", "2023-2024", "prefill"): 5.2,
}
GOAL = {"decode": 4.0, "prefill": 6.0}


def _bound(key) -> float:
    return max(MEASURED[key] + SLACK_PP, GOAL[key[2]])


@pytest.mark.parametrize("key", sorted(MEASURED))
def test_heldout_error_within_bound(summ, key):
    runtime, group, kind = key
    block = summ[runtime]
    if group == "overall":
        stats = block["overall"]
    elif group.startswith("M"):
        stats = block["by_generation"][group]
    else:
        stats = block["by_build_era"][group]
    assert _mape(stats, kind) <= _bound(key), (
        f"{runtime} {group} {kind}: held-out MAPE {_mape(stats, kind):.1f} % exceeds "
        f"{_bound(key):.1f} % (measured {MEASURED[key]} % when this bound was set; "
        f"issue goal {GOAL[kind]} %)"
    )


def test_no_llamacpp_row_off_by_half_except_m5_prefill(results):
    """Gross misses would mean a broken mapping or a broken formula, not a calibration error.
    The one known exception: M5 prefill with the GPU neural accelerators (tensor API), which
    the speed model does not represent (docs/speed-validation.md)."""
    for r in results:
        if r.runtime != "llama.cpp" or (r.generation == "M5" and r.kind == "prefill"):
            continue
        assert abs(r.error_pct) < 30.0, (r.row_id, r.error_pct)
