"""The whole loop with a real benchmark: llama.cpp's llama-bench measures a small GGUF, the
store keeps the run and its raw output, the plan attaches it, the evidence record carries the
raw output with its digest, and a changed byte of that output is caught."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from forgeplanner.bench.synthetic_gguf import SyntheticShape, write_synthetic_gguf
from forgeplanner.cli.main import main
from forgeplanner.evidence.record import dumps, raw_digest, verify_bytes
from forgeplanner.plan.files import read_plan


@pytest.mark.slow
def test_real_llama_bench_run_as_evidence(llamacpp_bin, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", f"{llamacpp_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    shape = SyntheticShape(n_layers=2, hidden_size=256, intermediate_size=512, n_heads=4,
                           n_kv_heads=4, vocab_size=1024, tie_word_embeddings=True,
                           context_length=512, name="tiny")  # fmt: skip
    gguf = write_synthetic_gguf(tmp_path / "tiny.gguf", shape, "Q8_0")
    assert main(["bench", "run", "llama.cpp", "--gguf", str(gguf), "-p", "64", "-n", "16",
                 "-r", "2", "--json"]) == 0  # fmt: skip
    run = json.loads(capsys.readouterr().out)
    assert run["status"] == "ok" and run["measured"]["decode_tps"] > 0

    plan = tmp_path / "lab.fplan"
    assert main(["plan", "new", "Bench lab", "--out", str(plan), "--json"]) == 0
    assert main(["plan", "attach-run", str(plan), str(run["id"]), "--json"]) == 0
    capsys.readouterr()
    (attached,) = read_plan(plan).runs
    assert attached.runner == "llama.cpp" and attached.tool_versions
    assert attached.fingerprint and attached.raw_output
    assert attached.raw_sha256 == raw_digest(attached.raw_output)  # the store's digest
    assert attached.measured["decode_tps"] == pytest.approx(run["measured"]["decode_tps"])

    record_path = tmp_path / "evidence.json"
    assert main(["export", str(plan), "--format", "json", "--out", str(record_path)]) == 0
    assert main(["evidence", "verify", str(record_path)]) == 0
    record = json.loads(record_path.read_text())
    raw = record["runs"][0]["raw_output"]
    assert json.loads(raw)  # llama-bench's own JSON output, byte for byte
    position = raw.index("avg_ts") + len('avg_ts": ')
    digit = "1" if raw[position] != "1" else "2"
    record["runs"][0]["raw_output"] = raw[:position] + digit + raw[position + 1 :]
    result = verify_bytes(dumps(record).encode())
    assert not result.ok
    assert any(f"runs[{run['id']}].raw_output" in p for p in result.problems)
