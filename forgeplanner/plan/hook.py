"""Enforcement at the boundary: the gate as a git pre-commit hook on a plan repository, human
sign-off of escalations, every verdict kept in the evidence record (learning track module 07:
ALLOW, DENY and ESCALATE wired end to end).

- `install_hook(repo, policy)` writes `.git/hooks/pre-commit` (a plain hook; the pre-commit
  framework uses this repository's `.pre-commit-hooks.yaml` instead). The hook runs
  `forgeplanner governance check --staged --policy POLICY`.
- `check_files` judges each changed plan (`.fplan`) against the policy: exit 0 when every plan
  is ALLOWed (or ESCALATEd and signed off), 1 when any is DENYed, 2 when one ESCALATEs without
  a sign-off, 3 when the policy file is malformed. Each verdict is stored as an evidence record
  (kind "gate") with its reasons, the plan's and the policy's SHA-256 and the gate's latency.
- `sign_off` records a human decision on an ESCALATE (who, when, why) as an evidence record
  (kind "signoff") bound to the exact plan bytes and policy bytes it judged: change either and
  the sign-off no longer applies. DENY cannot be signed off: change the plan or the policy.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forgeplanner.errors import ForgePlannerError
from forgeplanner.governance.gate import ALLOW, DENY, ESCALATE, EXIT_MALFORMED_POLICY, evaluate
from forgeplanner.governance.policy import Policy, load_policy

HOOK_MARKER = "# forgeplanner governance hook"
GIT_TIMEOUT_S = 60


class GovernanceError(ForgePlannerError):
    """A hook, repository or sign-off request that cannot be carried out."""


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def git(repo: Path | str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise GovernanceError("git is not installed (needed for the plan repository)") from exc
    if check and proc.returncode != 0:
        raise GovernanceError(f"git {' '.join(args)} in {repo}: {proc.stderr.strip()}")
    return proc


def hooks_dir(repo: Path) -> Path:
    """Where git looks for hooks (honours core.hooksPath)."""
    out = git(repo, "rev-parse", "--git-path", "hooks").stdout.strip()
    path = Path(out)
    return path if path.is_absolute() else repo / path


def hook_script(policy: str, python: str | None = None) -> str:
    python = python or sys.executable
    return (
        "#!/bin/sh\n"
        f"{HOOK_MARKER}: judge the staged plans (.fplan) against {policy}\n"
        "# exit 0 ALLOW (or a signed-off ESCALATE), 1 DENY, 2 ESCALATE; 3 malformed policy,\n"
        "# 4 a plan that cannot be judged, 5 bad command line, 6 internal error\n"
        f"exec {shlex.quote(python)} -m forgeplanner governance check --staged "
        f"--policy {shlex.quote(policy)}\n"
    )


def install_hook(repo: str | Path, policy: str, *, force: bool = False) -> Path:
    """Write the pre-commit hook atomically; refuse to replace someone else's hook."""
    repo = Path(repo)
    if not (repo / policy).is_file():
        raise GovernanceError(f"{repo / policy}: no such policy file in the repository")
    target = hooks_dir(repo) / "pre-commit"
    if target.exists() and not force and HOOK_MARKER not in target.read_text(errors="replace"):
        raise GovernanceError(
            f"{target} exists and is not ForgePlanner's hook; pass --force to replace it "
            "(or add `forgeplanner governance check --staged --policy ...` to it yourself)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(".pre-commit.forgeplanner.tmp")
    tmp.write_text(hook_script(policy), encoding="utf-8")
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    return target


@dataclass(frozen=True, slots=True)
class FileVerdict:
    path: str
    plan_sha256: str
    outcome: str
    exit_code: int
    verdicts: tuple[Any, ...]
    latency_ms: float
    signoff: dict[str, Any] | None
    evidence_id: int | None

    def to_dict(self) -> dict[str, Any]:
        from forgeplanner.plan.document import to_jsonable

        return {
            "path": self.path,
            "plan_sha256": self.plan_sha256,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "verdicts": to_jsonable(self.verdicts),
            "latency_ms": self.latency_ms,
            "signoff": self.signoff,
            "evidence_id": self.evidence_id,
        }


def staged_plans(repo: Path) -> list[str]:
    out = git(repo, "diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR").stdout
    return [p for p in out.split("\0") if p.endswith(".fplan")]


def _read_plan_bytes(path: str, repo: Path | None, staged: bool) -> bytes:
    if staged and repo is not None:
        proc = subprocess.run(
            ["git", "-C", str(repo), "show", f":{path}"],
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0:
            raise GovernanceError(f"{path}: cannot read the staged file: {proc.stderr!r}")
        return proc.stdout
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise GovernanceError(f"{path}: cannot read: {exc.strerror}") from None


def _parse_plan(data: bytes, name: str):
    import json

    from forgeplanner.plan.document import plan_from_document

    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GovernanceError(f"{name}: not a plan file ({exc})") from None
    return plan_from_document(doc, name)


def _signoff_for(store: Any, plan_sha: str, policy: Policy) -> dict[str, Any] | None:
    from forgeplanner.store import EvidenceRepo

    with store.session() as s:
        for rec in EvidenceRepo(s).list(kind="signoff", ref=plan_sha):
            if rec.body.get("policy_sha256") == policy.sha256:
                return {"id": rec.id, **{k: rec.body.get(k) for k in ("who", "when", "why")}}
    return None


def _record(store: Any, kind: str, ref: str, title: str, body: dict[str, Any]) -> int:
    from forgeplanner.store import EvidenceRepo

    with store.session() as s:
        return EvidenceRepo(s).add(kind=kind, ref=ref, title=title, body=body).id


def _recomputed(plan: Any, sources: Any = None) -> Any:
    """As `forgeplanner gate`: the figures the gate judges are recomputed from the catalog and
    the engine, never the ones stored in a file anyone can edit (an unknown machine or model
    is an error, not a guess)."""
    from dataclasses import replace

    from forgeplanner.plan.compute import recompute_build
    from forgeplanner.plan.sources import EngineSources

    sources = sources or EngineSources()
    return replace(plan, build=recompute_build(plan.build, sources, plan.power))


def judge(
    data: bytes, name: str, policy: Policy, store: Any, *, record: bool = True
) -> FileVerdict:
    """One plan's bytes against the policy (timed), with any sign-off that applies."""
    t0 = time.perf_counter()
    plan = _parse_plan(data, name)
    result = evaluate(_recomputed(plan), policy)
    latency_ms = (time.perf_counter() - t0) * 1000.0
    sha = hashlib.sha256(data).hexdigest()
    outcome, code = result.outcome, result.exit_code
    signoff = _signoff_for(store, sha, policy) if outcome == ESCALATE else None
    if signoff is not None:
        code = 0
    evidence_id = None
    if record:
        from forgeplanner.plan.document import to_jsonable

        body = {
            "path": name,
            "plan_name": plan.name,
            "plan_sha256": sha,
            "policy": {"name": policy.name, "source": policy.source, "sha256": policy.sha256,
                       "text": policy.text},
            "outcome": outcome,
            "exit_code": code,
            "verdicts": to_jsonable(result.verdicts),
            "latency_ms": latency_ms,
            "signoff": signoff,
            "judged_at": now_iso(),
        }  # fmt: skip
        evidence_id = _record(store, "gate", sha, f"gate {outcome}: {name}", body)
    return FileVerdict(name, sha, outcome, code, result.verdicts, latency_ms, signoff, evidence_id)


def check_files(
    paths: list[str],
    policy_path: str,
    store: Any,
    *,
    repo: Path | None = None,
    staged: bool = False,
    record: bool = True,
) -> tuple[int, list[FileVerdict]]:
    """Judge every plan; the exit code is the worst outcome (DENY > ESCALATE > ALLOW)."""
    policy = load_policy(policy_path)
    if staged:
        repo = repo or Path(".")
        paths = staged_plans(repo)
    results = [
        judge(_read_plan_bytes(p, repo, staged), p, policy, store, record=record) for p in paths
    ]
    codes = {r.exit_code for r in results}
    code = 1 if 1 in codes else (2 if 2 in codes else 0)
    return code, results


def sign_off(
    plan_path: str, policy_path: str, who: str, why: str, store: Any, *, when: str | None = None
) -> dict[str, Any]:
    """Record a human decision on an ESCALATE; refuse anything else with the reason."""
    if not who.strip():
        raise GovernanceError("sign-off: --who must name the person who decides")
    if not why.strip():
        raise GovernanceError("sign-off: --why must say why the escalation is accepted")
    policy = load_policy(policy_path)
    data = _read_plan_bytes(plan_path, None, False)
    verdict = judge(data, plan_path, policy, store)
    if verdict.outcome == DENY:
        raise GovernanceError(
            f"{plan_path}: the gate DENIES it ("
            + "; ".join(v.reason for v in verdict.verdicts if v.outcome == DENY)
            + "): a DENY cannot be signed off; change the plan or the policy"
        )
    if verdict.outcome == ALLOW:
        raise GovernanceError(f"{plan_path}: the gate ALLOWS it; there is nothing to sign off")
    from forgeplanner.plan.document import to_jsonable

    body = {
        "who": who.strip(),
        "when": when or now_iso(),
        "why": why.strip(),
        "path": plan_path,
        "plan_sha256": verdict.plan_sha256,
        "policy_sha256": policy.sha256,
        "policy_name": policy.name,
        "outcome": verdict.outcome,
        "escalations": to_jsonable(tuple(v for v in verdict.verdicts if v.outcome == ESCALATE)),
        "gate_evidence_id": verdict.evidence_id,
    }
    body["id"] = _record(store, "signoff", verdict.plan_sha256, f"sign-off: {plan_path}", body)
    return body


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q * (len(s) - 1))))
    return s[k]


