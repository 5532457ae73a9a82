"""The recommendation search (forgeplanner.services.recommend) through the real engines: its
JSON contract, its choices and reasons, its agreement with `forgeplanner estimate`, and the
shortcut that skips laying out clusters far too small agreeing with the layout itself."""

from __future__ import annotations

import json
import re

import pytest

from forgeplanner.cli.main import main
from forgeplanner.services.recommend import (
    RecommendInputError,
    RecommendRequest,
    build_recommendation,
    cluster_cannot_fit,
)

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
    # Shipped observations only (the user database is per test), so the result is fixed.
    request = RecommendRequest(
        ("llama-3.1-70b",),
        8192,
        quant_min="Q4_K_M",
        as_of=TODAY,
        tariff=0.30,
        hours_at_load=8,
        include_user_observations=False,
    )
    return build_recommendation(request).to_dict()


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


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("context", 0, "--context must be a positive number of tokens, got 0"),
        ("budget_usd", -1.0, "--budget-usd must be >= 0, got -1"),
        ("hours_at_load", 25.0, "--hours-at-load must be 0-24 hours per day, got 25"),
        ("condition", "mint", "--condition 'mint' unknown; valid: new, used, any"),
        ("model_ids", (), "give at least one --model"),
        ("model_ids", "llama-3.1-8b", "model_ids must be a sequence of model ids"),
    ],
)
def test_a_request_that_cannot_be_searched_says_why(field, value, message):
    args = {"model_ids": ("llama-3.1-8b",), "context": 4096, field: value}
    with pytest.raises(RecommendInputError, match=re.escape(message)):
        RecommendRequest(**args)


def test_a_request_keeps_each_model_once_in_order():
    req = RecommendRequest(("qwen3-32b", "llama-3.1-8b", "qwen3-32b"), 4096)
    assert req.model_ids == ("qwen3-32b", "llama-3.1-8b")


def test_a_bad_price_day_is_the_recommend_error():
    req = RecommendRequest(("llama-3.1-8b",), 4096, as_of="26/11/2026")
    with pytest.raises(RecommendInputError, match="--as-of '26/11/2026': expected YYYY-MM-DD"):
        build_recommendation(req)


@pytest.mark.parametrize(
    ("model_id", "quant", "config_id"),
    [
        ("llama-3.1-405b", "Q4_K_M", "mac-mini-m4-pro-20c-64gb"),
        ("llama-3.1-405b", "Q8_0", "mac-studio-m2-ultra-76c-192gb"),
        ("llama-3.1-405b", "Q4_K_M", "mac-studio-m2-ultra-76c-192gb"),
        ("llama-3.1-70b", "Q4_K_M", "mac-mini-m4-10c-16gb"),
        ("llama-3.1-70b", "Q8_0", "mac-mini-m4-pro-20c-64gb"),
        ("qwen3-30b-a3b", "Q8_0", "mac-mini-m4-10c-16gb"),
    ],
)
def test_the_cannot_fit_shortcut_never_contradicts_the_layout(model_id, quant, config_id):
    """Whenever the shortcut says a cluster cannot fit, the full layout (what `forgeplanner
    cluster` plans) says does-not-fit too."""
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.cluster_costs import layer_costs
    from forgeplanner.services.cluster import ClusterRequest, NodeGroup, build_cluster
    from forgeplanner.services.models import find_model

    costs = layer_costs(find_model(model_id), quant, RunOptions(context=8192))
    said = {}
    for n in (2, 3, 4):
        result = build_cluster(ClusterRequest(model_id, quant, (NodeGroup(config_id, n),)))
        said[n] = cluster_cannot_fit(costs, _specs_of(result))
        if said[n]:
            assert result.plan.verdict == "does-not-fit", (n, result.plan.summary)
    assert said[2] >= said[3] >= said[4]  # more machines never make it harder


def _specs_of(result):
    """The node specs the plan was laid out with, rebuilt the way the service builds them."""
    from catalog import load_catalog
    from forgeplanner.host import host_from_config
    from forgeplanner.services.cluster import node_spec

    cat = load_catalog()
    return [
        node_spec(nd.name, cat.config(nd.config_id), host_from_config(nd.config_id), (None, None))
        for nd in result.plan.nodes
    ]


def test_the_cannot_fit_shortcut_covers_both_cases():
    """The parametrized cases above include clusters it rules out and ones it lets through."""
    from catalog import load_catalog
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.cluster_costs import layer_costs
    from forgeplanner.host import host_from_config
    from forgeplanner.services.cluster import node_spec
    from forgeplanner.services.models import find_model

    cat = load_catalog()
    costs = layer_costs(find_model("llama-3.1-405b"), "Q4_K_M", RunOptions(context=8192))

    def specs(config_id, n):
        cfg, host = cat.config(config_id), host_from_config(config_id)
        return [node_spec(f"n{i}", cfg, host, (None, None)) for i in range(n)]

    assert cluster_cannot_fit(costs, specs("mac-mini-m4-pro-20c-64gb", 2))
    assert not cluster_cannot_fit(costs, specs("mac-studio-m2-ultra-76c-192gb", 2))
