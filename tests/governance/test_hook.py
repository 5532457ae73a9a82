"""The gate at the boundary of a real git repository: the plain pre-commit hook and the
pre-commit framework (this repository's .pre-commit-hooks.yaml), ALLOW / DENY / ESCALATE,
sign-offs bound to the plan's bytes, every verdict kept as evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forgeplanner.cli.main import main
from forgeplanner.store import EvidenceRepo, Store

REPO_ROOT = Path(__file__).resolve().parents[2]


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # try-repo snapshots uncommitted changes of this repository in a temporary commit: give
    # it an identity on a machine that has none (CI)
    for who in ("AUTHOR", "COMMITTER"):
        env.setdefault(f"GIT_{who}_NAME", "forgeplanner tests")
        env.setdefault(f"GIT_{who}_EMAIL", "tests@forgeplanner.invalid")
    return env


@pytest.fixture()
def plan_repo(tmp_path, capsys):
    repo = tmp_path / "shelf-plans"
    assert main(["governance", "init", str(repo)]) == 0
    assert main(["governance", "install-hook", str(repo), "--policy", "policy.toml"]) == 0
    capsys.readouterr()
    return repo


def _records(kind: str):
    store = Store()
    try:
        with store.session() as s:
            return EvidenceRepo(s).list(kind=kind)
    finally:
        store.close()


def test_allow_deny_escalate_and_sign_off_through_git(plan_repo, capsys):
    plan = str(plan_repo / "lab.fplan")
    policy = str(plan_repo / "policy.toml")
    # ALLOW: a model that fits with room to spare; the commit goes through
    assert main(["plan", "add-model", plan, "llama-3.1-8b", "--quant", "Q4_K_M", "--no-db"]) == 0
    c = _git(plan_repo, "commit", "-am", "add llama-3.1-8b")
    assert c.returncode == 0, c.stderr
    # DENY: the 70B at Q8_0 does not fit the 64 GB Studio; the commit is refused
    assert main(["plan", "add-model", plan, "llama-3.1-70b", "--quant", "Q8_0", "--no-db"]) == 0
    c = _git(plan_repo, "commit", "-am", "add llama-3.1-70b Q8_0")
    assert c.returncode != 0 and "DENY memory-headroom llama-3.1-70b" in c.stderr
    assert (
        main(["governance", "sign-off", plan, "--policy", policy, "--who", "Ada", "--why", "no"])
        == 2
    )
    assert "a DENY cannot be signed off" in capsys.readouterr().err
    assert _git(plan_repo, "checkout", "--", "lab.fplan").returncode == 0
    # ESCALATE: a second Studio puts the build in the review band; refused until signed off
    second = ["mac-studio-m2-max-30c-64gb", "--price-usd", "2399", "--price-date", "2023-06-05"]
    assert main(["plan", "add-machine", plan, *second, "--no-db"]) == 0
    c = _git(plan_repo, "commit", "-am", "second studio")
    assert c.returncode != 0 and "ESCALATE budget build" in c.stderr
    assert "governance sign-off" in c.stderr
    capsys.readouterr()
    assert (
        main(
            [
                "governance",
                "sign-off",
                plan,
                "--policy",
                policy,
                "--who",
                "Ada Lovelace",
                "--why",
                "capacity for the 70B at Q4; budget approved",
                "--json",
            ]
        )
        == 0
    )
    signoff = json.loads(capsys.readouterr().out)["signoff"]
    assert signoff["who"] == "Ada Lovelace" and signoff["when"].endswith("Z")
    c = _git(plan_repo, "commit", "-am", "second studio")
    assert c.returncode == 0, c.stderr
    assert "signed off by Ada Lovelace" in c.stdout + c.stderr  # git shows hook output on stderr
    assert len(_git(plan_repo, "log", "--oneline").stdout.splitlines()) == 3
    # every verdict is evidence: the hook's ALLOW, DENY, the refused sign-off's DENY, the
    # hook's ESCALATE, the sign-off's own ESCALATE, the signed-off ESCALATE
    outcomes = [r.body["outcome"] for r in reversed(_records("gate"))]
    assert outcomes == ["ALLOW", "DENY", "DENY", "ESCALATE", "ESCALATE", "ESCALATE"]
    last = _records("gate")[0].body
    assert last["signoff"]["who"] == "Ada Lovelace" and last["exit_code"] == 0
    assert all(r.body["latency_ms"] > 0 and r.body["verdicts"] for r in _records("gate"))
    # a changed plan is not covered by the old sign-off
    assert main(["plan", "add-model", plan, "qwen2.5-14b", "--quant", "Q4_K_M", "--no-db"]) == 0
    c = _git(plan_repo, "commit", "-am", "and qwen")
    assert c.returncode != 0 and "ESCALATE" in c.stderr


def test_pre_commit_framework_runs_the_hook_from_this_repository(plan_repo, tmp_path):
    plan = str(plan_repo / "lab.fplan")
    assert main(["plan", "add-model", plan, "llama-3.1-70b", "--quant", "Q8_0", "--no-db"]) == 0
    env = _env()
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    argv = [
        sys.executable,
        "-m",
        "pre_commit",
        "try-repo",
        str(REPO_ROOT),
        "forgeplanner-gate-system",
        "--files",
        "lab.fplan",
    ]
    proc = subprocess.run(
        argv, cwd=plan_repo, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "DENY memory-headroom llama-3.1-70b" in proc.stdout
    assert _git(plan_repo, "checkout", "--", "lab.fplan").returncode == 0
    proc = subprocess.run(
        argv, cwd=plan_repo, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hook_refuses_to_replace_a_foreign_hook_and_bad_policy_is_exit_3(tmp_path, capsys):
    repo = tmp_path / "r"
    assert main(["governance", "init", str(repo)]) == 0
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 0\n")
    assert main(["governance", "install-hook", str(repo), "--policy", "policy.toml"]) == 2
    assert "is not ForgePlanner's hook" in capsys.readouterr().err
    assert hook.read_text() == "#!/bin/sh\nexit 0\n"
    bad = tmp_path / "bad.toml"
    bad.write_text("[budget]\nmax_usd = 'lots'\n")
    assert main(["governance", "check", "--policy", str(bad), str(repo / "lab.fplan")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "budget.max_usd" in err


def test_latency_is_measured(plan_repo, capsys):
    plan, policy = str(plan_repo / "lab.fplan"), str(plan_repo / "policy.toml")
    assert (
        main(
            [
                "governance",
                "latency",
                plan,
                "--policy",
                policy,
                "--runs",
                "5",
                "--process-runs",
                "1",
                "--json",
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["in_process"]["runs"] == 5 and d["in_process"]["median_ms"] > 0
    assert d["hook_process"]["runs"] == 1 and d["hook_process"]["median_ms"] > 0


def test_check_has_the_gates_exit_codes_and_judges_recomputed_figures(plan_repo, capsys):
    """Errors are never verdicts (3 policy, 4 plan, 5 command line), and a price edited in the
    file does not fool the hook: it judges the figures recomputed from the catalog."""
    policy, plan = str(plan_repo / "policy.toml"), plan_repo / "lab.fplan"
    check = ["governance", "check", "--no-record", "--policy", policy]
    assert main([*check, str(plan_repo / "missing.fplan")]) == 4
    assert main(["governance", "check", str(plan)]) == 5  # no --policy
    assert main(check) == 5  # no plan
    assert main([*check, "--bogus", str(plan)]) == 5
    capsys.readouterr()
    # a 70B at Q8_0 does not fit the Studio: DENY, even with the file's verdict edited
    add = ["plan", "add-model", str(plan), "llama-3.1-70b", "--quant", "Q8_0", "--no-db"]
    assert main(add) == 0
    doc = json.loads(plan.read_text())
    for est in doc["plan"]["build"]["estimates"]:
        est["verdict"] = "fits"
        est["headroom_bytes"] = 30 * 2**30
    plan.write_text(json.dumps(doc))
    assert main([*check, str(plan)]) == 1
    assert "DENY memory-headroom llama-3.1-70b" in capsys.readouterr().err
