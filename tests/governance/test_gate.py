"""Gate verdicts: one per rule and subject, with the reason; DENY beats ESCALATE beats ALLOW."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forgeplanner.domain.plan import Build
from forgeplanner.governance.gate import (
    ALLOW,
    DENY,
    ESCALATE,
    agreement_pct,
    evaluate,
    licence_allowed,
)
from forgeplanner.governance.policy import parse_policy
from tests.plan.samples import estimate, run, sample_plan, studio


def policy(text: str):
    return parse_policy(text.encode(), "p.toml")


def only(result, rule: str):
    found = [v for v in result.verdicts if v.rule == rule]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("max_usd", "escalate", "outcome", "words"),
    [
        (5000, None, ALLOW, "within $5,000"),
        (3000, None, DENY, "exceeds the ceiling $3,000"),
        (5000, 3500, ESCALATE, "above the review threshold $3,500"),
        (3999, None, ALLOW, "within"),
    ],
)
def test_budget(max_usd, escalate, outcome, words) -> None:
    text = f"[budget]\nmax_usd = {max_usd}\n" + (f"escalate_usd = {escalate}\n" if escalate else "")
    v = only(evaluate(sample_plan(), policy(text)), "budget")
    assert v.outcome == outcome and words in v.reason
    assert v.observed == "$3,999"


def test_budget_with_unknown_price_escalates_unless_already_over() -> None:
    plan = sample_plan()
    plan = replace(
        plan,
        build=replace(
            plan.build,
            machines=(studio(), replace(studio(usd=None), config_id="mac-mini-m4-pro-20c-64gb")),
        ),
    )
    v = only(evaluate(plan, policy("[budget]\nmax_usd = 5000\n")), "budget")
    assert v.outcome == ESCALATE and "no price for mac-mini-m4-pro-20c-64gb" in v.reason
    v = only(evaluate(plan, policy("[budget]\nmax_usd = 3000\n")), "budget")
    assert v.outcome == DENY


def test_power() -> None:
    assert (
        only(evaluate(sample_plan(), policy("[power]\nmax_watts = 300\n")), "power").outcome
        == ALLOW
    )
    v = only(evaluate(sample_plan(), policy("[power]\nmax_watts = 200\n")), "power")
    assert v.outcome == DENY and "295 W" in v.reason
    plan = sample_plan()
    plan = replace(plan, build=replace(plan.build, machines=(replace(studio(), max_w=None),)))
    assert only(evaluate(plan, policy("[power]\nmax_watts = 300\n")), "power").outcome == ESCALATE


def _with_estimates(*ests):
    plan = sample_plan()
    return replace(plan, build=replace(plan.build, estimates=ests))


def test_memory_headroom() -> None:
    p = policy("[memory]\nmin_headroom_gib = 8\n")
    assert only(evaluate(sample_plan(), p), "memory-headroom").outcome == ALLOW
    v = only(evaluate(_with_estimates(estimate(headroom_gib=5)), p), "memory-headroom")
    assert v.outcome == DENY and "5.0 GiB" in v.reason
    v = only(
        evaluate(_with_estimates(estimate(headroom_gib=-3, verdict="does-not-fit")), p),
        "memory-headroom",
    )
    assert v.outcome == DENY and "does not fit" in v.reason
    raised = estimate(headroom_gib=20, verdict="fits-with-raised-limit")
    assert only(evaluate(_with_estimates(raised), p), "memory-headroom").outcome == ESCALATE
    allow_raised = policy("[memory]\nmin_headroom_gib = 8\nraised_limit = 'allow'\n")
    assert only(evaluate(_with_estimates(raised), allow_raised), "memory-headroom").outcome == ALLOW
    v = only(evaluate(_with_estimates(), p), "memory-headroom")
    assert v.outcome == ESCALATE and "no estimate" in v.reason
    # The best machine decides: a mini that cannot hold it does not matter if the Studio can.
    both = _with_estimates(estimate("mac-mini-m4-16gb", -30, "does-not-fit"), estimate())
    assert only(evaluate(both, p), "memory-headroom").outcome == ALLOW


def test_memory_headroom_of_a_cluster_is_its_tightest_node() -> None:
    plan = sample_plan()
    alt = plan.alternatives[0].name
    result = evaluate(plan, policy("[memory]\nmin_headroom_gib = 8\n"), alternative=alt)
    v = only(result, "memory-headroom")
    assert v.outcome == ALLOW and "cluster (tightest node" in v.reason  # 48 - 16 = 32 GiB
    assert result.target == f"alternative {alt}"
    v = only(evaluate(plan, policy("[memory]\nmin_headroom_gib = 40\n"), alt), "memory-headroom")
    assert v.outcome == DENY


def test_licences() -> None:
    p = policy("[licences]\nallowed = ['llama 3.3 community LICENSE']\n")
    assert only(evaluate(sample_plan(), p), "licence").outcome == ALLOW
    v = only(evaluate(sample_plan(), policy("[licences]\nallowed = ['Apache-2.0']\n")), "licence")
    assert v.outcome == DENY and "Llama 3.3 Community License" in v.reason
    plan = sample_plan()
    plan = replace(
        plan, build=replace(plan.build, models=(replace(plan.build.models[0], license=""),))
    )
    assert (
        only(evaluate(plan, policy("[licences]\nallowed = ['mit']\n")), "licence").outcome
        == ESCALATE
    )


def test_licence_matching_is_whole_or_pattern_never_prefix() -> None:
    allowed = ("MIT", "Apache-2.0 (*")
    assert licence_allowed("MIT", allowed) == "MIT"
    assert licence_allowed("mit", allowed) == "MIT"
    assert licence_allowed("MIT (code) + DeepSeek Model License (weights)", allowed) is None
    assert licence_allowed("Apache-2.0 (QwenLM README: all Apache 2.0)", allowed) == "Apache-2.0 (*"
    assert licence_allowed("Apache-2.0", allowed) is None


def test_agreement() -> None:
    assert agreement_pct(50, 100) == agreement_pct(200, 100) == 50.0
    assert agreement_pct(0, 10) is None
    p = policy("[agreement]\nmin_pct = 90\nmetrics = ['decode_tps']\n")
    v = only(evaluate(sample_plan(), p), "agreement")  # 11.8 measured vs 12.5 estimated
    assert v.outcome == ALLOW and v.observed == "94.4 %" and v.subject == "run 7 decode_tps"
    p = policy("[agreement]\nmin_pct = 95\nmetrics = ['decode_tps']\n")
    assert only(evaluate(sample_plan(), p), "agreement").outcome == DENY
    p = policy("[agreement]\nmin_pct = 90\nescalate_pct = 95\nmetrics = ['decode_tps']\n")
    assert only(evaluate(sample_plan(), p), "agreement").outcome == ESCALATE
    unmeasured = replace(sample_plan(), runs=())
    for action, outcome in (("allow", ALLOW), ("escalate", ESCALATE), ("deny", DENY)):
        p = policy(f"[agreement]\nmin_pct = 90\nwhen_unmeasured = '{action}'\n")
        v = only(evaluate(unmeasured, p), "agreement")
        assert v.outcome == outcome and "no attached run" in v.reason


def test_overall_outcome_and_exit_code() -> None:
    plan = replace(sample_plan(), runs=(run(decode=12.4),))
    allow = evaluate(plan, policy("[budget]\nmax_usd = 5000\n[power]\nmax_watts = 400\n"))
    assert (allow.outcome, allow.exit_code) == (ALLOW, 0)
    esc = evaluate(
        plan, policy("[budget]\nmax_usd = 5000\nescalate_usd = 1000\n[power]\nmax_watts = 400\n")
    )
    assert (esc.outcome, esc.exit_code) == (ESCALATE, 2)
    deny = evaluate(
        plan, policy("[budget]\nmax_usd = 5000\nescalate_usd = 1000\n[power]\nmax_watts = 100\n")
    )
    assert (deny.outcome, deny.exit_code) == (DENY, 1)


def test_empty_build() -> None:
    plan = replace(sample_plan(), build=Build())
    result = evaluate(plan, policy("[budget]\nmax_usd = 1\n[power]\nmax_watts = 1\n"))
    assert {v.outcome for v in result.verdicts} == {ESCALATE}


_SEVERITY = {ALLOW: 0, ESCALATE: 1, DENY: 2}


@settings(max_examples=60, deadline=None)
@given(
    low=st.floats(min_value=0, max_value=20_000),
    raise_by=st.floats(min_value=0, max_value=20_000),
    watts=st.floats(min_value=0, max_value=2_000),
    headroom=st.floats(min_value=0, max_value=200),
)
def test_a_looser_policy_is_never_stricter(low, raise_by, watts, headroom) -> None:
    """Raising a ceiling or lowering a minimum can only move verdicts toward ALLOW, and the
    overall outcome is always the most severe verdict."""
    plan = sample_plan()

    def outcome(budget: float, min_headroom: float):
        text = (
            f"[budget]\nmax_usd = {budget}\n[power]\nmax_watts = {watts}\n"
            f"[memory]\nmin_headroom_gib = {min_headroom}\n"
        )
        result = evaluate(plan, policy(text))
        worst = max((v.outcome for v in result.verdicts), key=_SEVERITY.__getitem__)
        assert (
            result.outcome == worst and result.exit_code == {ALLOW: 0, DENY: 1, ESCALATE: 2}[worst]
        )
        return {v.rule: _SEVERITY[v.outcome] for v in result.verdicts}

    strict = outcome(low, headroom + 10)
    loose = outcome(low + raise_by, headroom)
    assert all(loose[rule] <= strict[rule] for rule in strict)
