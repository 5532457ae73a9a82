"""The shell: sidebar and lazy views, placeholders, shortcuts, settings, about, errors."""

from __future__ import annotations

import sys
import types

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QWidget

from forgeplanner.errors import NotFoundError
from ui import app as app_mod
from ui.context import AppContext, PlanDocument
from ui.errors import install_excepthook, one_line_reason, open_error_dialogs, show_error
from ui.views import VIEW_KEYS, VIEWS, ViewEntry, view_entry


@pytest.fixture
def window(qtbot):
    w = app_mod.MainWindow(AppContext())
    qtbot.addWidget(w)
    return w


def test_registry_matches_cli_choices():
    from forgeplanner.cli.gui_cmd import VIEW_CHOICES

    assert VIEW_KEYS == VIEW_CHOICES
    assert [v.title for v in VIEWS][:3] == ["Hardware", "Models", "Fit"]
    assert view_entry("platform").title == "Platform (K3s)"
    with pytest.raises(KeyError, match="valid: hardware"):
        view_entry("nope")


def test_sidebar_lists_every_view(window):
    titles = [window.sidebar.item(i).text() for i in range(window.sidebar.count())]
    assert titles == [
        "Hardware",
        "Models",
        "Fit",
        "Models for my Mac",
        "Recommend",
        "Cluster",
        "Platform (K3s)",
        "Benchmarks",
        "Plan",
    ]


def test_missing_view_module_shows_coming_page(window):
    entry = ViewEntry("recommend", "Recommend", "no_such_view_module_xyz")
    page = app_mod.build_view(entry, window.ctx)
    assert page.objectName() == "comingPage"
    assert "Coming" in page.findChild(QLabel).text()


def test_broken_view_module_shows_error_page(window, monkeypatch):
    module = types.ModuleType("ui.views.broken_for_test")

    def create_view(ctx):
        raise NotFoundError("model", "llama-9", ["llama-3.1-8b"])

    module.create_view = create_view
    monkeypatch.setitem(sys.modules, "ui.views.broken_for_test", module)
    page = app_mod.build_view(ViewEntry("x", "Broken", "broken_for_test"), window.ctx)
    text = page.findChild(QLabel).text()
    assert "unknown model 'llama-9'; valid: llama-3.1-8b" in text
    assert "Traceback" in page.details.toPlainText()
    assert not page.details.isVisibleTo(page)


def test_view_is_built_once_and_lazily(window, monkeypatch):
    built: list[int] = []
    module = types.ModuleType("ui.views.counting_for_test")

    def create_view(ctx):
        assert isinstance(ctx, AppContext)
        built.append(1)
        return QWidget()

    module.create_view = create_view
    monkeypatch.setitem(sys.modules, "ui.views.counting_for_test", module)
    monkeypatch.setattr(
        app_mod,
        "VIEWS",
        [ViewEntry(v.key, v.title, "counting_for_test") for v in app_mod.VIEWS],
    )
    w = app_mod.MainWindow(AppContext())
    try:
        assert built == []
        w.show_view("plan")
        w.show_view("plan")
        assert built == [1]
        assert w.current_view_key() == "plan"
        assert w.page("plan") is not None
        assert w.page("fit") is None
    finally:
        w.close()
        w.deleteLater()


def test_shortcuts_switch_views_and_open_about(window, qtbot, monkeypatch):
    for i, key in enumerate(VIEW_KEYS):
        action = window.view_actions[key]
        assert action.shortcut().toString() == f"Ctrl+{i + 1}"
    assert window.quit_action.shortcut().toString() == "Ctrl+Q"
    assert window.about_action.shortcut().toString() == "F1"
    monkeypatch.setattr(app_mod, "build_view", lambda entry, ctx: QWidget())
    window.show()
    qtbot.waitExposed(window)
    window.view_actions["cluster"].trigger()
    assert window.current_view_key() == "cluster"
    with qtbot.waitSignal(window.view_changed) as blocker:
        window.view_actions["bench"].trigger()
    assert blocker.args == ["bench"]


def test_about_lists_versions_and_sources(window, qtbot, monkeypatch):
    import numpy
    import pyqtgraph
    import PySide6

    monkeypatch.setattr(app_mod, "data_sources_html", lambda ctx: "<p>sources</p>")
    box = window.about()
    text = box.text()
    for version in (PySide6.__version__, pyqtgraph.__version__, numpy.__version__):
        assert version in text
    assert sys.version.split()[0] in text
    assert "Data sources" in text
    box.close()


