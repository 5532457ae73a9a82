"""The evidence record: a plan with its estimates, the measured runs that check them, the gate's
verdicts, and SHA-256 digests that let anyone detect a changed byte.

Layout (record_version 1):

    {
      "format": "forgeplanner.evidence", "record_version": 1,
      "created_at": "2026-11-26T14:00:00Z",
      "tool": {"forgeplanner": "0.1.0", "python": "3.11.9", "platform": "..."},
      "plan": {the .fplan document; attached runs without their raw output},
      "estimates": {"build": [...], "alternatives": {name: [...]}},  (copied from the plan)
      "runs": [{run_id, runner, started_at, fingerprint, tool_versions, params, measured,
                estimate, raw_sha256, raw_output, ...}],
      "gate": null | {"policy": {name, source, sha256, text}, "target", "outcome", "verdicts"},
      "digests": {"algorithm": "sha256", "canonicalization": "RFC 8785 JSON Canonicalization
                  Scheme", "sections": {name: hex}, "seal": hex}
    }

Digests. Every JSON value is digested as its RFC 8785 (JCS) canonical form, UTF-8 encoded:
object keys sorted by UTF-16 code units, no insignificant whitespace, ECMAScript number
formatting (so 12.0 and 12 are the same number). The `rfc8785` package does the
canonicalization. A raw benchmark output is digested as its exact UTF-8 bytes, the same digest
the store keeps (`raw_sha256`). Sections:

    created_at, tool                  the record's header
    plan, plan.<field>                the whole plan document and each top-level plan field
    estimates                         the estimates block
    runs[<id>]                        a run without its raw output
    runs[<id>].raw_output             the raw output bytes
    gate                              the gate block (null when no policy was evaluated)

`seal` is the digest of the canonical record without its `digests` member. Verification
recomputes everything: a changed content byte shows as a section and the seal mismatching
(the section is named); a changed recorded digest shows as that section mismatching while the
seal still matches the content; a changed seal shows as the seal alone. The digests prove
integrity, not authorship: anyone can rebuild them after editing. `evidence sign` adds a
signature over the seal with the author's Ed25519 or SSH key (forgeplanner.evidence.signing)
to the optional top-level `signatures` list, which the seal does not cover (so signatures can
be added one after another); `evidence verify --signer KEY` requires a valid one by that key.

Reading is strict (forgeplanner.jsonio): a duplicate key is refused, since a reviewer and a
program could otherwise read different values from the same file; a UTF-8 byte order mark is
accepted.
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rfc8785

from forgeplanner import __version__
from forgeplanner.domain.plan import Plan
from forgeplanner.errors import DataError
from forgeplanner.governance.gate import GateResult
from forgeplanner.governance.policy import Policy
from forgeplanner.plan.document import plan_to_document, to_jsonable

FORMAT = "forgeplanner.evidence"
RECORD_VERSION = 1
ALGORITHM = "sha256"
CANONICALIZATION = "RFC 8785 JSON Canonicalization Scheme"
TOP_LEVEL = (
    "format", "record_version", "created_at", "tool", "plan", "estimates", "runs", "gate",
    "digests",
)  # fmt: skip
OPTIONAL = ("signatures",)  # not covered by the seal: added after sealing
MAX_RECORD_BYTES = 256 << 20


def canonical(value: Any) -> bytes:
    return rfc8785.dumps(value)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_digest(raw_output: str) -> str:
    return sha256_hex(raw_output.encode("utf-8"))


def tool_versions() -> dict[str, str]:
    return {
        "forgeplanner": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "rfc8785": _version("rfc8785"),
    }


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:  # pragma: no cover - installed with forgeplanner
        return "unknown"


def build_record(
    plan: Plan,
    created_at: str,
    gate: GateResult | None = None,
    policy: Policy | None = None,
    tool: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The evidence record for `plan` (a JSON-ready dict), sealed."""
    doc = plan_to_document(plan)
    runs = []
    for i, run in enumerate(plan.runs):
        r = to_jsonable(run)
        digest = raw_digest(run.raw_output)
        if run.raw_sha256 and run.raw_sha256 != digest:
            raise DataError(
                plan.name,
                f"runs[{i}].raw_sha256",
                run.raw_sha256,
                f"does not match the attached raw output (sha256 {digest}); re-attach run "
                f"{run.run_id} from the store",
            )
        r["raw_sha256"] = digest
        runs.append(r)
        doc["plan"]["runs"][i]["raw_output"] = ""
        doc["plan"]["runs"][i]["raw_sha256"] = digest
    record: dict[str, Any] = {
        "format": FORMAT,
        "record_version": RECORD_VERSION,
        "created_at": created_at,
        "tool": tool if tool is not None else tool_versions(),
        "plan": doc,
        "estimates": estimates_of(doc),
        "runs": runs,
        "gate": _gate_block(gate, policy),
    }
    record["digests"] = {
        "algorithm": ALGORITHM,
        "canonicalization": CANONICALIZATION,
        "sections": {name: sha256_hex(data) for name, data in sections(record).items()},
        "seal": sha256_hex(canonical(_without_digests(record))),
    }
    return record


