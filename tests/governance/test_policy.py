"""Policy files: the shipped example parses; every malformed policy is a PolicyError that
names the file, the key and the value (never a verdict)."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeplanner.governance.policy import PolicyError, load_policy, parse_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.toml"


def test_example_policy_parses() -> None:
    policy = load_policy(EXAMPLE)
    assert policy.name == "home lab, 70B class"
    assert policy.budget.max_usd == 8000 and policy.budget.escalate_usd == 6000
    assert policy.power.max_watts == 600
    assert policy.memory.min_headroom_gib == 8 and policy.memory.raised_limit == "escalate"
    assert "Llama 3.3 Community License" in policy.licences.allowed
    assert policy.agreement.min_pct == 75 and policy.agreement.metrics == (
        "decode_tps",
        "prefill_tps",
    )
    assert len(policy.sha256) == 64 and policy.text.startswith("# ForgePlanner gate policy")


def test_absent_sections_are_rules_not_applied() -> None:
    policy = parse_policy(b"[budget]\nmax_usd = 5000\n")
    assert policy.budget.max_usd == 5000
    assert policy.power is policy.memory is policy.licences is policy.agreement is None


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[budget\nmax_usd = 1", "(syntax)", "not valid TOML"),
        ("[policy]\nname = 'x'\n", "(sections)", "no rule sections"),
        ("[budgets]\nmax_usd = 1\n", "budgets", "unknown section"),
        ("[budget]\nmax_dollars = 1\n", "budget.max_dollars", "unknown key"),
        ("[budget]\nescalate_usd = 1\n", "budget.max_usd", "required key is missing"),
        ("[budget]\nmax_usd = '8000'\n", "budget.max_usd", "must be a number"),
        ("[budget]\nmax_usd = true\n", "budget.max_usd", "must be a number"),
        ("[budget]\nmax_usd = -1\n", "budget.max_usd", "must be >= 0"),
        ("[budget]\nmax_usd = 100\nescalate_usd = 200\n", "budget.escalate_usd", "must not exceed"),
        (
            "[memory]\nmin_headroom_gib = 4\nraised_limit = 'maybe'\n",
            "memory.raised_limit",
            "valid: allow, escalate, deny",
        ),
        ("[licences]\nallowed = 'mit'\n", "licences.allowed", "must be a list"),
        ("[licences]\nallowed = ['mit', 3]\n", "licences.allowed[1]", "licence name"),
        ("[agreement]\nmin_pct = 120\n", "agreement.min_pct", "0..100"),
        ("[agreement]\nmin_pct = 80\nescalate_pct = 70\n", "agreement.escalate_pct", "between"),
        ("[agreement]\nmin_pct = 80\nmetrics = ['speed']\n", "agreement.metrics[0]", "valid:"),
        ("budget = 5\n", "budget", "must be a [section] table"),
    ],
)
def test_malformed_policies(text: str, key: str, problem: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text.encode(), "my-policy.toml")
    assert info.value.key == key
    assert problem in str(info.value)
    assert str(info.value).startswith("my-policy.toml: policy key")


def test_unreadable_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"[policy]\nname = '\xe9'\n")
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(bad)
