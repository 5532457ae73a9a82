"""The purchase planner on a given day: every Mac Studio configuration has a price, a machine
Apple no longer sells is never offered new without dated stock, and every used price names its
basis. `recommend` runs through the real CLI entry point with the real catalog."""

from __future__ import annotations

import json
import re

import pytest

from catalog import load_catalog
from forgeplanner.cli.main import main
from forgeplanner.engine import prices as px

ARGS = [
    "recommend",
    "--model",
    "llama-3.3-70b",
    "--context",
    "16384",
    "--min-decode-tps",
    "8",
    "--budget-usd",
    "5000",
]
# today (the M5 Max / M5 Ultra Mac Studios on sale), and a day when the 2025 Mac Studios were
DAYS = ["2026-12-07", "2025-06-01"]
USED_BASIS = re.compile(
    r"^used, (observed: median of \d+ \(\d{4}(-\d\d){0,2}(\.\.\d{4}(-\d\d){0,2})?\)"
    r"|estimated by the .+ depreciation model, CV error \d+%)"
)
# reasons a configuration is rejected that have nothing to do with its price
NOT_PRICE = re.compile(r"needs .* GiB|tokens/s|runs on Apple Silicon only|no weights")


def _run(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _studios(day: str) -> list:
    cat = load_catalog()
    return [
        c
        for c in cat.configs.values()
        if c.kind == "mac-studio" and px.year_fraction(c.release_date) <= px.year_fraction(day)
    ]


@pytest.mark.parametrize("day", DAYS)
def test_new_every_mac_studio_priced_and_nothing_discontinued_offered_new(capsys, day):
    out = _run(capsys, *ARGS, "--condition", "new", "--as-of", day)
    assert out["constraints"]["as_of"] == day
    offered = {o["machines"][0]["config_id"]: o for o in out["options"]}
    rejected = {r["config_id"]: r["reason"] for r in out["rejected"]}
    cat = load_catalog()
    for cfg in _studios(day):
        sold = px.on_sale(cfg, day)
        if cfg.id in offered:
            o = offered[cfg.id]
            assert sold, f"{cfg.id} is not sold new on {day} but was offered new"
            assert o["price_usd"] is not None and o["price_basis"].startswith("new, "), o
            assert "unknown" not in o["price_basis"]
        else:
            reason = rejected[cfg.id]
            if NOT_PRICE.search(reason):  # too small or too slow: sized before it is priced
                continue
            if not sold:
                assert reason.startswith(f"not sold new by Apple on {day}: "), reason
                assert "no dated remaining-stock listing" in reason
            else:  # on sale: rejected for fit, speed or budget, never for an unknown price
                assert NOT_PRICE.search(reason) or "above budget" in reason, reason
                assert "unknown" not in reason
    # the checks above saw both kinds on each day
    assert offered
    assert any(r.startswith("not sold new") for r in rejected.values())
    if day == "2026-12-07":
        # the 2025 Mac Studios were replaced on 2026-08-25 and are not new any more
        assert not any(cat.config(c).discontinued == "2026-08-25" for c in offered)
        assert "mac-studio-m5-max-40c-64gb" in offered


@pytest.mark.parametrize("day", DAYS)
def test_used_every_mac_studio_priced_with_its_basis(capsys, day):
    out = _run(capsys, *ARGS, "--condition", "used", "--as-of", day)
    offered = {o["machines"][0]["config_id"]: o for o in out["options"]}
    rejected = {r["config_id"]: r["reason"] for r in out["rejected"]}
    for cfg in _studios(day):
        if cfg.id in offered:
            o = offered[cfg.id]
            assert o["price_usd"] is not None and USED_BASIS.match(o["price_basis"]), o
            detail = o["price"]
            assert detail["basis"] in ("observed", "estimated")
            if detail["basis"] == "observed":
                assert detail["count"] >= 1 and detail["date_from"] and detail["date_to"]
            else:
                assert detail["model"].endswith("depreciation model")
                assert detail["error_pct"] is not None
        else:
            reason = rejected[cfg.id]
            assert NOT_PRICE.search(reason) or "above budget" in reason, reason
    assert offered


def test_as_of_changes_what_is_new(capsys):
    """The same configuration is new one day and not the next: the M3 Ultra 96GB was sold new
    until the 2026-08-25 replacement, at $5,299 after the 2026-06-25 rise."""
    base = ["prices", "show", "mac-studio-m3-ultra-60c-96gb", "--as-of"]
    before = _run(capsys, *base, "2026-07-01")["new"]
    assert (before["price_usd"], before["basis"]) == (5299, "list")
    after = _run(capsys, *base, "2026-12-07")["new"]
    assert after["price_usd"] is None and "discontinued by Apple 2026-08-25" in after["detail"]
    bad = main(["recommend", "--model", "llama-3.1-8b", "--context", "2048", "--as-of", "12/07"])
    assert bad == 2
    assert "--as-of/--today: '12/07' is not a date YYYY-MM-DD" in capsys.readouterr().err


def test_prices_show_a_storage_configuration_and_the_model(capsys):
    d = _run(capsys, "prices", "show", "mac-studio-m4-max-40c-64gb-1tb", "--as-of", "2025-06-01")
    assert d["config_id"] == "mac-studio-m4-max-40c-64gb"
    assert [o["id"] for o in d["storage_options"]] == ["mac-studio-m4-max-40c-64gb-1tb"]
    assert d["storage_options"][0]["history"][0]["price_usd"]["value"] == 2699
    model = _run(capsys, "prices", "model")["depreciation"]
    fams = {f["family"]: f for f in model["families"]}
    assert set(fams) == {
        "mac-mini",
        "mac-mini-pro",
        "mac-mini-intel",
        "mac-studio-max",
        "mac-studio-ultra",
    }
    assert sum(f["n_points"] for f in fams.values()) == model["pooled"]["n_points"] >= 150
    for f in fams.values():
        assert f["cv_median_pct"] is not None and "leave-one-configuration-out" in f["formula"]
    assert model["list_model"]["n_points"] >= 40
    assert main(["prices", "model"]) == 0
    assert "CV med %" in capsys.readouterr().out
