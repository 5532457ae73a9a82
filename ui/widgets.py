"""Small shared widget helpers."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget


def configure_table(table: QTableView, sortable: bool = True) -> None:
    """Compact, sortable, row-selecting table: row height from the font (high-DPI safe)."""
    table.setSortingEnabled(sortable)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)
    vh = table.verticalHeader()
    vh.setVisible(False)
    vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    vh.setDefaultSectionSize(table.fontMetrics().height() + 8)
    hh = table.horizontalHeader()
    hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    hh.setStretchLastSection(True)
    hh.setHighlightSections(False)
    if sortable:
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)


def fit_columns(table: QTableView, model: object, max_width: int = 320) -> None:
    """Size columns to their widest display text and header.

    `QTableView.resizeColumnsToContents` asks the model for every cell through Python (tens of
    ms on a few hundred rows, measured); the model already holds its display texts, so this
    measures them with the font metrics directly. Header (model) column order is used; the
    proxy keeps columns in place."""
    fm = table.fontMetrics()
    header_fm = table.horizontalHeader().fontMetrics()
    pad = fm.horizontalAdvance("M") + 8
    for c in range(model.columnCount()):  # type: ignore[attr-defined]
        title = str(model.headerData(c, Qt.Orientation.Horizontal) or "")  # type: ignore[attr-defined]
        widest = header_fm.horizontalAdvance(title) + pad + 16  # room for the sort arrow
        for text in set(model.column_texts(c)):  # type: ignore[attr-defined]
            widest = max(widest, fm.horizontalAdvance(text) + pad)
        table.setColumnWidth(c, min(widest, max_width))


# Deferred construction: how long after scheduling a later piece of a page's construction
# runs. Not 0: a zero timer can be handled in the same event-loop pass as the paint it was
# meant to follow, so the two stalls add up; 20 ms leaves the loop free to paint, take input
# and run its timers in between.
DEFER_MS = 20


def defer(owner: QObject, fn: Callable[[], None], delay_ms: int = DEFER_MS) -> None:
    """Run `fn` on a later event-loop pass (dropped if `owner` is destroyed first)."""
    QTimer.singleShot(delay_ms, owner, fn)


# A page nobody shows (a test's view, a page built off screen) is never painted: after this
# long hidden, the work waiting for its first paint runs anyway.
UNSHOWN_MS = 200


class _FirstPaint(QObject):
    def __init__(self, widget: QWidget, fn: Callable[[], None]) -> None:
        super().__init__(widget)
        self._widget = widget
        self._fn = fn
        self._done = False
        widget.installEventFilter(self)
        QTimer.singleShot(UNSHOWN_MS, self, self._if_unshown)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint and not self._done:
            self._fire()
        return False

    def _if_unshown(self) -> None:
        if not self._done and not self._widget.isVisible():
            self._fire()

    def _fire(self) -> None:
        self._done = True
        self._widget.removeEventFilter(self)
        # A later event-loop pass: the paint that triggered this finishes first.
        QTimer.singleShot(DEFER_MS, self._widget, self._fn)


def after_first_paint(widget: QWidget, fn: Callable[[], None]) -> None:
    """Run `fn` once `widget` has been painted for the first time (a page's heavy work: its
    plots, the engine's first call, its first background job), so the window shows at once
    and the numbers follow. A widget that is not shown runs `fn` after UNSHOWN_MS."""
    _FirstPaint(widget, fn)
