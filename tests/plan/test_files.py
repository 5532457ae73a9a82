"""Atomic writes: the destination is either the old file or the complete new one."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from forgeplanner.errors import ForgePlannerError
from forgeplanner.plan.files import atomic_path, atomic_write, read_plan, write_plan
from tests.plan.samples import sample_plan


def test_write_then_read(tmp_path: Path) -> None:
    path = tmp_path / "p.fplan"
    write_plan(path, sample_plan())
    assert read_plan(path) == sample_plan()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["p.fplan"]


def test_failed_writer_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_bytes(b"old content")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half of the new con")
        raise RuntimeError("renderer crashed")
    assert path.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_replace_keeps_the_old_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.md"
    path.write_bytes(b"x")
    path.chmod(0o664)
    atomic_write(path, b"y")
    assert path.read_bytes() == b"y"
    assert stat.S_IMODE(path.stat().st_mode) == 0o664


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ForgePlannerError, match="does not exist"):
        atomic_write(tmp_path / "nope" / "x.md", b"x")


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(ForgePlannerError, match="no such plan file"):
        read_plan(tmp_path / "absent.fplan")


def test_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ForgePlannerError, match="is a directory"):
        atomic_write(tmp_path, b"x")
    assert list(tmp_path.iterdir()) == []
