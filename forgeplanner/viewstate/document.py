"""The open build plan as a document: its title, the recent files, and crash recovery.

Crash recovery: while a plan has unsaved changes, a copy is written every few seconds beside
the document (`.lab.fplan.autosave` next to `lab.fplan`; an unsaved or shipped-example plan
keeps its copy in the user data directory). Saving, or closing and discarding the changes,
removes the copy; after a crash it stays, and the next start offers to restore it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from forgeplanner import paths

AUTOSAVE_SUFFIX = ".autosave"
MAX_RECENT = 8
APP_NAME = "ForgePlanner"


def display_name(plan_name: str | None, path: Path | None) -> str:
    """What the window title calls the document: the plan's name, and its file."""
    name = plan_name or "Untitled plan"
    return f"{name} ({path.name})" if path is not None else f"{name} (not saved)"


def window_title(plan_name: str | None, path: Path | None) -> str:
    """Title with Qt's `[*]` placeholder: the window shows `*` there when modified."""
    return f"{display_name(plan_name, path)}[*] - {APP_NAME}"


def _untitled_dir() -> Path:
    d = paths.data_dir() / "autosave"
    d.mkdir(parents=True, exist_ok=True)
    return d


def autosave_path(path: Path | None, *, writable_beside: bool = True) -> Path:
    """Where the crash-recovery copy of a document lives."""
    if path is not None and writable_beside and os.access(path.parent, os.W_OK):
        return path.parent / f".{path.name}{AUTOSAVE_SUFFIX}"
    stem = "untitled" if path is None else path.name
    return _untitled_dir() / f"{stem}{AUTOSAVE_SUFFIX}"


def _origin_file(autosave: Path) -> Path:
    return autosave.with_name(autosave.name + ".origin")


def write_origin(autosave: Path, path: Path | None) -> None:
    """Remember which document an autosave belongs to (None: an unsaved plan)."""
    _origin_file(autosave).write_text(json.dumps({"path": None if path is None else str(path)}))


def remove_autosave(autosave: Path) -> None:
    for f in (autosave, _origin_file(autosave)):
        f.unlink(missing_ok=True)


@dataclass(frozen=True)
class Recovery:
    """An autosaved copy newer than its document, offered at start."""

    autosave: Path
    document: Path | None  # the file it belongs to (None: it was never saved)

    def describe(self) -> str:
        where = "an unsaved plan" if self.document is None else str(self.document)
        return f"ForgePlanner did not close normally. Restore the unsaved changes to {where}?"


def find_recovery(candidates: list[Path | None]) -> Recovery | None:
    """The first autosave left by a crash among the documents the app may reopen (the last
    file, recent files, an unsaved plan), if it is newer than its document."""
    seen: set[Path] = set()
    for doc in candidates:
        for auto in (autosave_path(doc), autosave_path(doc, writable_beside=False)):
            if auto in seen or not auto.is_file():
                continue
            seen.add(auto)
            if doc is not None and doc.is_file():
                if doc.stat().st_mtime > auto.stat().st_mtime:
                    continue  # saved after the copy was made: nothing to recover
                if doc.read_bytes() == auto.read_bytes():
                    remove_autosave(auto)  # the changes were undone: nothing to recover
                    continue
            origin = _origin_file(auto)
            owner = doc
            if origin.is_file():
                try:
                    stored = json.loads(origin.read_text()).get("path")
                except (OSError, ValueError):
                    stored = None
                owner = None if stored is None else Path(stored)
            return Recovery(auto, owner)
    return None


def add_recent(recent: list[str], path: Path) -> list[str]:
    """Most recent first, each file once, at most MAX_RECENT."""
    text = str(path)
    return [text, *[p for p in recent if p != text]][:MAX_RECENT]


def existing_recent(recent: list[str]) -> list[str]:
    return [p for p in recent if Path(p).is_file()]


__all__ = [
    "MAX_RECENT",
    "Recovery",
    "add_recent",
    "autosave_path",
    "display_name",
    "existing_recent",
    "find_recovery",
    "remove_autosave",
    "window_title",
    "write_origin",
]


def verify_evidence_file(path: Path) -> tuple[bool, str]:
    """What `forgeplanner evidence verify FILE` decides and says, for the app's dialog."""
    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.evidence.record import verify_bytes

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ForgePlannerError(f"{path}: cannot read: {exc.strerror}") from exc
    result = verify_bytes(data)
    if result.ok:
        return True, f"{path}: intact ({result.checked} digests match)"
    return False, "\n".join([f"{path}: ALTERED", *(f"  - {p}" for p in result.problems)])
