"""Evaluate a policy against a plan: pure, one verdict per rule and subject, with the reason.

Outcomes: ALLOW (within the policy), DENY (outside it), ESCALATE (a human must decide: a figure
is unknown, a value sits in the escalation band, or nothing was measured yet). The overall
outcome is DENY if any rule denies, else ESCALATE if any escalates, else ALLOW; `exit_code`
maps it to 0 / 1 / 2 for a pre-commit hook. Anything that is not a verdict has its own exit
code, so a script can never mistake an error for one:

    0 ALLOW   1 DENY   2 ESCALATE
    3 the policy file is malformed or unreadable
    4 the plan cannot be judged (missing, unreadable, invalid, or names a machine or model
      this installation does not know)
    5 the command line is wrong (a missing --policy, an unknown flag)
    6 an internal error (a bug; one line names it)
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from forgeplanner.domain.estimates import VERDICT_NO, VERDICT_RAISED
from forgeplanner.domain.plan import Build, GateVerdict, Plan
from forgeplanner.domain.units import GiB
from forgeplanner.governance.policy import (
    AgreementRule,
    BudgetRule,
    LicenceRule,
    MemoryRule,
    Policy,
    PowerRule,
)

ALLOW = "ALLOW"
DENY = "DENY"
ESCALATE = "ESCALATE"
EXIT_CODES = {ALLOW: 0, DENY: 1, ESCALATE: 2}
EXIT_MALFORMED_POLICY = 3
EXIT_BAD_PLAN = 4
EXIT_USAGE = 5
EXIT_INTERNAL = 6


@dataclass(frozen=True, slots=True)
class GateResult:
    policy_name: str
    policy_sha256: str
    target: str  # "primary build" or "alternative <name>"
    verdicts: tuple[GateVerdict, ...]

    @property
    def outcome(self) -> str:
        outcomes = {v.outcome for v in self.verdicts}
        if DENY in outcomes:
            return DENY
        if ESCALATE in outcomes:
            return ESCALATE
        return ALLOW

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.outcome]


def evaluate(plan: Plan, policy: Policy, alternative: str | None = None) -> GateResult:
    build = plan.build if alternative is None else plan.alternative(alternative).build
    verdicts: list[GateVerdict] = []
    if policy.budget is not None:
        verdicts.append(_budget(build, policy.budget))
    if policy.power is not None:
        verdicts.append(_power(build, policy.power))
    if policy.memory is not None:
        verdicts.extend(_memory(build, policy.memory))
    if policy.licences is not None:
        verdicts.extend(_licences(build, policy.licences))
    if policy.agreement is not None:
        verdicts.extend(_agreement(plan, policy.agreement))
    target = "primary build" if alternative is None else f"alternative {alternative}"
    return GateResult(policy.name, policy.sha256, target, tuple(verdicts))


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def _banded(
    rule: str, subject: str, value: float, limit: float, esc: float | None, fmt, what: str
) -> GateVerdict:
    shown, lim = fmt(value), fmt(limit)
    if value > limit:
        return GateVerdict(
            rule, DENY, f"{what} {shown} exceeds the ceiling {lim}", subject, shown, lim
        )
    if esc is not None and value > esc:
        return GateVerdict(
            rule,
            ESCALATE,
            f"{what} {shown} is above the review threshold {fmt(esc)} (ceiling {lim})",
            subject,
            shown,
            lim,
        )
    return GateVerdict(rule, ALLOW, f"{what} {shown} is within {lim}", subject, shown, lim)


def _budget(build: Build, rule: BudgetRule) -> GateVerdict:
    if not build.machines:
        return GateVerdict("budget", ESCALATE, "the build has no machines to price", "build")
    known = build.known_price_usd
    lim = _usd(rule.max_usd)
    if build.unpriced:
        missing = ", ".join(build.unpriced)
        if known > rule.max_usd:
            return GateVerdict(
                "budget",
                DENY,
                f"priced machines alone cost {_usd(known)}, over {lim} (no price for {missing})",
                "build",
                _usd(known),
                lim,
            )
        return GateVerdict(
            "budget",
            ESCALATE,
            f"no price for {missing}; the priced part is {_usd(known)}",
            "build",
            f">= {_usd(known)}",
            lim,
        )
    return _banded("budget", "build", known, rule.max_usd, rule.escalate_usd, _usd, "total price")


def _watts(x: float) -> str:
    return f"{x:,.0f} W"


def _power(build: Build, rule: PowerRule) -> GateVerdict:
    if not build.machines:
        return GateVerdict("power", ESCALATE, "the build has no machines", "build")
    known = sum(m.max_w * m.count for m in build.machines if m.max_w is not None)
    unknown = [m.config_id for m in build.machines if m.max_w is None]
    lim = _watts(rule.max_watts)
    if unknown:
        if known > rule.max_watts:
            return GateVerdict(
                "power",
                DENY,
                f"machines with known figures alone draw up to {_watts(known)}, over {lim}",
                "build",
                _watts(known),
                lim,
            )
        return GateVerdict(
            "power",
            ESCALATE,
            f"max power unknown for {', '.join(unknown)} (Apple publishes "
            f"none); known part {_watts(known)}",
            "build",
            f">= {_watts(known)}",
            lim,
        )
    return _banded(
        "power", "build", known, rule.max_watts, rule.escalate_watts, _watts, "max power"
    )


def _gib(n: float) -> str:
    return f"{n / GiB:.1f} GiB"


def _memory(build: Build, rule: MemoryRule) -> list[GateVerdict]:
    out: list[GateVerdict] = []
    min_bytes = rule.min_headroom_gib * GiB
    lim = f">= {rule.min_headroom_gib:g} GiB"
    for model in build.models:
        candidates: list[tuple[int, str, str]] = []  # (headroom, verdict, where)
        for est in build.estimates:
            if est.model_id == model.model_id and est.quant == model.quant:
                candidates.append((est.headroom_bytes, est.verdict, est.target))
        cluster = _cluster_headroom(build, model.model_id)
        if cluster is not None:
            candidates.append(cluster)
        if not candidates:
            out.append(
                GateVerdict(
                    "memory-headroom",
                    ESCALATE,
                    "no estimate for this model on the build's "
                    "machines (add machines or run `plan recompute`)",
                    model.model_id,
                    "",
                    lim,
                )
            )
            continue
        usable = [c for c in candidates if c[1] != VERDICT_NO]
        if not usable:
            best = max(candidates)
            out.append(
                GateVerdict(
                    "memory-headroom",
                    DENY,
                    f"does not fit on any machine of the build (best: "
                    f"{best[2]}, {_gib(-best[0])} short)",
                    model.model_id,
                    _gib(best[0]),
                    lim,
                )
            )
            continue
        head, verdict, where = max(usable)
        if head < min_bytes:
            out.append(
                GateVerdict(
                    "memory-headroom",
                    DENY,
                    f"headroom {_gib(head)} on {where} is below {rule.min_headroom_gib:g} GiB",
                    model.model_id,
                    _gib(head),
                    lim,
                )
            )
        elif verdict == VERDICT_RAISED and rule.raised_limit != "allow":
            outcome = DENY if rule.raised_limit == "deny" else ESCALATE
            out.append(
                GateVerdict(
                    "memory-headroom",
                    outcome,
                    f"fits on {where} only after raising the GPU "
                    f"wired limit (sysctl iogpu.wired_limit_mb); headroom then {_gib(head)}",
                    model.model_id,
                    _gib(head),
                    lim,
                )
            )
        else:
            out.append(
                GateVerdict(
                    "memory-headroom",
                    ALLOW,
                    f"headroom {_gib(head)} on {where}",
                    model.model_id,
                    _gib(head),
                    lim,
                )
            )
    return out


def _cluster_headroom(build: Build, model_id: str) -> tuple[int, str, str] | None:
    """The cluster layout's tightest node, when the layout is for this model."""
    if build.cluster is None or build.cluster.inputs.get("model_id") != model_id:
        return None
    nodes = build.cluster.result.get("nodes") or []
    try:
        heads = [
            (
                int(n["gpu_limit_bytes"]) - int(n["total_bytes"]),
                str(n.get("verdict", "")),
                str(n.get("name", "")),
            )
            for n in nodes
        ]
    except (KeyError, TypeError, ValueError):
        return None
    if not heads:
        return None
    head, _, name = min(heads)
    verdict = (
        VERDICT_NO
        if any(v == VERDICT_NO for _, v, _ in heads)
        else (VERDICT_RAISED if any(v == VERDICT_RAISED for _, v, _ in heads) else "fits")
    )
    return head, verdict, f"cluster (tightest node {name})"


