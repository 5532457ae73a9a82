"""Labs completed on this machine without a terminal: manual steps and prompts answered from
a file, progress saved, the record sealed and exported in every format."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from forgeplanner.bench.builtin import BuiltinConfig
from forgeplanner.bench.progress import drive
from forgeplanner.cli.main import main
from forgeplanner.domain.units import MiB
from forgeplanner.evidence.record import verify_bytes
from forgeplanner.labs import LABS
from forgeplanner.labs.answers import parse_answers
from forgeplanner.labs.runner import answer_lab, run_lab
from forgeplanner.store import EvidenceRepo, Store

SMALL = BuiltinConfig(
    array_bytes=16 * MiB, repetitions=2, matmul_n=256, decode_weight_bytes=8 * MiB
)

L001_ANSWERS = """
[steps.raise-limit]
done = false
note = "Not a Mac: the wired limit cannot be raised here."

[observations]
gpu-share = "About three quarters of memory; the rest stays with the OS."
bandwidth-fraction = "Copy bandwidth reaches well under the advertised figure: caches, TLB."
largest-fit = "qwen2.5-14b at Q4_K_M, with a few GiB to spare."
raised-limit = "qwen2.5-32b would need a raised limit, leaving little for the OS."
decode-bound = "Bandwidth over the weight bytes: a few tokens per second."
"""

L003_OBSERVATIONS = """
[observations]
where-policy-lives = "A policy change is a reviewed commit; the hook applies it at once."
escalate-vs-deny = "Legal but costly changes get a human decision instead of a hard no."
signoff-binding = "Editing the plan changes its digest: the sign-off no longer applies."
latency-budget = "Milliseconds in the gate, seconds starting the program."
bypass = "The admission policies in the cluster catch what skipped the hook."
"""


def _run(lab_id, store, **kw):
    return drive(run_lab(lab_id, store, **kw), bar=False)


def test_l001_completes_from_an_answers_file_and_exports(tmp_path, capsys, pdftotext):
    lab = LABS["L-001"]
    answers = parse_answers(L001_ANSWERS.encode(), lab, "l001.toml")
    with Store() as st:
        rec = _run("L-001", st, options={"builtin_config": SMALL}, answers=answers)
    body = rec.body
    steps = {s["id"]: s for s in body["steps"]}
    assert steps["raise-limit"]["status"] == "skipped"
    assert steps["bandwidth"]["status"] == "done" and len(rec.run_ids) == 1
    assert body["status"] == "complete", body["missing"]
    assert all(o["answer"] for o in body["observations"])
    for fmt in ("md", "html", "pdf", "json"):
        out = tmp_path / f"l001.{fmt}"
        assert main(["lab", "export", str(rec.id), "--format", fmt, "--out", str(out)]) == 0
        assert out.stat().st_size > 500
    # the PDF (the export package's renderer) says what the Markdown says, read back by poppler
    text = subprocess.run(
        [pdftotext, str(tmp_path / "l001.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(text.split())
    expected = (
        "L-001 Unified-memory math on your Mac",
        "Recording sheet",
        "Largest ladder model that fits at Q4_K_M",
        "qwen2.5-14b at Q4_K_M",
        "Not a Mac: the wired limit cannot be raised here.",
        "Seal (SHA-256",
    )
    for line in expected:
        assert line in flat, line
    md = (tmp_path / "l001.md").read_text()
    assert "Largest ladder model that fits at Q4_K_M" in md and "qwen2.5-14b at Q4_K_M" in md
    assert "<td>complete" not in (tmp_path / "l001.html").read_text()  # status is a paragraph
    record = json.loads((tmp_path / "l001.json").read_text())
    assert record["format"] == "forgeplanner.lab-record"
    assert [r["runner"] for r in record["runs"]] == ["builtin"]
    assert verify_bytes((tmp_path / "l001.json").read_bytes()).ok
    assert main(["evidence", "verify", str(tmp_path / "l001.json")]) == 0
    # signed like a plan's record (the test key of tests/evidence), and verified by its key
    keys = Path(__file__).parents[1] / "evidence" / "data"
    signed = tmp_path / "l001.signed.json"
    sign = ["evidence", "sign", str(tmp_path / "l001.json"), "--out", str(signed)]
    assert main([*sign, "--key", str(keys / "signer_ed25519"), "--signer", "Ann"]) == 0
    pub = ["--signer", str(keys / "signer_ed25519.pub")]
    assert main(["evidence", "verify", str(signed), *pub]) == 0
    assert main(["evidence", "verify", str(tmp_path / "l001.json"), *pub]) == 1  # unsigned
    # a changed byte anywhere is named
    record["runs"][0]["raw_output"] += " "
    (tmp_path / "bad.json").write_text(json.dumps(record))
    v = verify_bytes((tmp_path / "bad.json").read_bytes())
    assert not v.ok and any("raw_output" in p for p in v.problems)


def test_without_answers_the_record_says_what_is_missing_then_answers_complete_it(tmp_path):
    lab = LABS["L-001"]
    with Store() as st:
        rec = _run("L-001", st, options={"builtin_config": SMALL})
        assert rec.body["status"] == "incomplete"
        assert "steps.raise-limit.done" in rec.body["missing"]
        assert "observations.gpu-share" in rec.body["missing"]
        half = parse_answers(b'[observations]\ngpu-share = "three quarters"\n', lab, "a.toml")
        rec = answer_lab(rec.id, half, st)  # progress saved
        assert rec.body["observations"][0]["answer"] == "three quarters"
        assert rec.body["status"] == "incomplete"
        rest = parse_answers(L001_ANSWERS.encode(), lab, "b.toml")
        rec = answer_lab(rec.id, rest, st)
        assert rec.body["status"] == "complete"
        with st.session() as s:
            stored = EvidenceRepo(s).get(rec.id)
    assert stored.body["answers"]["source"] == "b.toml"


def test_l002_completes_with_answers(tmp_path):
    lab = LABS["L-002"]
    text = (
        """
