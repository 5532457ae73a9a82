"""Small shared widget helpers."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView


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