def licence_allowed(licence: str, allowed: tuple[str, ...]) -> str | None:
    """The allowed entry that matches `licence`, or None. Entries match the model database's
    licence text case-insensitively, whole, or as a shell-style pattern (`Apache-2.0 (*`):
    never by prefix alone, since "MIT (code) + DeepSeek Model License (weights)" is not MIT."""
    text = " ".join(licence.split()).casefold()
    for entry in allowed:
        pattern = " ".join(entry.split()).casefold()
        if text == pattern or (any(c in pattern for c in "*?[") and fnmatchcase(text, pattern)):
            return entry
    return None


def _licences(build: Build, rule: LicenceRule) -> list[GateVerdict]:
    lim = "; ".join(rule.allowed)
    out = []
    for m in build.models:
        if not m.license:
            out.append(
                GateVerdict("licence", ESCALATE, "licence unknown", m.model_id, "unknown", lim)
            )
            continue
        entry = licence_allowed(m.license, rule.allowed)
        if entry is not None:
            out.append(
                GateVerdict(
                    "licence",
                    ALLOW,
                    f"licence '{m.license}' is allowed ({entry})",
                    m.model_id,
                    m.license,
                    lim,
                )
            )
        else:
            out.append(
                GateVerdict(
                    "licence",
                    DENY,
                    f"licence '{m.license}' is not in the allowed list",
                    m.model_id,
                    m.license,
                    lim,
                )
            )
    return out


