"""The document without Qt: title, recent files, crash-recovery copies, evidence words."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from forgeplanner.plan import edit
from forgeplanner.plan.files import write_plan
from forgeplanner.viewstate import document as d

ROOT = Path(__file__).resolve().parents[2]


def test_title_names_the_plan_and_its_file():
    assert (
        d.window_title("70B at home", Path("/x/lab.fplan"))
        == "70B at home (lab.fplan)[*] - ForgePlanner"
    )
    assert d.window_title(None, None) == "Untitled plan (not saved)[*] - ForgePlanner"


def test_recent_files_most_recent_first_once_each(tmp_path: Path):
    files = [tmp_path / f"p{i}.fplan" for i in range(10)]
    recent: list[str] = []
    for f in files:
        recent = d.add_recent(recent, f)
    recent = d.add_recent(recent, files[3])
    assert recent[0] == str(files[3]) and len(recent) == d.MAX_RECENT
    assert len(set(recent)) == len(recent)
    files[9].write_text("x")
    files[3].write_text("x")
    assert d.existing_recent(recent) == [str(files[3]), str(files[9])]


def test_autosave_lives_beside_the_document_or_in_the_data_dir(tmp_path: Path):
    doc = tmp_path / "lab.fplan"
    assert d.autosave_path(doc) == tmp_path / ".lab.fplan.autosave"
    untitled = d.autosave_path(None)
    assert untitled.name == "untitled.autosave" and untitled.parent.name == "autosave"


def test_recovery_is_offered_only_when_the_copy_is_newer(tmp_path: Path):
    plan = edit.new_plan("Mine", "2026-11-27T00:00:00Z")
    doc = tmp_path / "lab.fplan"
    write_plan(doc, plan)
    assert d.find_recovery([doc]) is None
    auto = d.autosave_path(doc)
    write_plan(auto, edit.rename(plan, "Mine, edited", "2026-11-27T00:01:00Z"))
    d.write_origin(auto, doc)
    found = d.find_recovery([doc, None])
    assert found is not None and found.autosave == auto and found.document == doc
    assert str(doc) in found.describe()
    # saved after the copy was made: nothing to recover
    later = time.time() + 5
    os.utime(doc, (later, later))
    assert d.find_recovery([doc]) is None
    d.remove_autosave(auto)
    assert not auto.exists()


def test_verify_evidence_says_what_the_cli_says(tmp_path: Path):
    from forgeplanner.export.render import export_plan
    from forgeplanner.plan.files import read_plan

    plan = read_plan(ROOT / "examples" / "70b-home-lab.fplan")
    out = export_plan(plan, "json", tmp_path / "lab.evidence.json", now="2026-11-27T00:00:00Z")
    ok, text = d.verify_evidence_file(out)
    cli = subprocess.run([sys.executable, "-m", "forgeplanner", "evidence", "verify", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert ok and cli.returncode == 0 and text == cli.stdout.strip()
    out.write_text(out.read_text().replace('"70B', '"71B', 1))
    ok, text = d.verify_evidence_file(out)
    cli = subprocess.run([sys.executable, "-m", "forgeplanner", "evidence", "verify", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert not ok and cli.returncode == 1 and text == cli.stderr.strip()
    assert "ALTERED" in text
