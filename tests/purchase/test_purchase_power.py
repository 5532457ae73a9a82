"""Running cost, shelf totals and tokens per joule."""

from __future__ import annotations

import pytest

from catalog import load_catalog
from forgeplanner.domain.provenance import Figure
from forgeplanner.engine.power import (
    ShelfItem,
    annual_energy,
    shelf_totals,
    tokens_per_joule,
    watts_to_btu_h,
)


def test_annual_energy_and_cost():
    e = annual_energy(4, 65, 8, 0.30)
    # (65 W x 8 h + 4 W x 16 h) x 365 / 1000
    assert e.kwh == pytest.approx((65 * 8 + 4 * 16) * 365 / 1000)
    assert e.cost == pytest.approx(e.kwh * 0.30)
    assert "65 W x 8 h" in e.formula
    assert annual_energy(4, 65, 8).cost is None
    assert annual_energy(4, 65, 24).kwh == pytest.approx(65 * 24 * 365 / 1000)
    assert annual_energy(None, 65, 8).kwh is None


@pytest.mark.parametrize("hours", [-1, 24.5])
def test_duty_cycle_must_be_a_day(hours):
    with pytest.raises(ValueError, match="0-24"):
        annual_energy(4, 65, hours)


def test_shelf_totals_from_the_catalog():
    cat = load_catalog()
    mini = cat.config("mac-mini-m4-10c-16gb")
    studio = cat.config("mac-studio-m4-max-32c-36gb")  # BTU/h derived from W x 3.412
    items = [
        ShelfItem("mini", 2, mini.idle_w, mini.max_w, mini.idle_btu_h, mini.max_btu_h),
        ShelfItem("studio", 1, studio.idle_w, studio.max_w, studio.idle_btu_h, studio.max_btu_h),
    ]
    t = shelf_totals(items)
    assert (t.idle_w, t.max_w) == (2 * 4 + 6, 2 * 65 + 145)
    assert t.max_btu_h == pytest.approx(2 * 222 + 145 * 3.412, abs=0.1)
    assert t.unknown == ()


def test_shelf_with_an_unknown_figure_is_unknown_and_says_which():
    known = Figure(10.0, source="s", as_of="2024")
    missing = Figure.unknown("Apple did not publish it")
    t = shelf_totals(
        [
            ShelfItem("a", 1, known, known, known, known),
            ShelfItem("b", 3, known, missing, known, known),
        ]
    )
    assert t.idle_w == 40 and t.max_w is None
    assert t.unknown == ("b: max_w (Apple did not publish it)",)


def test_tokens_per_joule():
    assert tokens_per_joule(30.0, 60.0) == 0.5
    assert tokens_per_joule(None, 60.0) is None
    assert tokens_per_joule(30.0, None) is None
    assert watts_to_btu_h(100) == pytest.approx(341.2)


def test_running_cost_cli(capsys):
    import json

    from forgeplanner.cli.main import main

    assert main(["prices", "running-cost", "mac-mini-m4-pro-20c-64gbx4",
                 "mac-studio-m4-max-32c-36gb", "--hours-at-load", "6", "--tariff", "0.3",
                 "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["shelf"]["max_w"] == 4 * 140 + 145
    assert out["shelf"]["idle_w"] == 4 * 5 + 6
    assert out["shelf"]["max_btu_h"] == pytest.approx(4 * 478 + 145 * 3.412, abs=0.1)
    kwh = ((4 * 140 + 145) * 6 + (4 * 5 + 6) * 18) * 365 / 1000
    assert out["annual_energy"]["kwh"] == pytest.approx(kwh, abs=0.01)
    assert out["annual_energy"]["cost"] == pytest.approx(kwh * 0.3, abs=0.01)
    assert main(["prices", "running-cost", "mac-mini-m4-10c-16gb", "--hours-at-load", "25"]) == 2
    assert "[0, 24]" in capsys.readouterr().err
    assert main(["prices", "running-cost", "mac-mini-m4-10c-16gbx2"]) == 0
    assert "total" in capsys.readouterr().out
