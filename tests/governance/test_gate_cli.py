"""`forgeplanner gate`: exit 0 allow, 1 deny, 2 escalate, 3 malformed policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeplanner.cli.main import main
from forgeplanner.plan.files import read_plan, write_plan
from tests.plan.samples import sample_plan


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "lab.fplan"
    write_plan(path, sample_plan())
    return path


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "code", "outcome"),
    [
        ("[budget]\nmax_usd = 5000\n", 0, "ALLOW"),
        ("[budget]\nmax_usd = 3000\n", 1, "DENY"),
        ("[budget]\nmax_usd = 5000\nescalate_usd = 2000\n", 2, "ESCALATE"),
        ("[budget]\nmax_usd = 5000\nescalate_usd = 2000\n[power]\nmax_watts = 10\n", 1, "DENY"),
    ],
)
def test_exit_codes(tmp_path, plan_file, capsys, text, code, outcome) -> None:
    assert (
        main(["gate", str(plan_file), "--policy", str(_policy(tmp_path, text)), "--json"]) == code
    )
    out = json.loads(capsys.readouterr().out)
    assert out["outcome"] == outcome and out["exit_code"] == code
    assert all({"rule", "outcome", "reason", "subject"} <= set(v) for v in out["verdicts"])


def test_malformed_policy_exits_3_not_escalate(tmp_path, plan_file, capsys) -> None:
    code = main(["gate", str(plan_file), "--policy", str(_policy(tmp_path, "[budget]\nmax = 1\n"))])
    assert code == 3
    err = capsys.readouterr().err
    assert "malformed policy" in err and "budget.max" in err


def test_missing_plan_is_an_ordinary_error(tmp_path, capsys) -> None:
    policy = _policy(tmp_path, "[budget]\nmax_usd = 1\n")
    assert main(["gate", str(tmp_path / "none.fplan"), "--policy", str(policy)]) == 2
    assert "no such plan file" in capsys.readouterr().err


def test_record_stores_verdicts_in_the_plan(tmp_path, plan_file, capsys) -> None:
    policy = _policy(tmp_path, "[budget]\nmax_usd = 3000\n")
    assert main(["gate", str(plan_file), "--policy", str(policy), "--record"]) == 1
    (verdict,) = read_plan(plan_file).verdicts
    assert (verdict.rule, verdict.outcome) == ("budget", "DENY")
    assert "DENY" in capsys.readouterr().out


def test_example_policy_against_example_plan(capsys) -> None:
    root = Path(__file__).resolve().parents[2]
    example = root / "examples" / "70b-home-lab.fplan"
    code = main(
        ["gate", str(example), "--policy", str(root / "examples" / "policy.toml"), "--json"]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == {"ALLOW": 0, "DENY": 1, "ESCALATE": 2}[out["outcome"]]
    by_rule = {v["rule"]: v["outcome"] for v in out["verdicts"]}
    # The Studio plan is within the example policy; nothing is measured yet, so a human
    # must sign off (ESCALATE) until benchmark runs are attached.
    assert by_rule == {
        "budget": "ALLOW",
        "power": "ALLOW",
        "memory-headroom": "ALLOW",
        "licence": "ALLOW",
        "agreement": "ESCALATE",
    }
    assert code == 2