def test_geometry_and_last_view_are_remembered(qtbot, monkeypatch, _isolated_home):
    monkeypatch.setattr(app_mod, "build_view", lambda entry, ctx: QWidget())
    w = app_mod.MainWindow(AppContext())
    qtbot.addWidget(w)
    w.restore_state(None)
    assert w.current_view_key() == "hardware"  # default on first start
    w.resize(700, 520)
    w.show_view("cluster")
    w.close()
    assert (_isolated_home / "config" / "gui.ini").exists()

    w2 = app_mod.MainWindow(AppContext())
    qtbot.addWidget(w2)
    w2.restore_state(None)
    assert w2.current_view_key() == "cluster"
    assert (w2.width(), w2.height()) == (700, 520)
    w2.restore_state("fit")  # an explicit view wins
    assert w2.current_view_key() == "fit"


def test_show_error_has_reason_and_details_toggle(qtbot):
    try:
        raise NotFoundError("machine", "mac-99", ["mac-mini-m4-16gb"])
    except NotFoundError as exc:
        box = show_error(None, exc)
    try:
        assert box.text() == "unknown machine 'mac-99'; valid: mac-mini-m4-16gb"
        assert "Traceback" in box.detailedText()
        assert box.icon() == QMessageBox.Icon.Critical
        assert box in open_error_dialogs()
    finally:
        box.close()


def test_excepthook_turns_uncaught_exception_into_dialog(qtbot, capsys):
    install_excepthook()
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        sys.excepthook(*sys.exc_info())
    boxes = open_error_dialogs()
    assert boxes and boxes[-1].text() == "ZeroDivisionError: division by zero"
    for b in boxes:
        b.close()
    assert "Traceback" in capsys.readouterr().err


def test_one_line_reason_uses_first_line():
    assert one_line_reason(ValueError("a\nb")) == "ValueError: a"
    assert one_line_reason(KeyError()) == "KeyError"


def test_plan_document_undo_redo(qtbot):
    doc = PlanDocument()
    seen: list = []
    doc.plan_changed.connect(seen.append)
    doc.set_plan({"v": 1}, "first")
    doc.set_plan({"v": 2}, "second")
    assert doc.plan == {"v": 2}
    doc.undo_stack.undo()
    assert doc.plan == {"v": 1}
    doc.undo_stack.redo()
    assert doc.plan == {"v": 2}
    assert seen == [{"v": 1}, {"v": 2}, {"v": 1}, {"v": 2}]
    assert doc.undo_stack.undoText() == "second"


def test_palette_colours_follow_dark_mode(qapp):
    from PySide6.QtGui import QColor, QPalette

    from ui import theme

    original = QApplication.palette()
    try:
        dark = QPalette()
        dark.setColor(QPalette.ColorRole.Window, QColor(30, 30, 30))
        dark.setColor(QPalette.ColorRole.Base, QColor(20, 20, 20))
        dark.setColor(QPalette.ColorRole.Text, QColor(230, 230, 230))
        QApplication.setPalette(dark)
        assert theme.is_dark()
        tint = theme.verdict_tint("fits")
        assert tint.lightness() < 100  # a dark tint: light text stays readable
        QApplication.setPalette(original)
        assert theme.verdict_tint("fits").lightness() > 150
    finally:
        QApplication.setPalette(original)


def test_high_dpi_policy_is_pass_through(qapp):
    from PySide6.QtGui import QGuiApplication

    assert app_mod.create_application() is qapp
    # Set before the first QApplication exists; in tests pytest-qt made the app first.
    assert QGuiApplication.highDpiScaleFactorRoundingPolicy() in (
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough,
    )


def test_warmup_loads_what_views_need_after_the_first_paint(qtbot):
    """One step per event-loop pass on the GUI thread: view modules, the heavy libraries, the
    shared data, the engine's tables, and the plan document."""
    ctx = AppContext()
    w = app_mod.MainWindow(ctx)
    qtbot.addWidget(w)
    warmup = w.start_warmup()
    ticks: list[int] = []
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(len(warmup.done)))
    timer.start(5)
    qtbot.waitUntil(lambda: warmup.finished_flag, timeout=60000)
    timer.stop()
    assert "ui.views.fit_view" in sys.modules and "ui.views.formac_view" in sys.modules
    assert "pyqtgraph" in sys.modules and "forgeplanner.store" in sys.modules
    assert ctx._catalog is not None and ctx._models is not None
    assert ctx.plan.plan is not None  # the first document is open
    # the event loop ran between the steps (timers fired while the warm-up was going)
    assert len(set(ticks)) > 3


def test_built_pages_and_warm_up_are_kept_out_of_the_gc(window, qtbot):
    """A full collection walks every tracked object with the GIL held (measured: 170 ms in a
    worker during the warm-up); the shell freezes what lives until exit."""
    import gc

    gc.unfreeze()
    window.show_view("hardware")
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    warmup = window.start_warmup()
    qtbot.waitUntil(lambda: warmup.finished_flag, timeout=60000)
    assert gc.get_freeze_count() > 0
