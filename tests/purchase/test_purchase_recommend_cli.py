"""`forgeplanner recommend` end to end through the real engines, checked against
`forgeplanner estimate` and `forgeplanner cluster` for the same inputs."""

from __future__ import annotations

import json
import re

import pytest

from forgeplanner.cli.main import main

TODAY = "2026-11-26"
OPTION_KEYS = {
    "machines",
    "quant",
    "runtime",
    "price_usd",
    "price_basis",
    "decode_tps",
    "prefill_tps",
    "verdict",
    "idle_w",
    "max_w",
    "annual_energy_kwh",
    "annual_energy_cost",
    "pareto",
}


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.fixture(scope="module")
def llama70():
    from forgeplanner.cli.recommend_cmd import build_recommendation

    # Shipped observations only (the user database is per test), so the result is fixed.
    rec = build_recommendation(
        ["llama-3.1-70b"],
        8192,
        quant_min="Q4_K_M",
        today=TODAY,
        tariff=0.30,
        hours_at_load=8,
        include_user_observations=False,
    )
    return rec.to_dict()


def test_json_contract(llama70):
    assert set(llama70) >= {"options", "rejected"}
    assert llama70["options"] and llama70["rejected"]
    for o in llama70["options"]:
        assert OPTION_KEYS <= set(o)
        assert all(set(m) == {"config_id", "count"} for m in o["machines"])
        assert o["runtime"] in ("llama.cpp", "mlx")
        assert o["verdict"] in ("fits", "fits-with-raised-limit")
        assert o["price_basis"]
    prices = [o["price_usd"] for o in llama70["options"]]
    known = [p for p in prices if p is not None]
    assert known == sorted(known) and prices[: len(known)] == known  # unknown prices last
    assert any(o["pareto"] for o in llama70["options"])


def test_quant_min_is_respected(llama70):
    from forgeplanner.engine.quant import get_quant

    floor = get_quant("Q4_K_M").quality_tier
    assert all(get_quant(o["quant"]).quality_tier <= floor for o in llama70["options"])


def test_rejections_say_why_in_numbers(llama70):
    by_id = {r["config_id"]: r["reason"] for r in llama70["rejected"]}
    reason = by_id["mac-mini-m4-10c-16gb"]
    assert re.search(r"llama\.cpp: needs \d+\.\d GiB at \S+, GPU limit \d+\.\d GiB", reason)
    assert "mlx: needs" in reason
    assert "runs on Apple Silicon only" in by_id["mac-mini-2012-i5-16gb"]


def test_energy_figures(llama70):
    o = next(o for o in llama70["options"] if o["max_w"] and o["idle_w"] and o["decode_tps"])
    assert o["tokens_per_joule"] == pytest.approx(o["decode_tps"] / o["max_w"], abs=1e-3)
    kwh = (o["max_w"] * 8 + o["idle_w"] * 16) * 365 / 1000
    assert o["annual_energy_kwh"] == pytest.approx(kwh, abs=0.01)
    assert o["annual_energy_cost"] == pytest.approx(kwh * 0.30, abs=0.01)


@pytest.mark.parametrize("pick", [0, 3, -1])
def test_each_option_agrees_with_estimate(capsys, llama70, pick):
    opts = [o for o in llama70["options"] if o["decode_tps"] is not None]
    o = opts[pick]
    cid = o["machines"][0]["config_id"]
    est = _run(
        capsys,
        "estimate",
        "--machine",
        cid,
        "--model",
        "llama-3.1-70b",
        "--quant",
        o["quant"],
        "--context",
        "8192",
        "--runtime",
        o["runtime"],
        "--json",
    )
    assert est["verdict"] == o["verdict"]
    assert est["decode_tps"] == o["decode_tps"]
    assert est["prefill_tps"] == o["prefill_tps"]
    model = o["models"][0]
    assert model["total_bytes"] == est["memory"]["total_bytes"]
    assert model["max_context_that_fits"] == est["max_context_that_fits"]


