"""Documents and safety through the widgets: the File menu, quitting with unsaved changes,
crash recovery, the window title, recent files, the appearance, views that remember."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox

from forgeplanner.plan import edit
from forgeplanner.plan.files import read_plan, write_plan
from forgeplanner.viewstate import document as dstate
from tests.ui.conftest import wait_idle
from ui import app as app_mod
from ui import theme
from ui.context import AppContext
from ui.document import EXAMPLE
from ui.errors import open_error_dialogs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def saved_plan(tmp_path: Path) -> Path:
    path = tmp_path / "lab.fplan"
    write_plan(path, read_plan(EXAMPLE))
    return path


def open_window(qtbot, path: Path | None = None) -> app_mod.MainWindow:
    ctx = AppContext()
    w = app_mod.MainWindow(ctx)

    def no_prompt_at_teardown(window: app_mod.MainWindow) -> None:
        window.ctx.documents.ask_save_changes = lambda: QMessageBox.StandardButton.Discard

    qtbot.addWidget(w, before_close_func=no_prompt_at_teardown)
    w.restore_state("plan")
    w.show()
    qtbot.waitExposed(w)
    if path is not None:
        assert ctx.documents.open(path)
    return w


def answer_next_dialog(qtbot, button: QMessageBox.StandardButton, seen: list[str]) -> None:
    """Click `button` in the next modal message box (the prompt runs its own event loop)."""

    def click() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click)
            return
        seen.append(box.text())
        box.button(button).click()

    QTimer.singleShot(20, click)


def rename_in_the_plan_view(qtbot, w: app_mod.MainWindow, name: str) -> None:
    page = w.page("plan")
    page.name_edit.setFocus()
    page.name_edit.selectAll()
    qtbot.keyClicks(page.name_edit, name)
    qtbot.keyClick(page.name_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.ctx.plan.plan.name == name, timeout=5000)


def test_file_menu_has_the_standard_actions_with_platform_keys(qtbot):
    w = open_window(qtbot)
    file_menu = w.menuBar().actions()[0].menu()
    texts = [a.text().replace("&", "") for a in file_menu.actions() if not a.isSeparator()]
    assert texts == ["New plan", "Open plan...", "Open Recent", "Save", "Save As...", "Export",
                     "Verify evidence record...", "Quit"]  # fmt: skip
    assert w.new_action.shortcut() == QKeySequence(QKeySequence.StandardKey.New)
    assert w.open_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Open)
    assert w.save_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Save)
    assert not w.quit_action.shortcut().isEmpty()
    assert set(w.export_actions) == {"pdf", "html", "md", "xlsx", "csv", "json"}
    w.ctx.documents._autosave.stop()


def test_quit_with_unsaved_changes_asks_and_keeps_the_edit(qtbot, saved_plan):
    """The job: rename a plan, press Quit: the app asks; Cancel keeps working; Save writes the
    file; a new start opens it with the edit."""
    w = open_window(qtbot, saved_plan)
    rename_in_the_plan_view(qtbot, w, "Renamed lab")
    assert w.isWindowModified()
    assert w.windowTitle() == "Renamed lab (lab.fplan)[*] - ForgePlanner"
    seen: list[str] = []
    answer_next_dialog(qtbot, QMessageBox.StandardButton.Cancel, seen)
    w.quit_action.trigger()
    assert seen == ["Save the changes to “Renamed lab” before closing it?"]
    assert w.isVisible() and w.ctx.plan.plan.name == "Renamed lab"  # still working
    answer_next_dialog(qtbot, QMessageBox.StandardButton.Save, seen)
    w.quit_action.trigger()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=5000)
    assert read_plan(saved_plan).name == "Renamed lab"
    assert not dstate.autosave_path(saved_plan).exists()
    again = open_window(qtbot)
    again.ctx.documents.open_initial()
    assert again.ctx.plan.plan.name == "Renamed lab" and again.ctx.plan.path == saved_plan
    assert not again.isWindowModified()


def test_discard_throws_the_edit_away_and_new_asks_too(qtbot, saved_plan):
    w = open_window(qtbot, saved_plan)
    rename_in_the_plan_view(qtbot, w, "Not kept")
    seen: list[str] = []
    answer_next_dialog(qtbot, QMessageBox.StandardButton.Cancel, seen)
    w.new_action.trigger()
    assert seen and w.ctx.plan.plan.name == "Not kept"  # Cancel: New did nothing
    answer_next_dialog(qtbot, QMessageBox.StandardButton.Discard, seen)
    w.new_action.trigger()
    assert w.ctx.plan.plan.name == "Untitled plan" and w.ctx.plan.path is None
    assert read_plan(saved_plan).name == read_plan(EXAMPLE).name
    w.ctx.documents._autosave.stop()


def test_crash_recovery_offers_the_autosaved_copy(qtbot, saved_plan):
    w = open_window(qtbot, saved_plan)
    rename_in_the_plan_view(qtbot, w, "After the crash")
    assert w.ctx.documents._autosave.isActive()  # a copy is written a few seconds later
    copy = w.ctx.documents.autosave_now()
    assert copy == dstate.autosave_path(saved_plan) and copy.exists()
    # the app dies here (no close, no prompt): the copy stays beside the document
    w.ctx.documents._autosave.stop()
    w.hide()
    again = open_window(qtbot)
    seen: list[str] = []
    answer_next_dialog(qtbot, QMessageBox.StandardButton.Yes, seen)
    assert again.ctx.documents.offer_recovery()
    assert seen and str(saved_plan) in seen[0]
    assert again.ctx.plan.plan.name == "After the crash" and again.ctx.plan.path == saved_plan
    assert again.isWindowModified()
    assert again.ctx.documents.save()
    assert read_plan(saved_plan).name == "After the crash" and not copy.exists()


def test_recent_files_and_open_recent(qtbot, tmp_path, saved_plan):
    other = tmp_path / "other.fplan"
    write_plan(other, edit.new_plan("Other", "2026-11-27T00:00:00Z"))
    w = open_window(qtbot, saved_plan)
    assert w.ctx.documents.open(other)
    assert w.ctx.documents.recent_files() == [str(other), str(saved_plan)]
    w._fill_recent()
    labels = [a.text() for a in w.recent_menu.actions() if not a.isSeparator()]
    assert labels[:2] == [f"&1 {other}", f"&2 {saved_plan}"]
    w.recent_menu.actions()[1].trigger()
    assert w.ctx.plan.path == saved_plan
    assert w.windowTitle().startswith("70B at home (lab.fplan)")


def test_verify_evidence_from_the_app_says_what_the_cli_says(qtbot, tmp_path, saved_plan):
    import subprocess
    import sys

    w = open_window(qtbot, saved_plan)
    out = w.ctx.documents.export("json", tmp_path / "lab.evidence.json")
    ok, text = w.ctx.documents.verify_evidence(out)
    box = w.ctx.documents.last_dialog
    assert ok and box.text() == text == f"{out}: intact ({text.split('(')[1]}"
    cli = subprocess.run([sys.executable, "-m", "forgeplanner", "evidence", "verify", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert cli.returncode == 0 and cli.stdout.strip() == text
    box.close()
    out.write_text(out.read_text().replace('"Mac Studio', '"Mac Mini', 1))
    ok, text = w.ctx.documents.verify_evidence(out)
    cli = subprocess.run([sys.executable, "-m", "forgeplanner", "evidence", "verify", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    assert not ok and cli.returncode == 1 and cli.stderr.strip() == text
    assert w.ctx.documents.last_dialog.windowTitle() == "Evidence record ALTERED"
    w.ctx.documents.last_dialog.close()


def test_appearance_light_dark_system_is_applied_and_remembered(qtbot):
    w = open_window(qtbot)
    original = QApplication.palette().color(QPalette.ColorRole.Window)
    try:
        w.appearance_actions["dark"].trigger()
        assert theme.is_dark()
        assert app_mod.current_appearance() == "dark"
        w.appearance_actions["light"].trigger()
        assert not theme.is_dark()
        w.appearance_actions["system"].trigger()
        assert QApplication.palette().color(QPalette.ColorRole.Window) == original
        assert app_mod.current_appearance() == "system"
    finally:
        theme.apply_appearance("system")


def test_views_remember_widths_sort_order_splitters_and_inputs(qtbot):
    w = open_window(qtbot)
    hw = w.show_view("hardware")
    wait_idle(qtbot, w.ctx)
    hw.table.setColumnWidth(0, 333)
    hw.table.sortByColumn(3, Qt.SortOrder.DescendingOrder)
    hw.min_memory.setValue(64)
    hw.split.setSizes([100, 300])
    sizes = hw.split.sizes()
    w.close()
    again = open_window(qtbot)
    hw2 = again.show_view("hardware")
    wait_idle(qtbot, again.ctx)
    qtbot.waitUntil(lambda: hw2.model.rowCount() > 0, timeout=10000)
    header = hw2.table.horizontalHeader()
    assert hw2.table.columnWidth(0) == 333
    assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
        3,
        Qt.SortOrder.DescendingOrder,
    )
    assert hw2.min_memory.value() == 64
    assert hw2.split.sizes() == sizes
    again.close()


def test_undo_button_keeps_its_width(qtbot, saved_plan):
    w = open_window(qtbot, saved_plan)
    page = w.page("plan")
    before = page.undo_button.width()
    rename_in_the_plan_view(qtbot, w, "A much longer name for this plan than before")
    assert page.undo_button.isEnabled() and page.undo_button.text() == "Undo"
    assert page.undo_button.width() == before
    assert "Rename to A much longer name" in page.undo_button.toolTip()
    w.ctx.documents._autosave.stop()


HOLD_THE_PLAN_LOCK = """
import sys
from forgeplanner.plan.files import locked_plan
with locked_plan(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()  # hold it until the test says so
"""


def test_save_takes_the_plan_lock_and_says_so_once_when_another_process_holds_it(qtbot, saved_plan):
    """Another ForgePlanner (here: a process inside the CLI's `locked_plan`, as every `plan`
    command edits) holds the plan's edit lock: Save waits briefly, then shows one line and
    writes nothing; the edit stays unsaved. Once the lock is free, Save writes."""
    import subprocess
    import sys

    w = open_window(qtbot, saved_plan)
    rename_in_the_plan_view(qtbot, w, "Locked lab")
    before = saved_plan.read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_PLAN_LOCK, str(saved_plan)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not w.ctx.documents.save()
        boxes = open_error_dialogs()
        assert len(boxes) == 1
        assert boxes[0].text() == (
            f"{saved_plan}: another ForgePlanner has been editing this plan for over 2 s; "
            "nothing was changed, try again"
        )
        boxes[0].close()
        assert saved_plan.read_bytes() == before and w.isWindowModified()
    finally:
        holder.communicate("done\n", timeout=30)
    assert w.ctx.documents.save()
    assert read_plan(saved_plan).name == "Locked lab" and not w.isWindowModified()


def test_a_context_with_an_edited_plan_is_torn_down_cleanly(qtbot, capfd):
    """A context dropped as cyclic garbage with undo history: its document's undo stack
    signals while it is destroyed, after the controller listening to it has gone (before:
    "Slot 'DocumentController::' not found" raised in the Qt event loop of a later test)."""
    import gc

    for name in ("A", "B"):
        ctx = AppContext()
        ctx.plan.set_plan(edit.new_plan(name, "2026-11-27T00:00:00Z"))
        ctx.plan.set_plan(edit.new_plan(name + "2", "2026-11-27T00:00:00Z"))
        assert ctx.documents.is_dirty
        cycle: list = [ctx]
        cycle.append(cycle)
        del ctx, cycle
        gc.collect()
    assert "not found" not in capfd.readouterr().err
