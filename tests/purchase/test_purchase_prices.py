"""Dated new and used prices: Apple's list prices on the day asked, the remaining-stock rule,
the observed median, the per-family depreciation model and its cross-validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from catalog import load_catalog
from forgeplanner.domain.prices import PriceObservation
from forgeplanner.engine import prices as px

TODAY = "2026-11-26"


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


@pytest.fixture(scope="module")
def model(cat):
    return px.fit_depreciation(cat.configs, cat.price_observations, cat.chips)


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


# ---------------------------------------------------------------------------------- new


def test_new_price_is_apples_list_price_on_the_day_asked(cat, model):
    obs = cat.price_observations
    mini = cat.config("mac-mini-m4-10c-16gb")
    launch = px.new_price(mini, "2025-06-01", obs, model)
    assert (launch.price_usd, launch.basis, launch.storage) == (599, "list", "256 GB")
    # 2026-05-02: the 256GB tier was withdrawn; the cheapest on sale was 16GB/512GB at $799
    may = px.new_price(mini, "2026-05-15", obs, model)
    assert (may.price_usd, may.storage) == (799, "512 GB")
    # 2026-06-25: 16GB/256GB re-listed at $899
    june = px.new_price(mini, "2026-07-01", obs, model)
    assert (june.price_usd, june.date_to, june.storage) == (899, "2026-06-25", "256 GB")
    assert "grade L" in june.detail


def test_a_repricing_scales_the_unsourced_configurations_and_says_so(cat, model):
    base = cat.config("mac-studio-m4-max-32c-36gb")
    up = px.new_price(base, "2026-07-01", cat.price_observations, model)
    assert (up.price_usd, up.basis) == (2499, "list")  # the sourced new base price
    bigger = cat.config("mac-studio-m4-max-40c-48gb")
    est = px.new_price(bigger, "2026-07-01", cat.price_observations, model)
    # launch $1,999 + $300 = $2,299, x 1.25 (the base went $1,999 -> $2,499)
    assert est.basis == "scaled" and est.price_usd == pytest.approx(2299 * 1.25)
    assert "estimated" in est.label and "x 1.25" in est.detail


def test_discontinued_machines_are_not_new_without_dated_stock(cat, model):
    cfg = cat.config("mac-studio-m2-ultra-76c-192gb")  # discontinued 2025-03-05
    b = px.new_price(cfg, TODAY, cat.price_observations, model)
    assert b.price_usd is None and b.on_sale is False
    assert "discontinued by Apple 2025-03-05" in b.detail
    assert "no dated remaining-stock listing" in b.detail
    reason = px.price_for(cfg, "new", TODAY, cat.price_observations, model)
    assert isinstance(reason, str) and reason.startswith(f"not sold new by Apple on {TODAY}")
    # "any" falls back to the used price instead of a stale launch price
    any_ = px.price_for(cfg, "any", TODAY, cat.price_observations, model)
    assert not isinstance(any_, str) and any_.condition == "used"


def test_dated_remaining_stock_makes_a_discontinued_machine_new_for_three_months(cat, model):
    cfg = cat.config("mac-studio-m2-ultra-76c-192gb")
    sealed = _obs(
        1, cfg.id, 6200.0, "2026-10-01", condition="new", price_type="new_stock", storage_gb=1000
    )
    obs = (*cat.price_observations, sealed)
    b = px.new_price(cfg, TODAY, obs, model)
    assert (b.basis, b.price_usd, b.count, b.date_to) == ("stock", 6200.0, 1, "2026-10-01")
    assert b.label.startswith("new, remaining stock: median of 1")
    stale = px.new_price(cfg, "2027-03-01", obs, model)  # five months later: not on sale
    assert stale.price_usd is None


def test_withdrawn_and_released(cat):
    cfg = cat.config("mac-studio-m3-ultra-80c-512gb")  # withdrawn 2026-03
    assert px.withdrawn_by(cfg, TODAY)
    assert not px.withdrawn_by(cfg, "2025-12-01")
    assert not px.withdrawn_by(cat.config("mac-studio-m5-max-40c-64gb"), TODAY)
    # the 2026 models were not on sale before their release
    early = px.new_price(cat.config("mac-studio-m5-max-40c-64gb"), "2026-01-01")
    assert "not released until 2026-08-25" in early.detail
    assert not px.withdrawn_by(cat.config("mac-studio-m5-max-40c-64gb"), "2026-01-01")


def test_unknown_list_prices_fall_back_to_the_list_price_model(cat, model):
    cfg = cat.config("mac-studio-m2-max-38c-64gb")  # the 38-core GPU's US price is unsourced
    assert cfg.launch_price_usd.value is None
    b = px.new_price(cfg, "2024-01-01", cat.price_observations, model)
    assert b.basis == "estimated" and b.model == "list-price model"
    assert b.error_pct == pytest.approx(model.list_model.cv_median_pct)
    # between the two sourced neighbours of the same machine
    lo = px.new_price(cat.config("mac-studio-m2-max-30c-64gb"), "2024-01-01").price_usd
    assert lo < b.price_usd < 2 * lo


def test_list_price_model_cross_validation_is_leave_one_out(cat, model):
    lm = model.list_model
    assert lm.n_points >= 40
    assert 0 < lm.cv_median_pct < 25
    # the leave-one-out error of one configuration, recomputed independently
    cfg = cat.config("mac-mini-m4-pro-20c-64gb")
    rows = [
        (c, px.ListPriceModel.features(c, cat.chips[c.chip_id]))
        for c in cat.configs.values()
        if cat.chips[c.chip_id].is_apple_silicon
        and c.launch_price_usd.value is not None
        and c.storage_options[0].launch.basis == "list"
    ]
    x = np.asarray([f for c, f in rows if c.id != cfg.id])
    y = np.asarray([math.log(c.launch_price_usd.value) for c, _ in rows if c.id != cfg.id])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    held = np.asarray(px.ListPriceModel.features(cfg, cat.chips[cfg.chip_id]))
    err = abs(math.exp(float(held @ coef)) / cfg.launch_price_usd.value - 1)
    assert err < 0.5  # out of sample, not a refit that includes the configuration


# --------------------------------------------------------------------------------- used


def test_observed_median_of_recent_matching_observations(cat, model):
    cfg = cat.config("mac-mini-m4-10c-16gb")
    b = px.used_price(cfg, cat.price_observations, TODAY, model)
    # 256GB: Apple refurbished 509 (twice) and 679, Amazon Renewed 485, Best Buy open box 525,
    # eBay 540-600 (midpoint 570); the 512GB-2TB refurbished listings are other configurations
    assert b.basis == "observed" and b.count == 6 and b.storage == "256 GB"
    assert b.price_usd == pytest.approx((509 + 525) / 2)
    assert (b.date_from, b.date_to) == ("2026-02-12", "2026-07-01")
    assert "median of 6" in b.label and "2026-02-12..2026-07-01" in b.label


def test_reported_figures_and_10gbe_listings_are_not_this_configurations_price(cat):
    ultra = cat.config("mac-studio-m3-ultra-80c-512gb")
    assert all(
        o.price_usd != 25000 for o in px.matching_observations(ultra, cat.price_observations)
    )
    tengbe = [o for o in cat.price_observations if o.ten_gbe and o.config_id]
    assert tengbe
    for o in tengbe:
        cfg = cat.config(o.config_id)
        if cfg.kind == "mac-mini":
            assert o not in px.matching_observations(cfg, cat.price_observations)


def test_old_observations_fall_back_to_the_family_model(cat, model):
    cfg = cat.config("mac-studio-m2-ultra-76c-192gb")  # no used observation of it kept
    b = px.used_price(cfg, cat.price_observations, "2024-06-01", model)
    fit = model.fit_for("mac-studio-ultra")
    age = px.year_fraction("2024-06-01") - px.year_fraction("2023-06-05")
    assert b.basis == "estimated"
    assert b.price_usd == pytest.approx(6599 * math.exp(fit.intercept + fit.slope * age))
    assert b.model == "Mac Studio (Ultra chip) depreciation model"
    assert b.error_pct == pytest.approx(fit.cv_median_pct)
    assert "CV error" in b.label and "Apple list price $6,599" in b.detail
    # in the 2026 shortage the family's shortage premium applies
    late = px.used_price(cfg, cat.price_observations, TODAY, model)
    late_age = px.year_fraction(TODAY) - px.year_fraction("2023-06-05")
    assert late.price_usd == pytest.approx(
        6599 * math.exp(fit.intercept + fit.slope * late_age + fit.shortage)
    )


def test_used_price_of_an_unreleased_machine_is_unknown(cat, model):
    b = px.used_price(cat.config("mac-studio-m5-max-40c-64gb"), (), "2026-01-01", model)
    assert b.price_usd is None and "not released until 2026-08-25" in b.detail


def test_every_family_has_a_cross_validated_error(model):
    assert set(model.families) == {
        "mac-mini",
        "mac-mini-pro",
        "mac-mini-intel",
        "mac-studio-max",
        "mac-studio-ultra",
    }
    assert model.n_points >= 150
    for fit in model.families.values():
        assert fit.cv_points == fit.n_points and fit.cv_median_pct is not None
    assert model.cv_median_pct is not None and model.cv_median_pct < 20


def test_cross_validation_leaves_the_configuration_out(cat, model):
    """The held-out error of one configuration equals a prediction from a model fitted
    without any of its observations."""
    cid = "mac-mini-m4-pro-20c-64gb"
    rest = [o for o in cat.price_observations if o.config_id != cid]
    mine = [
        o
        for o in cat.price_observations
        if o.config_id == cid and o.price_type in px.MARKET_TYPES and o.condition != "new"
    ]
    assert mine
    without = px.fit_depreciation(cat.configs, rest, cat.chips)
    cfg = cat.config(cid)
    fit = without.fit_for(cfg.family)
    for o in mine:
        ref = px.reference_price(cfg, o.storage_gb, o.date, o.ten_gbe)
        age = px.year_fraction(o.date) - px.year_fraction(cfg.release_date)
        predicted = ref * fit.ratio(age, o.date)
        assert abs(predicted / o.point_price_usd - 1) < 0.5


def test_fit_recovers_an_exact_model():
    cat = load_catalog()
    cfg = cat.config("mac-mini-m4-pro-16c-24gb")  # 1399 at launch, released 2024-10-29
    dates = ["2025-04-29", "2025-10-29", "2026-01-10", "2026-04-29", "2026-05-20"]
    obs = []
    for i, d in enumerate(dates):
        age = px.year_fraction(d) - px.year_fraction(cfg.release_date)
        ref = px.reference_price(cfg, 512, d)
        short = 0.1 if px.in_shortage(d) else 0.0
        obs.append(_obs(i, cfg.id, ref * math.exp(-0.1 - 0.2 * age + short), d, storage_gb=512))
    m = px.fit_depreciation({cfg.id: cfg}, obs)
    fit = m.fit_for(cfg.family)
    assert (fit.intercept, fit.slope, fit.shortage) == pytest.approx((-0.1, -0.2, 0.1), abs=1e-9)
    assert fit.n_points == 5 and fit.date_from == dates[0]


def test_too_few_points_means_no_model_and_unknown_price(cat):
    cfg = cat.config("mac-mini-m4-pro-16c-24gb")
    assert px.fit_depreciation(cat.configs, [_obs(1, cfg.id, 1000, "2026-01-01")]) is None
    b = px.used_price(cat.config("mac-mini-2014-i7-8gb"), [], TODAY, None)
    assert b.basis == "unknown" and "too few" in b.detail


def test_user_observation_with_storage_unknown_counts(cat, model):
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
    b = px.used_price(cfg, (*cat.price_observations, mine), TODAY, model)
    assert (b.basis, b.count, b.price_usd) == ("observed", 1, 4806.0)
