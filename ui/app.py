"""The application shell: QApplication setup and the main window.

The window is a sidebar of views (registry in `ui.views.VIEWS`) next to a `QStackedWidget`.
A view's module is imported and its page built the first time it is shown, so starting on one
view costs only that view. The File menu works on the build plan document
(`ui.document.DocumentController`: unsaved-changes prompt, crash recovery, recent files,
export, evidence verification); the window title names the document and marks it modified.
Window geometry, the last view, the appearance and every view's inputs, column widths, sort
order and splitters are remembered in an INI file in `forgeplanner.paths.config_dir()` (which
honours FORGEPLANNER_HOME, so tests stay isolated).

Start-up: the window shows as soon as its first view is built (each view paints its frame
first and computes after); what other views need is loaded right after the first paint
(`Warmup`): pyqtgraph, numpy and SQLAlchemy in a worker thread, the view modules, the shared
data and the engine's tables one piece per event-loop pass.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, QObject, QSettings, QSize, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from forgeplanner.errors import ForgePlannerError
from ui.context import AppContext
from ui.errors import format_details, install_excepthook, one_line_reason
from ui.views import VIEW_KEYS, VIEWS, ViewEntry

APP_NAME = "ForgePlanner"
ORG_NAME = "ForgePlanner"
SCREENSHOT_SIZE = (1280, 800)


def create_application(argv: Sequence[str] | None = None) -> QApplication:
    """The one QApplication, set up for high DPI and the system palette."""
    app = QApplication.instance()
    if app is None:
        # Qt 6 scales for high DPI by itself; pass fractional factors (125 %, 150 %) through
        # instead of rounding them, so text and plots are neither blurry nor oversized.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication(list(argv) if argv is not None else [sys.argv[0]])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(ORG_NAME)
    app.setApplicationDisplayName(APP_NAME)
    # No style sheet and no fixed colours: the platform style follows the system light/dark
    # scheme (or the appearance chosen in View > Appearance) and every custom colour is derived
    # from the palette (ui.theme).
    install_excepthook()
    return app  # type: ignore[return-value]


def settings() -> QSettings:
    from forgeplanner import paths

    return QSettings(str(paths.config_dir() / "gui.ini"), QSettings.Format.IniFormat)


class _ErrorPage(QWidget):
    """Shown in place of a view whose module failed to build: the reason and a details toggle."""

    def __init__(self, title: str, exc: BaseException, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        label = QLabel(f"<b>{title}</b> could not be opened: {one_line_reason(exc)}")
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details = QPlainTextEdit(format_details(exc))
        self.details.setReadOnly(True)
        self.details.setVisible(False)
        toggle = QPushButton("Show details")
        toggle.setCheckable(True)
        toggle.toggled.connect(self.details.setVisible)
        toggle.toggled.connect(lambda on: toggle.setText("Hide details" if on else "Show details"))
        layout.addWidget(label)
        layout.addWidget(toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.details, 1)
        layout.addStretch(0)


def coming_page(title: str) -> QWidget:
    page = QWidget()
    page.setObjectName("comingPage")
    layout = QVBoxLayout(page)
    label = QLabel(f"<h2>{title}</h2><p>Coming: this view is being built.</p>")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    layout.addWidget(label)
    return page


def build_view(entry: ViewEntry, ctx: AppContext) -> QWidget:
    """Import `ui.views.<module>` and call its `create_view(ctx)`; a module that does not exist
    yet gives the "coming" page, any other failure an error page with the reason (the page is
    the report: a view that fails to build must not take the window down with it)."""
    full = f"ui.views.{entry.module_name}"
    try:
        module = importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name == full:
            return coming_page(entry.title)
        return _ErrorPage(entry.title, exc)
    except Exception as exc:  # reported on the page, with its traceback
        return _ErrorPage(entry.title, exc)
    try:
        widget = module.create_view(ctx)
    except Exception as exc:  # reported on the page, with its traceback
        return _ErrorPage(entry.title, exc)
    widget.setObjectName(widget.objectName() or f"view_{entry.key}")
    return widget


# The big libraries, imported in a worker thread: pyqtgraph alone takes a few hundred
# milliseconds. The GIL passes to the GUI thread every switch interval while a worker imports,
# so the window stays responsive (measured: worst stall 160 ms on a 2-core machine at load 9,
# where the same import on the GUI thread blocks it for 2 s).
WORKER_IMPORTS = ("numpy", "pyqtgraph", "sqlalchemy", "alembic", "forgeplanner.store")


class Warmup(QObject):
    """What the views will need, loaded right after the first paint: the big libraries in a
    worker thread, then the rest on the GUI thread one step per event-loop pass
    (`ui.widgets.DEFER_MS` apart), so input and painting go on in between."""

    finished = Signal()

    def __init__(
        self,
        window: MainWindow,
        steps: list[tuple[str, Callable[[], None]]],
        imports: tuple[str, ...] = WORKER_IMPORTS,
    ) -> None:
        super().__init__(window)
        self._window = window
        self._steps = list(steps)
        self._imports = imports
        self._importer: Any = None
        self.done: list[str] = []
        self.finished_flag = False

    def start(self) -> Warmup:
        from ui.widgets import defer
        from ui.workers import start_worker

        imports = self._imports

        def job(token):
            for name in imports:
                if token.is_set():
                    return None
                try:
                    importlib.import_module(name)
                except ImportError:  # reported where it is used
                    pass
                yield name
            return None

        def finished() -> None:
            self._importer = None
            self.done.append("libraries")

        self._importer = start_worker(
            self._window.ctx.pool, job, on_finished=finished, on_error=lambda _e: None, owner=self
        )
        defer(self, self._next)
        return self

    def _next(self) -> None:
        from ui.widgets import defer

        if not self._steps:
            if self._importer is not None:
                defer(self, self._next)  # the libraries are still being imported
                return
            keep_out_of_gc()
            self.finished_flag = True
            self.finished.emit()
            return
        name, step = self._steps.pop(0)
        try:
            step()
        except ImportError:  # a missing optional module reports itself where it is used
            pass
        self.done.append(name)
        defer(self, self._next)

    def cancel(self) -> None:
        self._steps.clear()
        if self._importer is not None:
            self._importer.cancel()


class MainWindow(QMainWindow):
    view_changed = Signal(str)  # key of the view now shown

    def __init__(self, ctx: AppContext | None = None, store_settings: bool = True) -> None:
        super().__init__()
        self.ctx = ctx or AppContext(self)
        self.ctx.documents.window = self
        self._store_settings = store_settings
        self.setWindowTitle(APP_NAME)
        self._pages: dict[str, QWidget] = {}
        self.warmup: Warmup | None = None

        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setUniformItemSizes(True)
        for i, entry in enumerate(VIEWS):
            item = QListWidgetItem(entry.title)
            item.setData(Qt.ItemDataRole.UserRole, entry.key)
            item.setToolTip(f"{entry.title} (Ctrl+{i + 1})")
            self.sidebar.addItem(item)
        self.sidebar.setSpacing(2)
        # Width from the longest title in the current font (high-DPI and font-size safe).
        self.sidebar.setFixedWidth(self.sidebar.sizeHintForColumn(0) + 28)

        self.stack = QStackedWidget()
        self._holders: dict[str, QWidget] = {}
        for entry in VIEWS:
            holder = QWidget()
            QVBoxLayout(holder).setContentsMargins(0, 0, 0, 0)
            self._holders[entry.key] = holder
            self.stack.addWidget(holder)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.statusBar().showMessage("Ready")
        self.ctx.status_message.connect(self._on_status)
        self.ctx.navigate.connect(self._on_navigate)
        docs = self.ctx.documents
        docs.title_changed.connect(self._update_title)
        self.ctx.plan.undo_stack.cleanChanged.connect(self._update_title)
        self.sidebar.currentRowChanged.connect(self._on_row)
        self._make_actions()

    # -- actions, menus, shortcuts -------------------------------------------------------------
    def _action(
        self, menu: QMenu, text: str, slot: Callable[[], Any], shortcut: Any = None
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    def _make_actions(self) -> None:
        docs = self.ctx.documents
        keys = QKeySequence.StandardKey
        file_menu = self.menuBar().addMenu("&File")
        self.new_action = self._action(file_menu, "&New plan", docs.new, keys.New)
        self.open_action = self._action(file_menu, "&Open plan...", docs.open, keys.Open)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        self.save_action = self._action(file_menu, "&Save", docs.save, keys.Save)
        self.save_as_action = self._action(file_menu, "Save &As...", docs.save_as, keys.SaveAs)
        file_menu.addSeparator()
        from ui.document import EXPORT_FORMATS, EXPORT_TITLES

        self.export_menu = file_menu.addMenu("&Export")
        self.export_actions: dict[str, QAction] = {}
        for fmt in EXPORT_FORMATS:
            self.export_actions[fmt] = self._action(
                self.export_menu, EXPORT_TITLES[fmt], lambda f=fmt: docs.export(f)
            )
        self.verify_action = self._action(
            file_menu, "&Verify evidence record...", docs.verify_evidence
        )
        file_menu.addSeparator()
        quit_action = self._action(file_menu, "&Quit", self.close, keys.Quit)
        if quit_action.shortcut().isEmpty():  # platforms without a standard Quit key
            quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action = quit_action

        edit_menu = self.menuBar().addMenu("&Edit")
        undo = self.ctx.plan.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.ctx.plan.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit_menu.addAction(undo)
        edit_menu.addAction(redo)

        view_menu = self.menuBar().addMenu("&View")
        self.view_actions: dict[str, QAction] = {}
        for i, entry in enumerate(VIEWS):
            self.view_actions[entry.key] = self._action(
                view_menu, entry.title, lambda k=entry.key: self.show_view(k), f"Ctrl+{i + 1}"
            )
        view_menu.addSeparator()
        appearance = view_menu.addMenu("&Appearance")
        group = QActionGroup(self)
        self.appearance_actions: dict[str, QAction] = {}
        for mode, label in (("system", "&System"), ("light", "&Light"), ("dark", "&Dark")):
            action = QAction(label, self, checkable=True)
            action.triggered.connect(lambda _c=False, m=mode: self.set_appearance(m))
            group.addAction(action)
            appearance.addAction(action)
            self.appearance_actions[mode] = action
        self.appearance_actions[current_appearance()].setChecked(True)

        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = self._action(help_menu, "&About ForgePlanner", self.about, "F1")

    def _fill_recent(self) -> None:
        docs = self.ctx.documents
        self.recent_menu.clear()
        recent = docs.recent_files()
        for i, path in enumerate(recent):
            action = self.recent_menu.addAction(f"&{i + 1} {path}")
            action.triggered.connect(lambda _c=False, p=path: docs.open(p))
        if not recent:
            self.recent_menu.addAction("(no recent plans)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear the list").triggered.connect(docs.clear_recent)

    def set_appearance(self, mode: str) -> None:
        from ui import theme

        mode = theme.apply_appearance(mode)
        self.appearance_actions[mode].setChecked(True)
        s = settings()
        s.setValue("window/appearance", mode)
        s.sync()

    def _update_title(self, *_: Any) -> None:
        self.setWindowTitle(self.ctx.documents.title())
        self.setWindowModified(self.ctx.documents.is_dirty)

    # -- views ---------------------------------------------------------------------------------
    def show_view(self, key: str) -> QWidget:
        if key not in VIEW_KEYS:
            raise KeyError(f"unknown view '{key}'; valid: {', '.join(VIEW_KEYS)}")
        row = VIEW_KEYS.index(key)
        if self.sidebar.currentRow() != row:
            self.sidebar.setCurrentRow(row)  # -> _on_row
        else:
            self._on_row(row)
        return self._pages[key]

    def _on_row(self, row: int) -> None:
        if row < 0:
            return
        entry = VIEWS[row]
        page = self._pages.get(entry.key)
        if page is None:
            self.statusBar().showMessage(f"Opening {entry.title}...")
            page = build_view(entry, self.ctx)
            keep_out_of_gc()  # the page lives as long as the window
            self._pages[entry.key] = page
            self._holders[entry.key].layout().addWidget(page)
            self.statusBar().showMessage(entry.title, 3000)
        self.stack.setCurrentWidget(self._holders[entry.key])
        self.view_changed.emit(entry.key)

    def _on_navigate(self, key: str, inputs: Any) -> None:
        page = self.show_view(key)
        apply = getattr(page, "apply_request", None)
        if callable(apply):
            apply(**dict(inputs or {}))

    def start_warmup(self) -> Warmup:
        """Right after the first paint: the big libraries in a worker; the plan document,
        every view's module, the shared data and the engine's tables one step per event-loop
        pass (see `Warmup`)."""
        ctx = self.ctx
        steps: list[tuple[str, Callable[[], None]]] = []
        if ctx.plan.plan is None:
            steps.append(("document", ctx.documents.open_initial))
        for entry in VIEWS:
            steps.append((entry.key, lambda m=entry.module_name: _import_view(m)))
        steps.append(("catalog", lambda: ctx.catalog))
        steps.append(("models", lambda: ctx.models))
        steps.append(("engine", lambda: _prime_engine(ctx)))
        self.warmup = Warmup(self, steps).start()
        return self.warmup

    def current_view_key(self) -> str | None:
        row = self.sidebar.currentRow()
        return VIEWS[row].key if row >= 0 else None

    def page(self, key: str) -> QWidget | None:
        """The built page of a view, or None if it was never shown."""
        return self._pages.get(key)

    def _on_status(self, text: str, timeout_ms: int) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    # -- about ---------------------------------------------------------------------------------
    def about_text(self) -> str:
        import numpy
        import pyqtgraph
        import PySide6
        from PySide6 import QtCore

        from forgeplanner import __version__

        rows = [
            ("ForgePlanner", __version__),
            ("Python", sys.version.split()[0]),
            ("Qt", QtCore.qVersion()),
            ("PySide6", PySide6.__version__),
            ("pyqtgraph", pyqtgraph.__version__),
            ("numpy", numpy.__version__),
        ]
        table = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
        return (
            "<h3>ForgePlanner</h3>"
            "<p>Hardware planner and sizing calculator for Apple Silicon AI labs.</p>"
            f"<table>{table}</table>"
            f"<h4>Data sources</h4>{data_sources_html(self.ctx)}"
        )

    def about(self) -> QMessageBox:
        box = QMessageBox(self)
        box.setObjectName("aboutBox")
        box.setWindowTitle("About ForgePlanner")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.about_text())
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    # -- persistence ---------------------------------------------------------------------------
    def restore_state(self, view: str | None = None) -> None:
        """Geometry and last view from settings; an explicit `view` wins."""
        s = settings()
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(self.default_size())
        last = s.value("window/last_view")
        key = view or (last if isinstance(last, str) and last in VIEW_KEYS else "hardware")
        self.show_view(key)

    def default_size(self) -> QSize:
        screen = QGuiApplication.primaryScreen()
        want = QSize(1280, 800)
        if screen is None:
            return want
        avail = screen.availableGeometry().size()
        return QSize(min(want.width(), avail.width() - 40), min(want.height(), avail.height() - 60))

    def save_state(self) -> None:
        from ui import persist

        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        key = self.current_view_key()
        if key:
            s.setValue("window/last_view", key)
        for page_key, page in self._pages.items():
            persist.save(page, page_key, s)
        s.sync()

    def closeEvent(self, event) -> None:
        if self._store_settings and not self.ctx.documents.maybe_save():
            event.ignore()  # Cancel in the unsaved-changes prompt: keep working
            return
        if self.warmup is not None:
            self.warmup.cancel()
        if self._store_settings:
            self.save_state()
        for page in self._pages.values():
            closer = getattr(page, "shutdown", None)
            if callable(closer):
                closer()
        super().closeEvent(event)

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.sidebar.setFixedWidth(self.sidebar.sizeHintForColumn(0) + 28)


def _import_view(module_name: str) -> None:
    try:
        importlib.import_module(f"ui.views.{module_name}")
    except ImportError:  # a missing view shows its "coming" page when opened
        pass


def current_appearance() -> str:
    value = settings().value("window/appearance", "system")
    return value if value in ("system", "light", "dark") else "system"


def keep_out_of_gc() -> None:
    """Move every object alive now (modules, the catalog, built pages: they live until the
    app exits) out of the cyclic garbage collector's reach (`gc.freeze`).

    A full collection holds the GIL while it walks every tracked object: measured in
    benchmarks/bench_ui_event_loop.py, one triggered by the warm-up's imports in a worker
    blocked the GUI thread for 170 ms, and ones in the GUI thread took 30 ms. Frozen objects
    are not walked, so later collections only look at what was made since. Cost: cyclic
    garbage that exists at the moment of a freeze is never reclaimed (a few KB here)."""
    import gc

    gc.freeze()


def _prime_engine(ctx: AppContext) -> None:
    """One small estimate: fills the engine's lazily built tables (quantization policies,
    speed constants) before a view needs them."""
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.estimate import estimate
    from forgeplanner.host import host_from_chip

    cat = ctx.catalog
    cfg = next(iter(cat.configs.values()))
    host = host_from_chip(cat.chips[cfg.chip_id], cfg.memory_gb, config=cfg)
    model = next(iter(ctx.models.all()))
    estimate(model, "Q4_K_M", host, RunOptions(context=4096))


def data_sources_html(ctx: AppContext) -> str:
    """Where the shipped numbers come from, from the loaded data itself."""
    parts: list[str] = []
    try:
        cat = ctx.catalog
        machines = list(cat.configs.values())
        sources: set[str] = set()
        for m in machines:
            sources.update(getattr(m, "sources", ()) or ())
        parts.append(
            f"<p>Hardware catalog: {len(machines)} configurations, {len(cat.chips)} chip bins, "
            f"{len(sources)} cited sources, from <code>{_data_dir()}</code> (every figure's "
            "source and date in the Hardware view).</p>"
        )
    except ForgePlannerError as exc:  # a broken data file names itself
        parts.append(f"<p>Hardware catalog: not available ({one_line_reason(exc)})</p>")
    try:
        models = ctx.models
        parts.append(
            f"<p>Model database: {len(models)} models from their published configs, from "
            f"<code>{getattr(models, 'file', 'models_db')}</code> (source per model in the "
            "Models view).</p>"
        )
    except ForgePlannerError as exc:
        parts.append(f"<p>Model database: not available ({one_line_reason(exc)})</p>")
    return "".join(parts)


def _data_dir() -> str:
    from catalog import DATA_DIR

    return str(DATA_DIR)


def run(
    view: str | None = None,
    screenshot: str | None = None,
    size: tuple[int, int] | None = None,
    appearance: str | None = None,
) -> int:
    """Start the app (or render one view to `screenshot` and exit)."""
    from ui.platform_check import EXIT_MISSING_LIBS, check_x11_libraries

    problem = check_x11_libraries()
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_MISSING_LIBS
    app = create_application()
    quiet_offscreen_noise()
    from ui import theme

    theme.apply_appearance(appearance or current_appearance())
    ctx = AppContext()
    window = MainWindow(ctx, store_settings=screenshot is None)
    if screenshot is not None:
        window.resize(*(size or SCREENSHOT_SIZE))
        window.show_view(view or "hardware")
        window.show()
        return _screenshot(app, window, ctx, screenshot)
    window.restore_state(view)
    window.show()
    from ui.widgets import after_first_paint

    after_first_paint(window, lambda: _after_first_paint(window))
    code = app.exec()
    ctx.shutdown()
    return code


def _after_first_paint(window: MainWindow) -> None:
    window.ctx.documents.offer_recovery()
    window.start_warmup()


def quiet_offscreen_noise() -> None:
    """The offscreen plugin warns "does not support propagateSizeHints()" on every main-window
    show; drop that one line, pass everything else to the previous handler (or stderr)."""
    from PySide6.QtCore import qInstallMessageHandler

    previous = None

    def handler(mode, context, message):
        if "does not support propagateSizeHints" in message:
            return
        if previous is not None:
            previous(mode, context, message)
        else:
            sys.stderr.write(message + "\n")

    previous = qInstallMessageHandler(handler)


def _screenshot(app: QApplication, window: MainWindow, ctx: AppContext, path: str) -> int:
    """Grab the window once the page has settled: workers done, and the page's optional
    `busy()` (pending debounced or background work) false; at most ~15 s."""
    import time

    page = window.page(window.current_view_key() or "")
    busy = getattr(page, "busy", None)
    deadline = time.monotonic() + 15.0
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        app.processEvents()
        ctx.pool.waitForDone(50)
        app.processEvents()
        idle = ctx.pool.activeThreadCount() == 0 and not (callable(busy) and busy())
        if not idle:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.15:  # deferred pieces (plots) have run
            break
    app.processEvents()
    if QGuiApplication.platformName() == "xcb":
        # A real X server (xvfb-run): grab what the server shows for the window, after the
        # window has been exposed and painted there.
        from PySide6.QtTest import QTest

        QTest.qWaitForWindowExposed(window, 3000)
        QTest.qWait(150)
        pixmap = window.screen().grabWindow(window.winId())
    else:
        pixmap = window.grab()
    ok = pixmap.save(path)
    window.close()
    ctx.shutdown()
    if not ok:
        print(f"forgeplanner: error: could not write screenshot to {path}", file=sys.stderr)
        return 2
    return 0