def estimates_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The plan's estimates gathered in one place for readers: the main build's and each
    alternative's. A copy of what the plan holds; verification checks they agree."""
    plan = doc["plan"]
    return copy.deepcopy(
        {
            "build": plan["build"]["estimates"],
            "alternatives": {a["name"]: a["build"]["estimates"] for a in plan["alternatives"]},
        }
    )


def _gate_block(gate: GateResult | None, policy: Policy | None) -> dict[str, Any] | None:
    if gate is None:
        return None
    return {
        "policy": None
        if policy is None
        else {
            "name": policy.name,
            "source": policy.source,
            "sha256": policy.sha256,
            "text": policy.text,
        },
        "target": gate.target,
        "outcome": gate.outcome,
        "verdicts": to_jsonable(gate.verdicts),
    }


def _without_digests(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "digests" and k not in OPTIONAL}


def sections(record: dict[str, Any]) -> dict[str, bytes]:
    """The bytes each named digest covers. Raises KeyError/TypeError on a broken shape."""
    out: dict[str, bytes] = {
        "created_at": canonical(record["created_at"]),
        "tool": canonical(record["tool"]),
        "plan": canonical(record["plan"]),
    }
    plan_fields = record["plan"]["plan"]
    for key, value in plan_fields.items():
        out[f"plan.{key}"] = canonical(value)
    for run in record["runs"]:
        rid = run["run_id"]
        out[f"runs[{rid}]"] = canonical({k: v for k, v in run.items() if k != "raw_output"})
        out[f"runs[{rid}].raw_output"] = run["raw_output"].encode("utf-8")
    out["estimates"] = canonical(record["estimates"])
    out["gate"] = canonical(record["gate"])
    return out


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# -- verification ------------------------------------------------------------------------------


@dataclass
class Verification:
    ok: bool
    problems: list[str] = field(default_factory=list)
    checked: int = 0  # digests checked
    signed_by: list[str] = field(default_factory=list)  # fingerprints of valid signatures


def loads_record(data: bytes, source: str = "<evidence>") -> Any:
    """The record's JSON, strictly (forgeplanner.jsonio): DataError on anything else."""
    from forgeplanner import jsonio

    return jsonio.loads(data, source)


def verify_bytes(
    data: bytes, signers: list[Any] | None = None, source: str = "<evidence>"
) -> Verification:
    """Check a record's bytes; every problem names what changed. With `signers` (public
    keys), a valid signature by one of them is required too."""
    try:
        record = loads_record(data, source)
    except DataError as exc:
        return Verification(False, [str(exc).removeprefix(f"{source}: ")])
    return verify_record(record, signers)


def verify_record(record: Any, signers: list[Any] | None = None) -> Verification:
    if isinstance(record, dict) and record.get("format") == "forgeplanner.lab-record":
        from forgeplanner.evidence.lab_record import verify_lab_record

        return verify_lab_record(record, signers)
    problems = _shape_problems(record)
    if problems:
        return Verification(False, problems)
    return verify_sealed(record, sections, signers, _estimates_problems)


def _estimates_problems(record: dict[str, Any], problems: list[str]) -> None:
    try:
        if canonical(estimates_of(record["plan"])) != canonical(record["estimates"]):
            problems.append("'estimates' no longer match the plan's own estimates")
    except (KeyError, TypeError, AttributeError) as exc:
        problems.append(f"plan structure altered: {exc!r}")


