"""The application shell: QApplication setup and the main window.

The window is a sidebar of views (registry in `ui.views.VIEWS`) next to a `QStackedWidget`.
A view's module is imported and its page built the first time it is shown, so starting on one
view costs only that view. Window geometry and the last view are remembered in an INI file in
`forgeplanner.paths.config_dir()` (which honours FORGEPLANNER_HOME, so tests stay isolated).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from PySide6.QtCore import QByteArray, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ui.context import AppContext
from ui.errors import format_details, install_excepthook, one_line_reason
from ui.views import VIEW_KEYS, VIEWS, ViewEntry

APP_NAME = "ForgePlanner"
ORG_NAME = "ForgePlanner"


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
    # scheme and every custom colour is derived from the palette (ui.theme).
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
    yet gives the "coming" page, any other failure an error page with the reason."""
    full = f"ui.views.{entry.module_name}"
    try:
        module = importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name == full:
            return coming_page(entry.title)
        return _ErrorPage(entry.title, exc)
    except Exception as exc:
        return _ErrorPage(entry.title, exc)
    try:
        widget = module.create_view(ctx)
    except Exception as exc:
        return _ErrorPage(entry.title, exc)
    widget.setObjectName(widget.objectName() or f"view_{entry.key}")
    return widget


class MainWindow(QMainWindow):
    view_changed = Signal(str)  # key of the view now shown

    def __init__(self, ctx: AppContext | None = None, store_settings: bool = True) -> None:
        super().__init__()
        self.ctx = ctx or AppContext(self)
        self._store_settings = store_settings
        self.setWindowTitle(APP_NAME)
        self._pages: dict[str, QWidget] = {}

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
        self.sidebar.currentRowChanged.connect(self._on_row)
        self._make_actions()

    # -- actions, menus, shortcuts -------------------------------------------------------------
    def _make_actions(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)

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
            action = QAction(entry.title, self)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            action.triggered.connect(lambda _=False, k=entry.key: self.show_view(k))
            view_menu.addAction(action)
            self.view_actions[entry.key] = action

        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction("&About ForgePlanner", self)
        self.about_action.setShortcut(QKeySequence("F1"))
        self.about_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.about_action.triggered.connect(self.about)
        help_menu.addAction(self.about_action)
        self.quit_action = quit_action

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

    def start_warmup(self) -> object:
        """After the first paint: import every view's module and the heavy libraries, load the
        shared data and prime the engine in a worker thread, so opening a view for the first
        time costs only building its widgets (imports would otherwise stall the GUI thread
        for hundreds of milliseconds)."""
        from ui.workers import start_worker

        ctx = self.ctx

        def job(token):
            for entry in VIEWS:
                if token.is_set():
                    return None
                try:
                    importlib.import_module(f"ui.views.{entry.module_name}")
                except Exception:  # a missing or broken view reports itself when opened
                    pass
                keep_out_of_gc()
                yield entry.key
            ctx.catalog  # noqa: B018 (load now, in this thread)
            ctx.models  # noqa: B018
            keep_out_of_gc()
            yield "data"
            _prime_engine(ctx)
            keep_out_of_gc()
            return None

        return start_worker(ctx.pool, job, on_error=lambda _err: None)

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
        s = settings()
        s.setValue("window/geometry", self.saveGeometry())
        key = self.current_view_key()
        if key:
            s.setValue("window/last_view", key)
        s.sync()

    def closeEvent(self, event) -> None:
        if self._store_settings:
            self.save_state()
        for page in self._pages.values():
            closer = getattr(page, "shutdown", None)
            if callable(closer):
                closer()
        super().closeEvent(event)


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
    speed constants) off the GUI thread."""
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
        machines = _catalog_machines(cat)
        chips = getattr(cat, "chips", None)
        n_chips = len(chips) if chips is not None else 0
        sources: set[str] = set()
        for m in machines:
            sources.update(getattr(m, "sources", ()) or ())
        parts.append(
            f"<p>Hardware catalog: {len(machines)} configurations, {n_chips} chip bins, "
            f"{len(sources)} cited sources, from <code>{_data_dir()}</code> (every figure's "
            "source and date in the Hardware view).</p>"
        )
    except Exception as exc:
        parts.append(f"<p>Hardware catalog: not available ({one_line_reason(exc)})</p>")
    try:
        models = ctx.models
        parts.append(
            f"<p>Model database: {len(models)} models from their published configs, from "
            f"<code>{getattr(models, 'file', 'models_db')}</code> (source per model in the "
            "Models view).</p>"
        )
    except Exception as exc:
        parts.append(f"<p>Model database: not available ({one_line_reason(exc)})</p>")
    return "".join(parts)


def _data_dir() -> str:
    try:
        from catalog import DATA_DIR

        return str(DATA_DIR)
    except ImportError:
        return "catalog/data"


def _catalog_machines(cat: object) -> list:
    for name in ("configs", "machines", "configurations"):
        value = getattr(cat, name, None)
        if value is not None:
            return list(value.values()) if isinstance(value, dict) else list(value)
    return []


def run(view: str | None = None, screenshot: str | None = None) -> int:
    """Start the app (or render one view to `screenshot` and exit)."""
    app = create_application()
    quiet_offscreen_noise()
    ctx = AppContext()
    window = MainWindow(ctx, store_settings=screenshot is None)
    if screenshot is not None:
        window.resize(1280, 800)
        window.show_view(view or "hardware")
        window.show()
        return _screenshot(app, window, ctx, screenshot)
    preload_before_show()
    window.restore_state(view)
    window.show()
    QTimer.singleShot(0, window.start_warmup)
    code = app.exec()
    ctx.shutdown()
    return code


def preload_before_show() -> None:
    """Import every view module and the heavy libraries (SQLAlchemy via the store, pandas)
    on the GUI thread *before* the window shows and the event loop runs.

    Why: an import holds the GIL for tens of milliseconds at a time, so importing in the
    warm-up worker after the first paint stalled the event loop by 160-260 ms
    (benchmarks/bench_ui_event_loop.py). Before the loop runs there is no loop to stall; the
    window appears a few hundred milliseconds later instead. `gui --screenshot` skips this
    (it renders one view and exits)."""
    for name in ("pandas", "sqlalchemy", "alembic", "forgeplanner.store"):
        try:
            importlib.import_module(name)
        except ImportError:  # reported when used
            pass
    for entry in VIEWS:
        try:
            importlib.import_module(f"ui.views.{entry.module_name}")
        except Exception:  # a missing or broken view reports itself when opened
            pass
    keep_out_of_gc()


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
    `busy()` (pending debounced work) false; at most ~2 s."""
    import time

    page = window.page(window.current_view_key() or "")
    busy = getattr(page, "busy", None)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        app.processEvents()
        ctx.pool.waitForDone(50)
        app.processEvents()
        if ctx.pool.activeThreadCount() == 0 and not (callable(busy) and busy()):
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
