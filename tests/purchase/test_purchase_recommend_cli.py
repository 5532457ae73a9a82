"""`forgeplanner recommend` end to end through the real engines, checked against
`forgeplanner estimate` and `forgeplanner cluster` for the same inputs. (The search itself is
tested through the service in tests/services/test_services_recommend.py.)"""

from __future__ import annotations

import json

import pytest

from forgeplanner.cli.main import main

TODAY = "2026-11-26"


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


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