def measure_latency(
    plan_path: str, policy_path: str, *, runs: int = 50, process_runs: int = 5
) -> dict[str, Any]:
    """The gate's latency: in process (read, parse, recompute, evaluate, with the catalog and
    model database already loaded) and as the hook runs it (a new `python -m forgeplanner
    governance check` process, the cost a commit pays)."""
    from forgeplanner.plan.sources import EngineSources

    if runs < 1 or process_runs < 0:
        raise GovernanceError(f"latency: runs must be >= 1, got {runs}")
    loaded = EngineSources()
    inproc = []
    for _ in range(runs):
        # fresh sources over the loaded data: every run recomputes its estimates
        sources = EngineSources(catalog=loaded.catalog, models=loaded.models)
        t0 = time.perf_counter()
        policy = load_policy(policy_path)
        plan = _parse_plan(Path(plan_path).read_bytes(), plan_path)
        evaluate(_recomputed(plan, sources), policy)
        inproc.append((time.perf_counter() - t0) * 1000.0)
    proc_ms = []
    argv = [sys.executable, "-m", "forgeplanner", "governance", "check", "--no-record",
            "--policy", policy_path, plan_path]  # fmt: skip
    for _ in range(process_runs):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, timeout=120, check=False)
        proc_ms.append((time.perf_counter() - t0) * 1000.0)

    def summary(v: list[float]) -> dict[str, Any] | None:
        if not v:
            return None
        return {"runs": len(v), "median_ms": statistics.median(v), "p95_ms": _pct(v, 0.95),
                "min_ms": min(v), "max_ms": max(v)}  # fmt: skip

    return {"in_process": summary(inproc), "hook_process": summary(proc_ms)}


__all__ = [
    "EXIT_MALFORMED_POLICY",
    "FileVerdict",
    "GovernanceError",
    "check_files",
    "install_hook",
    "judge",
    "measure_latency",
    "sign_off",
]