def test_budget_watts_and_condition(capsys):
    base = ["recommend", "--model", "llama-3.1-8b", "--context", "4096", "--today", TODAY, "--json"]
    cheap = _run(capsys, *base, "--budget-usd", "700", "--condition", "used")
    assert cheap["options"]
    assert all(o["price_usd"] <= 700 for o in cheap["options"])
    assert all(o["price_basis"].startswith("used") for o in cheap["options"])
    assert any("above budget $700" in r["reason"] for r in cheap["rejected"])
    frugal = _run(capsys, *base, "--max-watts", "60")
    assert frugal["options"] and all(o["max_w"] <= 60 for o in frugal["options"])
    new = _run(capsys, *base, "--condition", "new")
    ids = {o["machines"][0]["config_id"] for o in new["options"]}
    assert "mac-studio-m3-ultra-80c-512gb" not in ids  # withdrawn 2026-03
    withdrawn = {r["config_id"]: r["reason"] for r in new["rejected"]}
    assert withdrawn["mac-studio-m3-ultra-80c-512gb"].startswith(
        f"not sold new by Apple on {TODAY}: withdrawn by Apple 2026-03; no dated remaining-stock"
    )
    assert all(o["price_basis"].startswith("new") for o in new["options"] if o["price_usd"])


def test_min_decode_tps_filters(capsys):
    out = _run(
        capsys,
        "recommend",
        "--model",
        "llama-3.1-8b",
        "--context",
        "4096",
        "--min-decode-tps",
        "40",
        "--today",
        TODAY,
        "--json",
    )
    assert out["options"]
    assert all(o["decode_tps"] >= 40 for o in out["options"])
    assert any("< required 40" in r["reason"] for r in out["rejected"])


def test_several_models_must_all_run(capsys):
    out = _run(
        capsys,
        "recommend",
        "--model",
        "llama-3.1-8b",
        "--model",
        "qwen3-32b",
        "--context",
        "8192",
        "--quant-min",
        "Q4_K_M",
        "--today",
        TODAY,
        "--json",
    )
    assert out["options"]
    for o in out["options"]:
        assert [m["model"] for m in o["models"]] == ["llama-3.1-8b", "qwen3-32b"]
        assert o["quant"] == o["models"][0]["quant"]
    assert any("qwen3-32b" in r["reason"] for r in out["rejected"])


@pytest.mark.slow
def test_clusters_agree_with_the_cluster_command(capsys):
    out = _run(
        capsys,
        "recommend",
        "--model",
        "llama-3.1-405b",
        "--context",
        "8192",
        "--quant-min",
        "Q4_K_M",
        "--allow-clusters",
        "--condition",
        "new",
        "--today",
        TODAY,
        "--json",
    )
    clusters = [o for o in out["options"] if o["machines"][0]["count"] > 1]
    assert clusters, "405B at Q4_K_M needs more than one machine"
    o = clusters[0]
    m = o["machines"][0]
    plan = _run(
        capsys,
        "cluster",
        "--model",
        "llama-3.1-405b",
        "--quant",
        o["quant"],
        "--context",
        "8192",
        "--node",
        f"{m['config_id']}x{m['count']}",
        "--json",
    )
    assert plan["decode_tps"] == pytest.approx(o["decode_tps"], abs=1e-3)
    assert plan["verdict"] == o["verdict"]
    single = _run(capsys, "catalog", "show", m["config_id"], "--json")["configuration"]
    watts = single["max_w"]["value"]  # unknown for the 2026 models (Apple has not published)
    assert o["max_w"] == (None if watts is None else watts * m["count"])


def test_table_output_and_errors(capsys):
    assert (
        main(["recommend", "--model", "llama-3.2-1b", "--context", "2048", "--today", TODAY]) == 0
    )
    out = capsys.readouterr().out
    assert "Pareto" in out and "rejected" not in out.split("\n")[0]
    assert main(["recommend", "--model", "nope-1b", "--context", "2048"]) == 2
    assert "unknown model 'nope-1b'" in capsys.readouterr().err
    assert main(["recommend", "--model", "llama-3.2-1b", "--context", "0"]) == 2
    assert "--context: 0 is out of range: expected 1.." in capsys.readouterr().err
    assert (
        main(["recommend", "--model", "llama-3.2-1b", "--context", "2048", "--quant-min", "Q9_X"])
        == 2
    )
    assert "unknown quantization 'Q9_X'" in capsys.readouterr().err
