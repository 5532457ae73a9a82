"""Two processes editing one plan at once lose nothing.

Each process runs `forgeplanner plan add-model` ten times (the real CLI, the real SQLite user
database, one shared FORGEPLANNER_HOME) on the same `.fplan`, at the same time. Before the
edit lock, 6, 1 and 7 of the 20 edits vanished in three runs while every command exited 0.
Now every model must be in the file, and the database must hold one version per edit, the
last of which is exactly the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from forgeplanner.cli.main import main
from forgeplanner.plan.document import plan_to_document
from forgeplanner.plan.files import read_plan
from forgeplanner.store import PlanRepo, open_store

ROOT = Path(__file__).resolve().parents[2]
MODELS = [
    "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.2-1b", "llama-3.2-3b",
    "llama-3.1-70b", "llama-3.3-70b", "llama-3.1-405b", "qwen2.5-0.5b", "qwen2.5-1.5b",
    "qwen2.5-3b", "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b", "qwen2.5-72b", "qwen3-0.6b",
    "qwen3-1.7b", "qwen3-4b", "qwen3-8b",
]  # fmt: skip

EDITOR = """
import sys
from forgeplanner.cli.main import main
plan, ids = sys.argv[1], sys.argv[2:]
sys.stdout = open("/dev/null", "w")
for model_id in ids:
    code = main(["plan", "add-model", plan, model_id, "--quant", "Q4_K_M"])
    if code:
        sys.exit(code)
"""


def test_two_processes_ten_edits_each_nothing_lost(tmp_path: Path) -> None:
    plan_file = tmp_path / "lab.fplan"
    assert main(["plan", "new", "lab", "--out", str(plan_file)]) == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", EDITOR, str(plan_file), *ids],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for ids in (MODELS[0::2], MODELS[1::2])  # interleaved, so both run the whole time
    ]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
    plan = read_plan(plan_file)
    assert sorted(m.model_id for m in plan.build.models) == sorted(MODELS)
    with open_store() as store, store.session() as s:
        versions = PlanRepo(s).versions("lab")
    assert len(versions) == 1 + len(MODELS)  # `plan new` and every edit
    assert sorted(m["model_id"] for m in versions[-1].document["plan"]["build"]["models"]) == (
        sorted(MODELS)
    )
    # The newest database version is the file, byte for byte in meaning.
    assert json.loads(json.dumps(plan_to_document(plan), sort_keys=True)) == json.loads(
        json.dumps(versions[-1].document, sort_keys=True)
    )
