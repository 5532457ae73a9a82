"""The File menu's work: new, open, open recent, save, save as, export, verify evidence, and
never losing an edit.

`DocumentController` sits on the shared `PlanDocument` (ctx.plan). Every way of replacing or
leaving the document (New, Open, Open Recent, Quit, closing the window) first asks to save
unsaved changes (Save / Don't Save / Cancel). While the plan is modified a recovery copy is
written a few seconds after each edit (forgeplanner.viewstate.document); the next start offers
it after a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from forgeplanner.errors import ForgePlannerError
from forgeplanner.viewstate import document as dstate
from ui.errors import show_error

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "70b-home-lab.fplan"
AUTOSAVE_MS = 3000
SETTINGS_LAST_FILE = "plan/last_file"
SETTINGS_RECENT = "plan/recent"
EXPORT_FORMATS: dict[str, str] = {
    "pdf": "PDF (*.pdf)",
    "html": "HTML (*.html)",
    "md": "Markdown (*.md)",
    "xlsx": "Excel workbook (*.xlsx)",
    "csv": "CSV (*.csv)",
    "json": "Evidence record (*.json)",
}
EXPORT_TITLES: dict[str, str] = {
    "pdf": "PDF report...",
    "html": "HTML report...",
    "md": "Markdown report...",
    "xlsx": "Excel workbook...",
    "csv": "CSV table...",
    "json": "Evidence record (JSON)...",
}


def now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _settings() -> Any:
    from ui.app import settings

    return settings()


class DocumentController(QObject):
    """File actions on `ctx.plan`, with the unsaved-changes prompt and crash recovery."""

    title_changed = Signal(str)
    recent_changed = Signal()
    exported = Signal(object)  # Path

    def __init__(self, ctx: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.doc = ctx.plan
        self.window: QWidget | None = None  # parent for dialogs (the main window)
        self._autosave = QTimer(self)
        self._autosave.setSingleShot(True)
        self._autosave.setInterval(AUTOSAVE_MS)
        self._autosave.timeout.connect(self.autosave_now)
        self._autosave_file: Path | None = None
        self.doc.plan_changed.connect(self._on_changed)
        self.doc.undo_stack.cleanChanged.connect(self._on_clean_changed)
        # plan_changed comes from inside QUndoStack.push, before the stack counts the edit:
        # whether the document is modified is known once the index has moved.
        self.doc.undo_stack.indexChanged.connect(self._on_index_changed)

    # -- state ----------------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self.doc.path

    @property
    def is_dirty(self) -> bool:
        return self.doc.plan is not None and self.doc.is_dirty

    def title(self) -> str:
        plan = self.doc.plan
        return dstate.window_title(None if plan is None else plan.name, self.path)

    def _on_changed(self, _plan: Any) -> None:
        self.title_changed.emit(self.title())

    def _on_index_changed(self, _index: int) -> None:
        self.title_changed.emit(self.title())
        if self.is_dirty:
            self._autosave.start()

    def _on_clean_changed(self, clean: bool) -> None:
        # The copy is removed where the changes end (save, discard, new, open), not on every
        # return to clean: opening a document must not delete its crash copy before the
        # start-up offers it.
        self.title_changed.emit(self.title())
        if clean:
            self._autosave.stop()

    # -- recovery copy --------------------------------------------------------------------------
    def _autosave_target(self) -> Path:
        path = self.path
        beside = path is not None and path != EXAMPLE
        return dstate.autosave_path(path, writable_beside=beside)

    def autosave_now(self) -> Path | None:
        """Write the recovery copy of a modified plan (atomic, like every plan file)."""
        from forgeplanner.plan.files import write_plan

        if not self.is_dirty:
            return None
        target = self._autosave_target()
        try:
            write_plan(target, self.doc.plan)
            dstate.write_origin(target, self.path)
        except (ForgePlannerError, OSError) as exc:
            self.ctx.status(f"Could not write the recovery copy: {exc}", 8000)
            return None
        if self._autosave_file is not None and self._autosave_file != target:
            dstate.remove_autosave(self._autosave_file)
        self._autosave_file = target
        return target

    def discard_autosave(self) -> None:
        for f in {self._autosave_file, self._autosave_target()} - {None}:
            dstate.remove_autosave(f)  # type: ignore[arg-type]
        self._autosave_file = None

    def offer_recovery(self, ask: bool = True) -> bool:
        """At start: restore a recovery copy left by a crash (after asking). True if restored."""
        from forgeplanner.plan.files import read_plan

        last = self.last_file()
        candidates: list[Path | None] = [last, None, *map(Path, self.recent_files())]
        found = dstate.find_recovery(candidates)
        if found is None:
            return False
        if ask:
            answer = QMessageBox.question(
                self.window,
                "Restore unsaved changes?",
                found.describe(),
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.Yes,
            )
            if answer != QMessageBox.StandardButton.Yes:
                dstate.remove_autosave(found.autosave)
                return False
        try:
            plan = read_plan(found.autosave)
        except ForgePlannerError as exc:
            show_error(self.window, exc)
            return False
        # The restored plan is the document's content with the changes not yet saved: its
        # file (if any) stays the target of Save, and it starts modified.
        self.doc.replace_plan(plan, found.document)
        self.doc.undo_stack.resetClean()
        self._autosave_file = found.autosave
        self.title_changed.emit(self.title())
        self.ctx.status("Restored the unsaved changes", 8000)
        return True

    # -- the unsaved-changes prompt -------------------------------------------------------------
    def ask_save_changes(self) -> QMessageBox.StandardButton:
        plan = self.doc.plan
        name = plan.name if plan is not None else "this plan"
        box = QMessageBox(self.window)
        box.setObjectName("saveChangesDialog")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Unsaved changes")
        box.setText(f"Save the changes to “{name}” before closing it?")
        box.setInformativeText("Your changes will be lost if you don't save them.")
        box.setStandardButtons(
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel
        )
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        return QMessageBox.StandardButton(box.exec())

    def maybe_save(self) -> bool:
        """True when the document may be replaced or closed (saved, discarded, or clean)."""
        if not self.is_dirty:
            return True
        answer = self.ask_save_changes()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        if answer == QMessageBox.StandardButton.Discard:
            self._autosave.stop()
            self.discard_autosave()
            return True
        return False

    # -- new, open, save ------------------------------------------------------------------------
    def new(self) -> bool:
        from forgeplanner.plan import edit

        if not self.maybe_save():
            return False
        self.discard_autosave()
        self.doc.replace_plan(edit.new_plan("Untitled plan", now_iso()), None)
        self.title_changed.emit(self.title())
        return True

    def open(self, path: str | Path | None = None) -> bool:
        if not self.maybe_save():
            return False
        if path is None:
            start = str(self.path.parent) if self.path is not None else ""
            chosen, _ = QFileDialog.getOpenFileName(
                self.window, "Open plan", start, "Plans (*.fplan)"
            )
            if not chosen:
                return False
            path = chosen
        return self._load(Path(path))

    def _load(self, path: Path) -> bool:
        self.discard_autosave()
        try:
            self.doc.open(path)
        except ForgePlannerError as exc:
            show_error(self.window, exc)
            return False
        self._remember(path)
        self.title_changed.emit(self.title())
        self.ctx.status(f"Opened {path}")
        return True

    def open_initial(self) -> None:
        """First plan of a session: the last file, else the shipped example, else a new one."""
        from forgeplanner.plan import edit

        last = self.last_file()
        for candidate in (last, EXAMPLE):
            if candidate is not None and candidate.is_file():
                try:
                    self.doc.open(candidate)
                except ForgePlannerError as exc:  # a stale or broken last file: say so
                    self.ctx.status(f"Could not reopen {candidate}: {exc}", 8000)
                    continue
                self.title_changed.emit(self.title())
                return
        self.doc.replace_plan(edit.new_plan("Untitled plan", now_iso()), None)
        self.title_changed.emit(self.title())

    def save(self) -> bool:
        if self.doc.plan is None:
            return False
        if self.path is None or self.path == EXAMPLE:
            return self.save_as()  # never overwrite the shipped example silently
        return self._write(self.path)

    def save_as(self, path: str | Path | None = None) -> bool:
        if self.doc.plan is None:
            return False
        if path is None:
            suggested = f"{self.doc.plan.name}.fplan"
            if self.path is not None and self.path != EXAMPLE:
                suggested = str(self.path)
            chosen, _ = QFileDialog.getSaveFileName(
                self.window, "Save plan as", suggested, "Plans (*.fplan)"
            )
            if not chosen:
                return False
            path = chosen
        target = Path(path)
        if target.suffix != ".fplan":
            target = target.with_name(target.name + ".fplan")
        return self._write(target)

    def _write(self, target: Path) -> bool:
        old_autosave = self._autosave_file
        try:
            self.doc.save(target)
        except ForgePlannerError as exc:
            show_error(self.window, exc)
            return False
        if old_autosave is not None:
            dstate.remove_autosave(old_autosave)
        self.discard_autosave()
        self._remember(target)
        self.title_changed.emit(self.title())
        self.ctx.status(f"Saved {target}")
        return True

    # -- recent files ---------------------------------------------------------------------------
    def last_file(self) -> Path | None:
        value = _settings().value(SETTINGS_LAST_FILE, "", str)
        return Path(value) if value else None

    def recent_files(self) -> list[str]:
        value = _settings().value(SETTINGS_RECENT, [])
        if isinstance(value, str):
            value = [value] if value else []
        return dstate.existing_recent([str(v) for v in value or []])

    def _remember(self, path: Path) -> None:
        if path == EXAMPLE:
            return
        s = _settings()
        s.setValue(SETTINGS_LAST_FILE, str(path))
        s.setValue(SETTINGS_RECENT, dstate.add_recent(self.recent_files(), path))
        self.recent_changed.emit()

    def clear_recent(self) -> None:
        _settings().setValue(SETTINGS_RECENT, [])
        self.recent_changed.emit()

    # -- export and evidence --------------------------------------------------------------------
    def export(self, fmt: str, path: str | Path | None = None) -> Path | None:
        from forgeplanner.export.render import export_plan

        plan = self.doc.plan
        if plan is None:
            return None
        if path is None:
            folder = self.path.parent if self.path is not None and self.path != EXAMPLE else None
            suggested = (
                f"{plan.name}.{fmt}" if folder is None else str(folder / f"{plan.name}.{fmt}")
            )
            chosen, _ = QFileDialog.getSaveFileName(
                self.window, f"Export {fmt.upper()}", suggested, EXPORT_FORMATS[fmt]
            )
            if not chosen:
                return None
            path = chosen
        try:
            out = export_plan(plan, fmt, path, now=now_iso())
        except ForgePlannerError as exc:
            show_error(self.window, exc)
            return None
        self.ctx.status(f"Exported {out}")
        self.exported.emit(out)
        return out

    def verify_evidence(
        self, path: str | Path | None = None, show: bool = True
    ) -> tuple[bool, str]:
        """File > Verify evidence: the same check and words as `forgeplanner evidence verify`."""
        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(
                self.window, "Verify an evidence record", "", "Evidence records (*.json)"
            )
            if not chosen:
                return False, ""
            path = chosen
        try:
            ok, text = dstate.verify_evidence_file(Path(path))
        except ForgePlannerError as exc:
            show_error(self.window, exc)
            return False, str(exc)
        if show:
            box = QMessageBox(self.window)
            box.setObjectName("verifyEvidenceDialog")
            box.setIcon(QMessageBox.Icon.Information if ok else QMessageBox.Icon.Warning)
            box.setWindowTitle("Evidence record intact" if ok else "Evidence record ALTERED")
            first, *rest = text.splitlines()
            box.setText(first)
            if rest:
                box.setInformativeText("\n".join(line.strip() for line in rest))
            box.open()
            self.last_dialog = box
        return ok, text

    def shutdown(self) -> None:
        self._autosave.stop()


__all__ = ["EXAMPLE", "EXPORT_FORMATS", "DocumentController"]