[steps.ollama-mlx]
done = false
note = "No Mac here: Ollama and MLX run on the Studio next week."
"""
        + "\n[observations]\n"
        + "\n".join(f'{o.key} = "answered: {o.key}"' for o in lab.observations)
    )
    answers = parse_answers(text.encode(), lab, "l002.toml")
    with Store() as st:
        rec = _run("L-002", st, options={"ladder": ()}, answers=answers)
    assert rec.body["status"] == "complete", rec.body["missing"]
    assert {s["id"]: s["status"] for s in rec.body["steps"]}["ollama-mlx"] == "skipped"


@pytest.mark.slow
def test_l003_end_to_end_with_a_later_sign_off(tmp_path, capsys):
    """`lab run L-003` without a sign-off stops at the escalation (pending); the answers file
    with the sign-off completes it: the signed-off commit lands and everything is sealed."""
    (tmp_path / "obs.toml").write_text(L003_OBSERVATIONS)
    work = tmp_path / "work"
    assert (
        main(
            [
                "lab",
                "run",
                "L-003",
                "--workdir",
                str(work),
                "--answers",
                str(tmp_path / "obs.toml"),
                "--json",
            ]
        )
        == 0
    )
    rec = json.loads(capsys.readouterr().out)["lab_record"]
    steps = {s["id"]: s for s in rec["body"]["steps"]}
    assert [steps[k]["status"] for k in ("repo", "hook", "allow", "deny", "escalate")] == [
        "done"
    ] * 5
    assert steps["signoff"]["status"] == "pending"
    assert steps["latency"]["status"] == "done" and steps["cluster"]["status"] == "done"
    assert rec["body"]["status"] == "incomplete"
    assert rec["body"]["missing"] == ["signoff.who", "signoff.why"]
    sheet = rec["body"]["sheet"]
    assert (sheet["allow_outcome"], sheet["deny_outcome"], sheet["escalate_outcome"]) == (
        "ALLOW",
        "DENY",
        "ESCALATE",
    )
    assert "24.8 GiB short" in sheet["deny_reason"] and "$4,798" in sheet["escalate_reason"]
    assert sheet["gate_median_ms"] > 0 and sheet["hook_median_ms"] > sheet["gate_median_ms"]
    assert "forgeplanner-inference-memory" in sheet["admission_policies"]
    (tmp_path / "signoff.toml").write_text(
        '[signoff]\nwho = "Ada Lovelace"\nwhy = "The second Studio is budgeted."\n'
    )
    assert (
        main(
            ["lab", "answer", str(rec["id"]), "--answers", str(tmp_path / "signoff.toml"), "--json"]
        )
        == 0
    )
    done = json.loads(capsys.readouterr().out)["lab_record"]
    assert done["body"]["status"] == "complete", done["body"]["missing"]
    assert done["body"]["sheet"]["signed_off_by"] == "Ada Lovelace"
    assert done["body"]["sheet"]["commits"] == 3
    out = tmp_path / "l003.json"
    assert main(["lab", "export", str(rec["id"]), "--format", "json", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    kinds = [e["kind"] for e in record["evidence"]]
    assert kinds.count("signoff") == 1 and kinds.count("gate") >= 4
    outcomes = [e["body"]["outcome"] for e in record["evidence"] if e["kind"] == "gate"]
    assert {"ALLOW", "DENY", "ESCALATE"} <= set(outcomes)
    signoff = next(e["body"] for e in record["evidence"] if e["kind"] == "signoff")
    assert signoff["who"] == "Ada Lovelace" and signoff["when"] and signoff["why"]
    assert verify_bytes(out.read_bytes()).ok
    for fmt in ("md", "html", "pdf"):
        assert (
            main(
                [
                    "lab",
                    "export",
                    str(rec["id"]),
                    "--format",
                    fmt,
                    "--out",
                    str(tmp_path / f"l003.{fmt}"),
                ]
            )
            == 0
        )
    md = (tmp_path / "l003.md").read_text()
    assert "## Sign-offs" in md and "Ada Lovelace" in md and "## Gate verdicts" in md


def test_l003_refuses_a_used_workdir(tmp_path, capsys):
    (tmp_path / "shelf-plans").mkdir()
    assert main(["lab", "run", "L-003", "--workdir", str(tmp_path)]) == 2
    assert "already exist there; run it with --workdir NEW_DIR" in capsys.readouterr().err
