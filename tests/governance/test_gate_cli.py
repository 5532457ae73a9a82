"""`forgeplanner gate`: exit 0 allow, 1 deny, 2 escalate; 3 malformed policy, 4 plan cannot be
judged, 5 bad command line, 6 internal error. The gate judges recomputed figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeplanner.cli.main import main
from forgeplanner.plan.files import read_plan, write_plan
from tests.plan.samples import sample_plan

STUDIO = "mac-studio-m2-ultra-76c-192gb"


@pytest.fixture
def plan_file(tmp_path: Path, capsys) -> Path:
    """A real plan: one Studio at a price the user entered ($3,999: a user price is the user's
    own data and survives the gate's recompute), one model; estimates from the engine."""
    path = tmp_path / "lab.fplan"
    assert main(["plan", "new", "lab", "--out", str(path), "--no-db"]) == 0
    assert main(["plan", "add-machine", str(path), STUDIO, "--condition", "used",
                 "--price-usd", "3999", "--no-db"]) == 0  # fmt: skip
    assert main(["plan", "add-model", str(path), "llama-3.3-70b", "--quant", "Q4_K_M",
                 "--no-db"]) == 0  # fmt: skip
    capsys.readouterr()
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


def test_missing_plan_has_its_own_exit_code(tmp_path, capsys) -> None:
    policy = _policy(tmp_path, "[budget]\nmax_usd = 1\n")
    assert main(["gate", str(tmp_path / "none.fplan"), "--policy", str(policy)]) == 4
    assert "no such plan file" in capsys.readouterr().err


def test_plan_with_invalid_layout_inputs_cannot_be_judged(tmp_path, capsys) -> None:
    """The hand-made sample's alternative has a cluster layout without its node list: the
    gate cannot recompute it, so judging that alternative is refused (4) instead of trusting
    the stored layout."""
    path = tmp_path / "sample.fplan"
    plan = sample_plan()
    write_plan(path, plan)
    policy = _policy(tmp_path, "[budget]\nmax_usd = 1\n")
    broken = next(a.name for a in plan.alternatives if a.build.cluster is not None)
    assert main(["gate", str(path), "--policy", str(policy), "--alternative", broken]) == 4
    err = capsys.readouterr().err
    assert "cluster layout inputs are incomplete" in err and err.count("\n") == 1


def test_usage_error_is_not_escalate(tmp_path, capsys) -> None:
    assert main(["gate", str(tmp_path / "x.fplan")]) == 5
    err = capsys.readouterr().err
    assert "--policy" in err and err.count("\n") == 1


def test_edited_figures_are_recomputed_not_trusted(tmp_path, plan_file, capsys) -> None:
    """An edited file claiming a $1 catalog price and no power draw is judged on the
    catalog's figures: the budget DENYs and a note names what was recomputed."""
    doc = json.loads(plan_file.read_text())
    machine = doc["plan"]["build"]["machines"][0]
    machine["price"].update({"usd": 1.0, "basis": "launch", "as_of": "2023-06"})
    machine["max_w"] = 0.0
    plan_file.write_text(json.dumps(doc))
    policy = _policy(tmp_path, "[budget]\nmax_usd = 3000\n[power]\nmax_watts = 100\n")
    assert main(["gate", str(plan_file), "--policy", str(policy), "--json"]) == 1
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    by_rule = {v["rule"]: v["outcome"] for v in out["verdicts"]}
    assert by_rule == {"budget": "DENY", "power": "DENY"}
    assert "judged on recomputed figures" in captured.err and "$1 ->" in captured.err


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
