"""Quantization choice, rejection reasons, limits, ranking and the Pareto frontier."""

from __future__ import annotations

import pytest

from forgeplanner.domain.units import GiB
from forgeplanner.engine.recommend import (
    Option,
    QuantCandidate,
    choose_quant,
    limit_reason,
    memory_reason,
    rank,
)


def _c(q, tier, verdict, total_gib, dec=None, limit=36.0, raisable=36.0):
    return QuantCandidate(
        q,
        tier,
        verdict,
        int(total_gib * GiB),
        int(limit * GiB),
        int(raisable * GiB),
        dec,
        None if dec is None else dec * 10,
    )


def test_best_quality_that_fits():
    cands = [
        _c("Q8_0", 1, "does-not-fit", 70),
        _c("Q6_K", 2, "fits-with-raised-limit", 40, 8),
        _c("Q4_K_M", 6, "fits", 30, 12),
    ]
    assert choose_quant(cands, None).chosen.quant == "Q6_K"
    assert choose_quant(cands, 10).chosen.quant == "Q4_K_M"


def test_rejection_reasons_state_the_numbers():
    too_big = [_c("Q8_0", 1, "does-not-fit", 70), _c("Q4_K_M", 6, "does-not-fit", 43.1)]
    r = choose_quant(too_big, None)
    assert r.chosen is None and r.reason == "needs 43.1 GiB at Q4_K_M, GPU limit 36.0 GiB"
    slow = [_c("Q4_K_M", 6, "fits", 30, 7.94)]
    assert choose_quant(slow, 10).reason == (
        "decode 7.9 tokens/s at Q4_K_M (fastest that fits) < required 10"
    )
    unknown = [QuantCandidate("Q4_K_M", 6, "fits", 1, 2, 2, None, None, "bandwidth unknown")]
    assert "decode speed unknown (bandwidth unknown)" in choose_quant(unknown, 10).reason
    assert choose_quant(unknown, None).chosen is not None  # no speed limit: still an option
    assert "--quant-min" in choose_quant([], None).reason
    raised = _c("Q4_K_M", 6, "does-not-fit", 43.1, limit=36.0, raisable=40.0)
    assert memory_reason(raised).endswith("GPU limit 36.0 GiB (raisable to 40.0 GiB)")


def test_limits():
    assert limit_reason(1500, 100, 1000, None) == "price $1,500 above budget $1,000"
    assert limit_reason(None, 100, 1000, None).startswith("price unknown")
    assert limit_reason(900, 150, 1000, 140) == "max 150 W above --max-watts 140"
    assert limit_reason(900, None, None, 140).startswith("max watts unknown")
    assert limit_reason(900, 100, 1000, 140) is None


def _o(cid, price, dec, watts):
    return Option(
        ((cid, 1),),
        "llama.cpp",
        "Q4_K_M",
        price,
        "test",
        dec,
        None,
        "fits",
        None,
        watts,
        None,
        None,
    )


def test_rank_sorts_by_price_and_marks_the_pareto_frontier():
    opts = [
        _o("slow-cheap", 500, 5.0, 60),
        _o("fast-dear", 2000, 20.0, 150),
        _o("dominated", 2100, 15.0, 160),  # dearer, slower and hungrier than fast-dear
        _o("frugal", 2100, 15.0, 40),  # dearer and slower, but fewer watts: on the frontier
        _o("unpriced", None, 30.0, 100),  # fastest, price unknown: sorted last, off the frontier
        _o("speed-unknown", 400, None, 50),  # cheapest, speed unknown: cannot be placed on it
    ]
    ranked = rank(opts)
    assert [o.machines[0][0] for o in ranked] == [
        "speed-unknown",
        "slow-cheap",
        "fast-dear",
        "frugal",
        "dominated",
        "unpriced",
    ]
    flags = {o.machines[0][0]: o.pareto for o in ranked}
    assert flags == {
        "slow-cheap": True,
        "fast-dear": True,
        "frugal": True,
        "dominated": False,
        "unpriced": False,
        "speed-unknown": False,
    }


@pytest.mark.parametrize("n", [0, 1])
def test_rank_of_tiny_lists(n):
    opts = [_o("a", 1, 1.0, 1)][:n]
    assert all(o.pareto for o in rank(opts))