def verify_sealed(
    record: dict[str, Any],
    sections_of: Callable[[dict[str, Any]], dict[str, bytes]],
    signers: list[Any] | None = None,
    more_checks: Callable[[dict[str, Any], list[str]], None] | None = None,
) -> Verification:
    """The checks every sealed record shares (plan records here, lab records in
    forgeplanner.evidence.lab_record), on a record whose shape was checked: each section
    against its digest, the seal, each run's raw output against its digest, `more_checks`,
    then every signature present (signatures sit outside the seal)."""
    problems: list[str] = []
    digests = record["digests"]
    recorded: dict[str, Any] = digests["sections"]
    try:
        computed = {name: sha256_hex(data) for name, data in sections_of(record).items()}
        seal = sha256_hex(canonical(_without_digests(record)))
    except (KeyError, TypeError, AttributeError, rfc8785.CanonicalizationError) as exc:
        return Verification(False, [f"record structure altered: {exc!r}"])
    seal_ok = seal == digests["seal"]
    for name in sorted(set(recorded) - set(computed)):
        problems.append(f"digest for '{name}' has no matching content (a section was removed)")
    for name in sorted(set(computed) - set(recorded)):
        problems.append(f"'{name}' has no recorded digest (content was added)")
    for name in sorted(set(computed) & set(recorded)):
        if computed[name] == recorded[name]:
            continue
        if seal_ok:
            problems.append(
                f"recorded digest of '{name}' was altered (content still matches the seal)"
            )
        else:
            problems.append(
                f"'{name}' changed: recorded sha256 {str(recorded[name])[:16]}..., "
                f"content now {computed[name][:16]}..."
            )
    for run in record["runs"]:
        if run.get("raw_sha256") != raw_digest(run["raw_output"]):
            problems.append(
                f"run {run['run_id']}: raw output does not match its tool-output digest "
                f"raw_sha256 {str(run.get('raw_sha256'))[:16]}..."
            )
    if more_checks is not None:
        more_checks(record, problems)
    if not seal_ok and not problems:
        problems.append("the seal was altered (all sections match their digests)")
    elif not seal_ok and all("was altered" in p for p in problems):
        problems.append("the seal does not match the content")
    signed_by = _check_signatures(record, seal, signers, problems)
    return Verification(not problems, problems, checked=len(computed) + 1, signed_by=signed_by)


def _check_signatures(
    record: dict[str, Any], seal: str, signers: list[Any] | None, problems: list[str]
) -> list[str]:
    """Every signature present must be valid (over the recomputed seal); with `signers`, one
    of them must have signed."""
    from forgeplanner.evidence import signing

    entries = record.get("signatures", [])
    if not isinstance(entries, list):
        problems.append("signatures altered: expected a list")
        return []
    valid = []
    for i, entry in enumerate(entries):
        result = signing.check(entry, seal, i)
        if result.ok:
            valid.append(result.fingerprint)
        else:
            problems.append(result.problem)
    if signers:
        wanted = {signing.fingerprint(k) for k in signers}
        if not wanted & set(valid):
            problems.append(
                "not signed by "
                + " or ".join(sorted(wanted))
                + (f" (valid signatures: {', '.join(valid)})" if valid else " (no valid signature)")
            )
    return valid


def sign_record(record: dict[str, Any], key: Any, signer: str, signed_at: str) -> dict[str, Any]:
    """A copy of an intact record with one more signature (`key`: a private key from
    forgeplanner.evidence.signing.load_private_key). An altered record is refused: signing
    it would vouch for the alteration."""
    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.evidence import signing

    check = verify_record(record)
    if not check.ok:
        raise ForgePlannerError(
            "the record is not intact, refusing to sign it: " + "; ".join(check.problems[:3])
        )
    seal = record["digests"]["seal"]
    out = dict(record)
    out["signatures"] = [*record.get("signatures", []), signing.sign(seal, key, signer, signed_at)]
    return out


def _shape_problems(record: Any) -> list[str]:
    if not isinstance(record, dict):
        return ["the record is not a JSON object"]
    problems = []
    missing = [k for k in TOP_LEVEL if k not in record]
    extra = [k for k in record if k not in TOP_LEVEL and k not in OPTIONAL]
    if missing:
        problems.append(f"missing top-level key(s): {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected top-level key(s): {', '.join(extra)}")
    if problems:
        return problems
    if record["format"] != FORMAT:
        problems.append(f"format is {record['format']!r}, expected {FORMAT!r}")
    if record["record_version"] != RECORD_VERSION:
        problems.append(
            f"record_version is {record['record_version']!r}; this program verifies "
            f"version {RECORD_VERSION}"
        )
    d = record["digests"]
    if not isinstance(d, dict) or set(d) != {"algorithm", "canonicalization", "sections", "seal"}:
        problems.append(
            "digests block altered (expected algorithm, canonicalization, sections, seal)"
        )
        return problems
    if d["algorithm"] != ALGORITHM:
        problems.append(f"digests.algorithm is {d['algorithm']!r}, expected {ALGORITHM!r}")
    if d["canonicalization"] != CANONICALIZATION:
        problems.append(f"digests.canonicalization altered: {d['canonicalization']!r}")
    if not isinstance(d["sections"], dict) or not isinstance(d["seal"], str):
        problems.append("digests.sections must be an object and digests.seal a string")
    if not isinstance(record["runs"], list) or not all(
        isinstance(r, dict) and isinstance(r.get("raw_output"), str) and "run_id" in r
        for r in record["runs"]
    ):
        problems.append("runs altered: each run needs run_id and a raw_output string")
    elif len({str(r["run_id"]) for r in record["runs"]}) != len(record["runs"]):
        problems.append("runs altered: a run id appears twice")
    if not isinstance(record["plan"], dict) or not isinstance(record["plan"].get("plan"), dict):
        problems.append("plan altered: expected the .fplan document with its 'plan' object")
    return problems
