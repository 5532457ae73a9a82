"""Errors reach the user as a dialog: the one-line reason, the traceback behind a details toggle.

`show_error` is used by the shell, by workers (`ui.workers`) and by views; `install_excepthook`
routes every uncaught exception in the GUI thread (Qt slots included) to the same dialog, so a
bug never ends as a traceback on the console only. The dialog is opened non-modally to the
application (`open()`), so an error raised inside a slot never nests a second event loop.
"""

from __future__ import annotations

import sys
import traceback
from types import TracebackType

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from forgeplanner.errors import ForgePlannerError

_open_boxes: list[QMessageBox] = []  # keep Python wrappers alive while the dialog is open


def one_line_reason(exc: BaseException) -> str:
    """The sentence a user reads. Our own errors are already one clear line; anything else is a
    bug, named by its type so a report is useful."""
    if isinstance(exc, ForgePlannerError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first


def format_details(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def show_error(
    parent: QWidget | None,
    reason: str | BaseException,
    details: str | None = None,
    title: str = "ForgePlanner",
) -> QMessageBox:
    """Open an error dialog and return it (tests close it; users click OK)."""
    if isinstance(reason, BaseException):
        if details is None:
            details = format_details(reason)
        reason = one_line_reason(reason)
    if parent is None:
        parent = QApplication.activeWindow()
    box = QMessageBox(parent)
    box.setObjectName("errorDialog")
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(title)
    box.setText(reason)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if details:
        box.setDetailedText(details)  # QMessageBox adds the "Show Details..." toggle
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    _open_boxes.append(box)
    box.finished.connect(lambda _r, b=box: _open_boxes.remove(b) if b in _open_boxes else None)
    box.open()
    return box


def open_error_dialogs() -> list[QMessageBox]:
    return list(_open_boxes)


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    details = "".join(traceback.format_exception(exc_type, exc, tb))
    sys.stderr.write(details)  # keep it in the log too, but the user sees the dialog
    if QApplication.instance() is None:
        return
    try:
        show_error(None, one_line_reason(exc), details)
    except Exception:  # the dialog itself failed: the console copy above must do
        sys.__excepthook__(exc_type, exc, tb)


def install_excepthook() -> None:
    sys.excepthook = _excepthook
