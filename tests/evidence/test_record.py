"""Evidence records: intact records verify; any altered byte is caught and named."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import rfc8785

from forgeplanner.cli.main import main
from forgeplanner.errors import DataError
from forgeplanner.evidence.record import (
    build_record,
    canonical,
    dumps,
    raw_digest,
    sha256_hex,
    verify_bytes,
    verify_record,
)
from forgeplanner.governance.gate import evaluate
from forgeplanner.governance.policy import parse_policy
from tests.plan.samples import RAW, run, sample_plan

CREATED = "2026-11-26T15:00:00Z"
TOOL = {"forgeplanner": "0.1.0", "python": "3.11.9", "platform": "test", "rfc8785": "0.1.4"}


def record() -> dict:
    plan = replace(sample_plan(), runs=(run("7"), run("9", decode=9.0, raw="other raw\n")))
    policy = parse_policy(b"[budget]\nmax_usd = 5000\n[agreement]\nmin_pct = 80\n", "p.toml")
    return build_record(plan, CREATED, evaluate(plan, policy), policy, tool=TOOL)


def problems(rec: dict) -> list[str]:
    result = verify_bytes(dumps(rec).encode("utf-8"))
    assert not result.ok
    return result.problems


def test_intact_record_verifies_and_holds_what_the_issue_asks() -> None:
    rec = record()
    result = verify_bytes(dumps(rec).encode())
    assert result.ok and result.problems == []
    assert rec["plan"]["plan"]["build"]["estimates"]  # estimates travel with the plan
    assert rec["estimates"]["build"] == rec["plan"]["plan"]["build"]["estimates"]
    assert set(rec["estimates"]["alternatives"]) == {"Three Mac mini M4 Pro 64 GB"}
    first = rec["runs"][0]
    assert first["fingerprint"] and first["tool_versions"] and first["measured"]
    assert first["raw_output"] == RAW and first["raw_sha256"] == raw_digest(RAW)
    assert rec["plan"]["plan"]["runs"][0]["raw_output"] == ""  # kept once, under runs
    assert rec["gate"]["outcome"] in {"ALLOW", "DENY", "ESCALATE"}
    assert rec["gate"]["policy"]["sha256"]
    assert rec["created_at"] == CREATED
    assert rec["digests"]["sections"]["plan"] == sha256_hex(rfc8785.dumps(rec["plan"]))
    assert rec["digests"]["sections"]["runs[7].raw_output"] == sha256_hex(RAW.encode())


def test_canonical_form_is_rfc8785() -> None:
    assert canonical({"b": 1.0, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()


def test_plan_content_change_is_named() -> None:
    rec = record()
    rec["plan"]["plan"]["build"]["machines"][0]["count"] = 2
    found = problems(rec)
    assert any(p.startswith("'plan.build' changed") for p in found)
    assert any(p.startswith("'plan' changed") for p in found)


def test_raw_output_change_is_named() -> None:
    rec = record()
    rec["runs"][1]["raw_output"] = "other raw!\n"
    found = problems(rec)
    assert any(p.startswith("'runs[9].raw_output' changed") for p in found)
    assert any("run 9: raw output does not match" in p for p in found)
    assert not any("runs[7]" in p for p in found)


def test_altered_digest_is_told_apart_from_altered_content() -> None:
    rec = record()
    rec["digests"]["sections"]["runs[7]"] = "0" * 64
    (problem,) = problems(rec)
    assert problem == "recorded digest of 'runs[7]' was altered (content still matches the seal)"


def test_estimates_must_agree_with_the_plan() -> None:
    rec = record()
    rec["estimates"]["build"][0]["decode_tps"] = 99.0
    found = problems(rec)
    assert any(p.startswith("'estimates' changed") for p in found)
    assert "'estimates' no longer match the plan's own estimates" in found


def test_timestamp_change_is_named() -> None:
    rec = record()
    rec["created_at"] = "2026-11-26T15:00:01Z"
    assert any(p.startswith("'created_at' changed") for p in problems(rec))
    rec = record()
    rec["runs"][0]["started_at"] = "2026-11-20T10:00:01+00:00"
    assert any(p.startswith("'runs[7]' changed") for p in problems(rec))
    rec = record()
    rec["plan"]["plan"]["updated_at"] = "2027-01-01T00:00:00Z"
    assert any(p.startswith("'plan.updated_at' changed") for p in problems(rec))


def test_seal_gate_tool_and_structure_changes() -> None:
    rec = record()
    rec["digests"]["seal"] = "f" * 64
    assert problems(rec) == ["the seal was altered (all sections match their digests)"]
    rec = record()
    rec["gate"]["verdicts"][0]["outcome"] = (
        "ALLOW" if rec["gate"]["verdicts"][0]["outcome"] != "ALLOW" else "DENY"
    )
    assert any(p.startswith("'gate' changed") for p in problems(rec))
    rec = record()
    rec["tool"]["forgeplanner"] = "9.9.9"
    assert any(p.startswith("'tool' changed") for p in problems(rec))
    rec = record()
    rec["digests"]["algorithm"] = "md5"
    assert any("digests.algorithm" in p for p in problems(rec))
    rec = record()
    del rec["runs"][1]
    found = problems(rec)
    assert any("runs[9]" in p and "removed" in p for p in found)
    rec = record()
    rec["runs"].append(dict(rec["runs"][0]))
    assert any("appears twice" in p for p in problems(rec))
    rec = record()
    rec["extra"] = 1
    assert any("unexpected top-level key(s): extra" in p for p in problems(rec))
    assert verify_record([1, 2]).problems == ["the record is not a JSON object"]


def test_every_single_byte_flip_is_detected() -> None:
    """Flip one bit at every byte position of a serialised record: each variant must fail
    (invalid JSON or UTF-8, a changed section, a changed digest or seal)."""
    # A compact record (no alternatives, one run) still holds every class of byte: plan
    # content, a run's metadata and raw output, the gate, timestamps, digests and the seal.
    plan = replace(sample_plan(), alternatives=(), runs=(run("7"),))
    policy = parse_policy(b"[budget]\nmax_usd = 5000\n", "p.toml")
    data = dumps(build_record(plan, CREATED, evaluate(plan, policy), policy, TOOL)).encode()
    assert verify_bytes(data).ok
    undetected = []
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x01
        if verify_bytes(bytes(flipped)).ok:
            undetected.append(i)
    assert undetected == []


def test_mismatched_attached_raw_output_is_refused() -> None:
    plan = replace(sample_plan(), runs=(replace(run(), raw_sha256="0" * 64),))
    with pytest.raises(DataError, match="does not match the attached raw output"):
        build_record(plan, CREATED)


def test_cli_verify_exit_codes(tmp_path: Path, capsys) -> None:
    path = tmp_path / "evidence.json"
    path.write_text(dumps(record()), encoding="utf-8")
    assert main(["evidence", "verify", str(path)]) == 0
    assert "intact" in capsys.readouterr().out
    rec = json.loads(path.read_text())
    rec["runs"][0]["measured"]["decode_tps"] = 99.0
    path.write_text(dumps(rec), encoding="utf-8")
    assert main(["evidence", "verify", str(path), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and any("'runs[7]' changed" in p for p in out["problems"])
    assert main(["evidence", "verify", str(tmp_path / "none.json")]) == 2
