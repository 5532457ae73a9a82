"""A gate policy: the limits a user sets for their lab, read from a small TOML file.

    [policy]
    name = "home lab"

    [budget]                  # purchase price of the build (sum of machine prices x count)
    max_usd = 8000            # above: DENY
    escalate_usd = 6500       # above (up to max_usd): ESCALATE; unknown prices: ESCALATE

    [power]                   # Apple's max power figures x count, summed
    max_watts = 500
    escalate_watts = 400

    [memory]                  # per model, on the machine (or cluster) that holds it best
    min_headroom_gib = 8      # GPU limit minus the estimate's total; below: DENY
    raised_limit = "escalate" # a fit that needs `sysctl iogpu.wired_limit_mb`: allow|escalate|deny

    [licences]
    allowed = ["llama3.3", "apache-2.0", "mit"]   # case-insensitive; unknown licence: ESCALATE

    [agreement]               # measured vs estimated, per attached run and metric
    min_pct = 80              # min(measured, estimated) / max(...) in percent; below: DENY
    escalate_pct = 90         # optional band below which the result is ESCALATE
    metrics = ["decode_tps", "prefill_tps"]
    when_unmeasured = "escalate"                  # no comparable run: allow|escalate|deny

Every section is optional; a section that is absent is a rule that is not applied. Anything
else (an unknown section or key, a wrong type, an escalate threshold beyond its maximum) is a
malformed policy: `PolicyError`, which the gate reports apart from any verdict.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeplanner.errors import ForgePlannerError

ACTIONS: tuple[str, ...] = ("allow", "escalate", "deny")


class PolicyError(ForgePlannerError):
    """The policy file itself is wrong (not a verdict): names the file, key and value."""

    def __init__(self, file: str, key: str, value: object, problem: str) -> None:
        self.file = file
        self.key = key
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{file}: policy key '{key}' = {shown}: {problem}")


@dataclass(frozen=True, slots=True)
class BudgetRule:
    max_usd: float
    escalate_usd: float | None = None


@dataclass(frozen=True, slots=True)
class PowerRule:
    max_watts: float
    escalate_watts: float | None = None


@dataclass(frozen=True, slots=True)
class MemoryRule:
    min_headroom_gib: float
    raised_limit: str = "escalate"


@dataclass(frozen=True, slots=True)
class LicenceRule:
    allowed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AgreementRule:
    min_pct: float
    escalate_pct: float | None = None
    metrics: tuple[str, ...] = ("decode_tps", "prefill_tps")
    when_unmeasured: str = "escalate"


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    source: str  # file it came from
    sha256: str  # of the file's bytes, recorded with the verdicts
    text: str  # the policy as written, kept in the evidence record
    budget: BudgetRule | None = None
    power: PowerRule | None = None
    memory: MemoryRule | None = None
    licences: LicenceRule | None = None
    agreement: AgreementRule | None = None


_SCHEMA: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    # section -> key -> (accepted types, required)
    "policy": {"name": (str, False)},
    "budget": {"max_usd": ((int, float), True), "escalate_usd": ((int, float), False)},
    "power": {"max_watts": ((int, float), True), "escalate_watts": ((int, float), False)},
    "memory": {"min_headroom_gib": ((int, float), True), "raised_limit": (str, False)},
    "licences": {"allowed": (list, True)},
    "agreement": {
        "min_pct": ((int, float), True),
        "escalate_pct": ((int, float), False),
        "metrics": (list, False),
        "when_unmeasured": (str, False),
    },
}


MAX_POLICY_BYTES = 1 << 20  # a policy is a few hundred bytes


def load_policy(path: str | Path) -> Policy:
    from forgeplanner.fileio import InputFileError, read_input

    try:
        data = read_input(path, MAX_POLICY_BYTES, "policy file")
    except InputFileError as exc:
        raise PolicyError(str(path), "(file)", str(path), f"cannot read: {exc.problem}") from None
    return parse_policy(data, str(path))


def parse_policy(data: bytes, source: str = "<policy>") -> Policy:
    try:
        text = data.decode("utf-8-sig")  # a BOM from a Windows editor is not an error
    except UnicodeDecodeError as exc:
        raise PolicyError(source, "(bytes)", data[exc.start : exc.end], "not UTF-8") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(source, "(syntax)", "", f"not valid TOML: {exc}") from exc
    except RecursionError:
        # tomllib recurses per nested array/inline table: thousands deep is an attack.
        raise PolicyError(source, "(syntax)", "", "nested too deeply to be a policy") from None
    except ValueError as exc:  # int() past 4,300 digits raises ValueError, not a TOML error
        raise PolicyError(source, "(syntax)", "", f"not a usable TOML number: {exc}") from None
    _check_shape(raw, source)
    rules = {k: v for k, v in raw.items() if k != "policy"}
    if not rules:
        raise PolicyError(source, "(sections)", "", "no rule sections; valid: " + _valid_sections())
    return Policy(
        name=raw.get("policy", {}).get("name", Path(source).stem),
        source=source,
        sha256=hashlib.sha256(data).hexdigest(),
        text=text,
        budget=_budget(raw.get("budget"), source),
        power=_power(raw.get("power"), source),
        memory=_memory(raw.get("memory"), source),
        licences=_licences(raw.get("licences"), source),
        agreement=_agreement(raw.get("agreement"), source),
    )


def _valid_sections() -> str:
    return ", ".join(s for s in _SCHEMA if s != "policy")


def _check_shape(raw: dict[str, Any], source: str) -> None:
    for section, body in raw.items():
        if section not in _SCHEMA:
            raise PolicyError(
                source, section, body, f"unknown section; valid: policy, {_valid_sections()}"
            )
        if not isinstance(body, dict):
            raise PolicyError(source, section, body, "must be a [section] table")
        keys = _SCHEMA[section]
        for key, value in body.items():
            if key not in keys:
                raise PolicyError(
                    source, f"{section}.{key}", value, f"unknown key; valid: {', '.join(keys)}"
                )
            types_, _ = keys[key]
            if isinstance(value, bool) or not isinstance(value, types_):
                raise PolicyError(source, f"{section}.{key}", value, f"must be {_kind(types_)}")
        for key, (_, required) in keys.items():
            if required and key not in body:
                raise PolicyError(source, f"{section}.{key}", None, "required key is missing")


def _kind(types_: type | tuple[type, ...]) -> str:
    if types_ == (int, float):
        return "a number"
    return {str: "a string", list: "a list"}.get(types_, str(types_))  # type: ignore[call-overload]


def _non_negative(section: str, key: str, value: float, source: str) -> float:
    # TOML has nan and inf; a NaN limit compares False with everything, which switched the
    # rule off (every plan was ALLOWed). A huge integer is no limit either.
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise PolicyError(source, f"{section}.{key}", value, "must be a finite number")
    if number < 0:
        raise PolicyError(source, f"{section}.{key}", value, "must be >= 0")
    return number


def _escalate_below_max(
    section: str, key: str, esc: float | None, limit: float, source: str
) -> float | None:
    if esc is None:
        return None
    esc = _non_negative(section, key, esc, source)
    if esc > limit:
        raise PolicyError(source, f"{section}.{key}", esc, f"must not exceed the maximum {limit:g}")
    return esc


def _action(section: str, key: str, value: str, source: str) -> str:
    if value not in ACTIONS:
        raise PolicyError(source, f"{section}.{key}", value, f"valid: {', '.join(ACTIONS)}")
    return value


def _budget(body: dict[str, Any] | None, source: str) -> BudgetRule | None:
    if body is None:
        return None
    limit = _non_negative("budget", "max_usd", body["max_usd"], source)
    esc = _escalate_below_max("budget", "escalate_usd", body.get("escalate_usd"), limit, source)
    return BudgetRule(limit, esc)


def _power(body: dict[str, Any] | None, source: str) -> PowerRule | None:
    if body is None:
        return None
    limit = _non_negative("power", "max_watts", body["max_watts"], source)
    esc = _escalate_below_max("power", "escalate_watts", body.get("escalate_watts"), limit, source)
    return PowerRule(limit, esc)


def _memory(body: dict[str, Any] | None, source: str) -> MemoryRule | None:
    if body is None:
        return None
    gib = _non_negative("memory", "min_headroom_gib", body["min_headroom_gib"], source)
    action = _action("memory", "raised_limit", body.get("raised_limit", "escalate"), source)
    return MemoryRule(gib, action)


def _licences(body: dict[str, Any] | None, source: str) -> LicenceRule | None:
    if body is None:
        return None
    allowed = body["allowed"]
    for i, item in enumerate(allowed):
        if not isinstance(item, str) or not item.strip():
            raise PolicyError(source, f"licences.allowed[{i}]", item, "must be a licence name")
    return LicenceRule(tuple(a.strip() for a in allowed))


METRICS: tuple[str, ...] = ("decode_tps", "prefill_tps", "ttft_s")


def _agreement(body: dict[str, Any] | None, source: str) -> AgreementRule | None:
    if body is None:
        return None
    min_pct = _non_negative("agreement", "min_pct", body["min_pct"], source)
    if min_pct > 100:
        raise PolicyError(source, "agreement.min_pct", min_pct, "must be 0..100 (percent)")
    esc = body.get("escalate_pct")
    if esc is not None:
        esc = _non_negative("agreement", "escalate_pct", esc, source)
        if esc > 100 or esc < min_pct:
            raise PolicyError(
                source,
                "agreement.escalate_pct",
                esc,
                f"must be between min_pct {min_pct:g} and 100",
            )
    metrics = body.get("metrics", ["decode_tps", "prefill_tps"])
    for i, m in enumerate(metrics):
        if m not in METRICS:
            raise PolicyError(source, f"agreement.metrics[{i}]", m, f"valid: {', '.join(METRICS)}")
    if not metrics:
        raise PolicyError(source, "agreement.metrics", metrics, "must name at least one metric")
    when = _action("agreement", "when_unmeasured", body.get("when_unmeasured", "escalate"), source)
    return AgreementRule(min_pct, esc, tuple(metrics), when)
