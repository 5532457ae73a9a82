"""A plan repository for the governance lab (L-003): a git repository holding a build plan
(`lab.fplan`) and the lab's gate policy (`policy.toml`), committed once before the hook is
installed. The starting plan (one Mac Studio M2 Max 64 GB at $2,399, nothing to run yet) is
ALLOWed by the policy; the lab's three changes then give ALLOW, DENY and ESCALATE."""

from __future__ import annotations

from pathlib import Path

from forgeplanner.plan.hook import GovernanceError, git, now_iso

PLAN_FILE = "lab.fplan"
POLICY_FILE = "policy.toml"
START_MACHINE = "mac-studio-m2-max-30c-64gb"
# The lab prices its Studios at a fixed, dated figure (Apple's launch list price, entered as
# the plan's own price), so the three verdicts do not move with the used market or with
# Apple's price list on the day the lab is run.
LAB_PRICE_USD = 2399
LAB_PRICE_DATE = "2023-06-05"

LAB_POLICY = """\
# The shelf's gate policy (learning track module 07). ForgePlanner's gate judges every plan
# committed to this repository against it; see `forgeplanner gate --help`.
[policy]
name = "shelf lab"

[budget]                  # launch or observed price of the build
max_usd = 6000            # above: DENY
escalate_usd = 4000       # above (up to max_usd): ESCALATE, a human signs it off

[memory]                  # per model, on the machine that holds it best
min_headroom_gib = 4      # GPU limit minus the estimate; below: DENY
raised_limit = "escalate" # needs `sysctl iogpu.wired_limit_mb`: a human decides
"""

README = """\
# Shelf plans

Build plans for the lab, judged by ForgePlanner's gate on every commit.

- `lab.fplan`: the build plan (`forgeplanner plan show lab.fplan`)
- `policy.toml`: the gate policy

Hook: `forgeplanner governance install-hook . --policy policy.toml` (plain git hook), or the
pre-commit framework with ForgePlanner's `.pre-commit-hooks.yaml` (hook id `forgeplanner-gate`).
An ESCALATE needs a sign-off: `forgeplanner governance sign-off lab.fplan --policy policy.toml
--who NAME --why REASON`, then commit again.
"""


def init_plan_repo(directory: str | Path) -> Path:
    from dataclasses import replace

    from forgeplanner.domain.plan import PlanPrice
    from forgeplanner.plan import edit
    from forgeplanner.plan.compute import recompute
    from forgeplanner.plan.files import write_plan
    from forgeplanner.plan.sources import EngineSources

    root = Path(directory)
    if root.exists() and any(root.iterdir()):
        raise GovernanceError(f"{root}: exists and is not empty; choose a new directory")
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    git(root, "checkout", "-q", "-b", "main", check=False)
    # A fresh machine (CI) may have no git identity: give this repository one of its own.
    if not git(root, "config", "user.email", check=False).stdout.strip():
        git(root, "config", "user.email", "lab@shelf.invalid")
        git(root, "config", "user.name", "Shelf lab")
    now = now_iso()
    sources = EngineSources()
    plan = edit.new_plan("shelf", now, "the governance lab's plan")
    machine = sources.machine(START_MACHINE, 1, "new")
    price = PlanPrice(
        usd=LAB_PRICE_USD,
        basis="user",
        as_of=LAB_PRICE_DATE,
        source="the lab's fixed price: Apple's launch list price of the configuration",
    )
    plan = edit.add_machine(plan, replace(machine, price=price), now)
    write_plan(root / PLAN_FILE, recompute(plan, sources, now))
    (root / POLICY_FILE).write_text(LAB_POLICY, encoding="utf-8")
    (root / "README.md").write_text(README, encoding="utf-8")
    git(root, "add", PLAN_FILE, POLICY_FILE, "README.md")
    git(root, "commit", "-q", "-m", "Start: one Mac Studio M2 Max 64 GB and the gate policy")
    return root
