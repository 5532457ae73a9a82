"""The calibration against the published runs: error thresholds (in-sample and held-out) and
that the committed constants are the ones the script fits from the committed data."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from forgeplanner.engine import speed_constants

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts"


def _load_script():
    sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location("calibrate_speed", SCRIPTS / "calibrate_speed.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["calibrate_speed"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def cal():
    return _load_script()


@pytest.fixture(scope="module")
def report(cal):
    return cal.run(cal.DEFAULT_REFERENCE, speed_constants.FIT_DATE)


def _mape(cal, report, errs, runtime, test):
    return cal.error_table(report.obs, errs)[(runtime, test)][1]


def test_rows_are_mapped_or_excluded_with_a_reason(report):
    assert len(report.obs) >= 120  # 90 rows of the #4167 table + ~40 others
    assert {o.runtime for o in report.obs} == {"llama.cpp", "ollama"}
    reasons = {why for _, why in report.skipped}
    assert all(reasons), "every skipped row has a reason"
    # each model used is a real database id and each chip a catalog bin
    assert {o.model.model_id for o in report.obs} >= {"llama-2-7b", "llama-3.1-70b", "gpt-oss-120b"}


def test_in_sample_errors(cal, report):
    # Measured 2026-11-26: decode 4.0 %, prefill 2.7 % (docs/calibration.md)
    assert _mape(cal, report, report.insample, "llama.cpp", "tg") < 5.0
    assert _mape(cal, report, report.insample, "llama.cpp", "pp") < 4.0
    assert _mape(cal, report, report.insample, "ollama", "tg") < 12.0


@pytest.mark.parametrize(
    ("validation", "tg_max", "pp_max"),
    [
        # measured: 6.9 / 6.8, 6.9 / 5.5, 7.2 / 4.8
        ("leave one chip generation out (M1 / M2)", 8.5, 8.5),
        ("leave one chip out (e.g. all M2 Ultra rows)", 8.5, 7.0),
        ("leave one model out", 8.5, 6.5),
    ],
)
def test_held_out_errors(cal, report, validation, tg_max, pp_max):
    errs = report.cv[validation]
    assert _mape(cal, report, errs, "llama.cpp", "tg") < tg_max
    assert _mape(cal, report, errs, "llama.cpp", "pp") < pp_max
    # held out is never better than in-sample by much: the CV really holds rows out
    assert _mape(cal, report, errs, "llama.cpp", "tg") > _mape(
        cal, report, report.insample, "llama.cpp", "tg"
    )


def test_committed_constants_match_a_fresh_fit(report):
    """speed_constants.py is generated: regenerate it when the data or the fit change.
    (0.5 % tolerance: a small change in the memory engine's byte counts moves the fit a little
    without making the committed constants wrong; a changed fit or data set fails.)"""
    fresh = report.constants
    committed = speed_constants.CONSTANTS
    for rt, c in committed.runtimes.items():
        f = fresh.runtimes[rt]
        for name in ("a_bw", "a_ultra", "a_core", "tau_token_s", "tau_layer_s", "kv_read_factor",
                     "c_ultra", "a_reread"):  # fmt: skip
            assert getattr(c, name) == pytest.approx(getattr(f, name), rel=5e-3, abs=1e-6), name
        assert dict(c.compute) == pytest.approx(dict(f.compute), rel=5e-3)
        assert dict(c.dequant) == pytest.approx(dict(f.dequant), rel=5e-3, abs=1e-3)
    assert dict(committed.per_core_fp32_flops) == pytest.approx(dict(fresh.per_core_fp32_flops))


def test_constants_are_physical(report):
    c = report.constants.runtimes["llama.cpp"]
    assert 0.5 < c.a_bw < 1.5  # streams at a plausible fraction of peak bandwidth
    for q, v in c.compute.items():
        assert 1.0 <= v < 3.0, q  # prefill reaches 33-100 % of peak FP32
    assert 0 <= c.tau_layer_s < 1e-3


def test_data_copies_are_verbatim(cal):
    """The copies are byte for byte what was copied from the reference tables (digests
    recorded in the data folder's README when they were copied)."""
    readme = (cal.DEFAULT_REFERENCE / "README.md").read_text(encoding="utf-8")
    for name in (cal.APPLE_CSV, cal.OTHER_CSV):
        recorded = re.search(rf"\| {re.escape(name)} \| ([0-9a-f]{{64}}) \|", readme)
        assert recorded, f"no digest recorded for {name}"
        data = (cal.DEFAULT_REFERENCE / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == recorded.group(1), name


def test_parser_maps_tests_and_quants(cal):
    assert cal._test_shape("tg128")[:3] == ("tg", 128, 64.0)
    assert cal._test_shape("pp2048")[:3] == ("pp", 2048, 0.0)
    assert cal._test_shape("batch 4 aggregate decode")[0] is None
    assert cal._quant_of(
        "gpt-oss-20b", "ollama", "Ollama default (Q4_K_M per willitrun notes)"
    ) == ("MXFP4")
    assert cal._quant_of("llama-3.2-3b", "ollama", "Ollama default (Q4_K_M ...)") == "Q4_K_M"
