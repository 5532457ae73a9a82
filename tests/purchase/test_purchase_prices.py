"""Used-price basis: observed median, estimate from launch price and age, new list price."""

from __future__ import annotations

import math

import pytest

from catalog import load_catalog
from forgeplanner.domain.prices import PriceObservation
from forgeplanner.engine import prices as px

TODAY = "2026-11-26"


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def _obs(i, config_id, price, date, **kw):
    base = dict(
        id=f"t-{i}",
        item="t",
        price_usd=price,
        condition="used",
        price_type="used_sold",
        date=date,
        source=f"test {i}",
        config_id=config_id,
    )
    base.update(kw)
    return PriceObservation(**base)


def test_year_fraction_takes_the_middle_of_partial_dates():
    assert px.year_fraction("2026") == 2026.5
    assert px.year_fraction("2026-01") == pytest.approx(2026 + 0.5 / 12)
    assert px.year_fraction("2026-01-01") == pytest.approx(2026 + 0.5 / 365.25)
    assert px.year_fraction("2024-10-29") < px.year_fraction("2024-11")


def test_observed_median_of_recent_matching_observations(cat):
    cfg = cat.config("mac-mini-m4-10c-16gb")
    b = px.used_price(cfg, cat.price_observations, TODAY, None)
    # 509 refurb, 485 renewed, 525 open box, 540-600 eBay (midpoint 570); the 679 refurb is the
    # 512 GB model and the $899 row is Apple's new list price: both excluded.
    assert b.basis == "observed" and b.count == 4
    assert b.price_usd == pytest.approx((509 + 525) / 2)
    assert (b.date_from, b.date_to) == ("2026-02-18", "2026-02-19")
    assert "median of 4" in b.label and "2026-02-18" in b.label


def test_reported_figures_are_not_market_prices(cat):
    cfg = cat.config("mac-studio-m3-ultra-80c-512gb")
    assert not px.matching_observations(cfg, cat.price_observations)  # the 'up to 25000' row
    b = px.used_price(cfg, cat.price_observations, TODAY, None)
    assert b.basis == "unknown" and b.price_usd is None


def test_old_observations_fall_back_to_the_fitted_estimate(cat):
    fit = px.fit_depreciation(cat.configs, cat.price_observations)
    assert fit is not None and fit.n_points >= 5 and fit.slope < 0
    cfg = cat.config("mac-studio-m1-max-24c-32gb")  # only a 2022 refurb observation
    b = px.used_price(cfg, cat.price_observations, TODAY, fit)
    age = px.year_fraction(TODAY) - px.year_fraction("2022-03-08")
    assert b.basis == "estimated"
    assert b.price_usd == pytest.approx(1999 * math.exp(fit.intercept + fit.slope * age))
    assert "EXTRAPOLATED" in b.detail and "1 older observation" in b.detail
    assert "extrapolated" in b.label


def test_fit_recovers_an_exact_exponential():
    cat = load_catalog()
    cfg = cat.config("mac-mini-m4-pro-16c-24gb")  # launch 1399, released 2024-10-29
    dates = ["2025-04-29", "2025-10-29", "2026-04-29", "2026-10-29"]
    obs = []
    for i, d in enumerate(dates):
        age = px.year_fraction(d) - px.year_fraction(cfg.release_date)
        obs.append(_obs(i, cfg.id, 1399 * math.exp(-0.1 - 0.2 * age), d))
    fit = px.fit_depreciation({cfg.id: cfg}, obs)
    assert fit.intercept == pytest.approx(-0.1, abs=1e-9)
    assert fit.slope == pytest.approx(-0.2, abs=1e-9)
    assert fit.n_points == 4 and fit.date_from == dates[0]


def test_too_few_points_means_no_fit_and_unknown_price(cat):
    cfg = cat.config("mac-mini-m4-pro-16c-24gb")
    assert px.fit_depreciation(cat.configs, [_obs(1, cfg.id, 1000, "2026-01-01")]) is None
    b = px.used_price(cat.config("mac-mini-2014-i7-8gb"), [], TODAY, None)
    assert b.basis == "unknown" and "launch price unknown" in b.detail


def test_user_observation_with_storage_unknown_counts(cat):
    cfg = cat.config("mac-studio-m2-ultra-76c-192gb")
    mine = _obs(
        9,
        cfg.id,
        4806.0,
        "2026-11-01",
        condition="refurbished",
        price_type="listing",
        origin="user",
    )
    b = px.used_price(cfg, (*cat.price_observations, mine), TODAY, None)
    assert (b.basis, b.count, b.price_usd) == ("observed", 1, 4806.0)


def test_new_price_is_the_latest_apple_list_price(cat):
    m4 = px.new_price(cat.config("mac-mini-m4-10c-16gb"), cat.price_observations)
    assert (m4.price_usd, m4.date_to) == (899, "2026-06")
    studio = px.new_price(cat.config("mac-studio-m3-ultra-60c-96gb"), cat.price_observations)
    assert (studio.price_usd, studio.date_to) == (5299, "2026-06-25")
    launch = px.new_price(cat.config("mac-mini-m2-pro-19c-32gb"), cat.price_observations)
    assert launch.price_usd == 1999 and "bin-19c" in launch.detail
    unknown = px.new_price(cat.config("mac-mini-m4-10c-32gb"), cat.price_observations)
    assert unknown.basis == "unknown" and unknown.price_usd is None


def test_withdrawn_options(cat):
    cfg = cat.config("mac-studio-m3-ultra-80c-512gb")  # withdrawn 2026-03
    assert px.withdrawn_by(cfg, "2026-11-26")
    assert not px.withdrawn_by(cfg, "2025-12-01")
    assert not px.withdrawn_by(cat.config("mac-mini-m4-10c-16gb"), "2026-11-26")