def agreement_pct(measured: float, estimated: float) -> float | None:
    """How closely a measurement and its estimate agree: min/max in percent (symmetric:
    half or double the estimate both score 50 %). None when either is not positive."""
    if measured <= 0 or estimated <= 0:
        return None
    return 100.0 * min(measured, estimated) / max(measured, estimated)


def _agreement(plan: Plan, rule: AgreementRule) -> list[GateVerdict]:
    out = []
    lim = f">= {rule.min_pct:g} %"
    for run in plan.runs:
        for metric in rule.metrics:
            m, e = run.measured.get(metric), run.estimate.get(metric)
            if m is None or e is None:
                continue
            subject = f"run {run.run_id} {metric}"
            pct = agreement_pct(float(m), float(e))
            if pct is None:
                out.append(
                    GateVerdict(
                        "agreement",
                        ESCALATE,
                        f"measured {m} / estimated {e} cannot be compared",
                        subject,
                        "",
                        lim,
                    )
                )
                continue
            shown = f"{pct:.1f} %"
            detail = f"measured {float(m):.2f}, estimated {float(e):.2f}"
            if pct < rule.min_pct:
                out.append(
                    GateVerdict(
                        "agreement",
                        DENY,
                        f"agreement {shown} below {rule.min_pct:g} % ({detail})",
                        subject,
                        shown,
                        lim,
                    )
                )
            elif rule.escalate_pct is not None and pct < rule.escalate_pct:
                out.append(
                    GateVerdict(
                        "agreement",
                        ESCALATE,
                        f"agreement {shown} below the "
                        f"review threshold {rule.escalate_pct:g} % ({detail})",
                        subject,
                        shown,
                        lim,
                    )
                )
            else:
                out.append(
                    GateVerdict(
                        "agreement", ALLOW, f"agreement {shown} ({detail})", subject, shown, lim
                    )
                )
    if not out:
        outcome = {"allow": ALLOW, "escalate": ESCALATE, "deny": DENY}[rule.when_unmeasured]
        out.append(
            GateVerdict(
                "agreement",
                outcome,
                f"no attached run measures {' or '.join(rule.metrics)} against an estimate yet",
                "runs",
                "none",
                lim,
            )
        )
    return out
