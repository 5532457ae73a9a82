"""A read-only table model over prepared rows, and its sort/filter proxy.

The rows (a list of dicts, or a pandas DataFrame where a caller already has one) hold *raw*
values (bytes as ints, prices as floats, None/NaN for unknown). Each column has a `Column`
spec with a formatter for display, so sorting uses the raw value (under `SORT_ROLE`) while
people read formatted text. Unknown values display as "unknown" in the
disabled text colour and always sort last, whichever way the column is sorted.

Display strings are formatted once per replace (not per paint): tables of a few thousand rows
then scroll and sort without formatting work in the GUI thread.

The views hand in plain lists of dicts: pandas (with pyarrow, which it imports when installed)
costs about half a second to import, which the app's start-up does not pay for a table.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QTableView

from ui import theme

SORT_ROLE = Qt.ItemDataRole.UserRole
RAW_ROLE = Qt.ItemDataRole.UserRole + 1  # the raw value, None when unknown
KNOWN_ROLE = Qt.ItemDataRole.UserRole + 2  # False when unknown
ROW_KEY_ROLE = Qt.ItemDataRole.UserRole + 3  # the row's key column value

UNKNOWN = "unknown"

AnyIndex = QModelIndex | QPersistentModelIndex


def is_unknown(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    pd = sys.modules.get("pandas")  # its missing-value markers only exist once it is imported
    return pd is not None and (value is pd.NA or value is pd.NaT)


Rows = list[dict[str, Any]]


def as_records(frame: Any) -> Rows:
    """The rows of a list of dicts (as given) or of a pandas DataFrame (its records)."""
    if frame is None:
        return []
    if hasattr(frame, "to_dict") and hasattr(frame, "columns"):
        return frame.to_dict("records")
    return frame if isinstance(frame, list) else list(frame)


@dataclass(frozen=True)
class Column:
    key: str  # DataFrame column
    title: str
    fmt: Callable[[Any], str] | None = None  # raw -> display text; None = str()
    tooltip: str = ""
    align_right: bool | None = None  # None: numbers right, text left
    missing: str = UNKNOWN  # text for a missing value ("unknown", or e.g. "none fits")


@dataclass(frozen=True)
class PreparedFrame:
    """A frame's cells as the model serves them (see `DataFrameTableModel.prepare`)."""

    frame: Any  # what was given: a list of dicts or a DataFrame
    records: Rows  # the rows as dicts (every key, also the ones not shown)
    raw: list[list[Any]]
    known: list[list[bool]]
    text: list[list[str]]
    sort: list[list[Any]]
    numeric: list[bool]
    keys: list[Any]


def prepare_frame(
    columns: Sequence[Column], frame: Any, key_column: str | None = None
) -> PreparedFrame:
    records = as_records(frame)
    raw = [[None if is_unknown(v := rec.get(c.key)) else v for c in columns] for rec in records]
    text = [
        [DataFrameTableModel._format(c, v) for c, v in zip(columns, row, strict=True)]
        for row in raw
    ]
    numeric = []
    for i in range(len(columns)):
        values = [row[i] for row in raw if row[i] is not None]
        numeric.append(bool(values) and all(isinstance(v, int | float) for v in values))
    if key_column:
        keys = [rec.get(key_column) for rec in records]
    else:
        keys = list(range(len(records)))
    return PreparedFrame(
        frame=frame,
        records=records,
        raw=raw,
        known=[[v is not None for v in row] for row in raw],
        text=text,
        sort=[[DataFrameTableModel._sort_value(v) for v in row] for row in raw],
        numeric=numeric,
        keys=keys,
    )


class DataFrameTableModel(QAbstractTableModel):
    """Columns are chosen and titled by `columns`; other keys of the rows stay available to
    the view (e.g. a hidden id) through `row_dict()`. (The name is historical: it takes a list
    of dicts or a DataFrame.)"""

    def __init__(
        self,
        columns: Sequence[Column],
        frame: Any = None,
        key_column: str | None = None,
        background: Callable[[dict[str, Any], str], QColor | None] | None = None,
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        self._columns = list(columns)
        self._key_column = key_column
        self._background = background
        self._frame: Any = None
        self._records: Rows = []
        self._raw: list[list[Any]] = []
        self._text: list[list[str]] = []
        self._known: list[list[bool]] = []
        self._sort: list[list[Any]] = []
        self._keys: list[Any] = []
        self._bg: list[list[QColor | None]] = []
        self._numeric: list[bool] = [False] * len(self._columns)
        self._muted = theme.muted_text()
        if frame is not None:
            self._load(frame)

    # -- data replacement ----------------------------------------------------------------------
    def set_frame(self, frame: Any) -> None:
        """Replace the data: a DataFrame, or a `PreparedFrame` made by `prepare` in a worker."""
        self.beginResetModel()
        self._load(frame)
        self.endResetModel()

    def frame(self) -> Any:
        return self._frame

    def set_columns(self, columns: Sequence[Column]) -> None:
        """New column specs (titles that carry an input, e.g. "Decode at 16K"); the rows are
        prepared again for them."""
        self.beginResetModel()
        self._columns = list(columns)
        self._load(self._records if self._frame is not None else [])
        self.endResetModel()

    def records(self) -> Rows:
        """Every row as a dict, in frame order."""
        return self._records

    def prepare(self, frame: Any) -> PreparedFrame:
        """Everything `set_frame` derives from `frame` except the background colours: raw,
        display, sort and known values per cell. Pure Python over this model's column specs,
        no Qt: call it in the worker that built the frame, then hand the result to
        `set_frame` so the GUI thread only swaps lists in."""
        return prepare_frame(self._columns, frame, self._key_column)

    def _load(self, frame: Any) -> None:
        prepared = frame if isinstance(frame, PreparedFrame) else self.prepare(frame)
        self._frame = prepared.frame
        self._records = prepared.records
        self._raw = prepared.raw
        self._known = prepared.known
        self._text = prepared.text
        self._numeric = prepared.numeric
        self._sort = prepared.sort
        self._keys = prepared.keys
        self._bg = []
        if self._background is not None:
            self._bg = [
                [self._background(rec, c.key) for c in self._columns] for rec in prepared.records
            ]
        self._muted = theme.muted_text()

    @staticmethod
    def _format(col: Column, value: Any) -> str:
        if value is None:
            return col.missing
        if col.fmt is not None:
            return col.fmt(value)
        return str(value)

    @staticmethod
    def _sort_value(value: Any) -> Any:
        # Sorting is done by the proxy's lessThan (unknowns last both ways); the role exposes
        # the raw value, with text sorted case-insensitively.
        if isinstance(value, str):
            return value.casefold()
        return value

    # -- Qt model API --------------------------------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._raw)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._columns)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        r, c = index.row(), index.column()
        if r >= len(self._raw) or c >= len(self._columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text[r][c]
        if role == SORT_ROLE:
            return self._sort[r][c]
        if role == RAW_ROLE:
            return self._raw[r][c]
        if role == KNOWN_ROLE:
            return self._known[r][c]
        if role == ROW_KEY_ROLE:
            return self._keys[r]
        if role == Qt.ItemDataRole.ForegroundRole:
            # Grey only for "unknown" (a missing fact), not for a meaningful "none fits".
            if self._known[r][c] or self._columns[c].missing != UNKNOWN:
                return None
            return self._muted
        if role == Qt.ItemDataRole.BackgroundRole:
            return self._bg[r][c] if self._bg else None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            right = self._columns[c].align_right
            if right is None:
                right = self._numeric[c]
            h = Qt.AlignmentFlag.AlignRight if right else Qt.AlignmentFlag.AlignLeft
            return int(h | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = self._columns[c].tooltip
            if not self._known[r][c] and self._columns[c].missing == UNKNOWN:
                return "unknown: no sourced figure" + (f"\n{tip}" if tip else "")
            return tip or None
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal:
            if not 0 <= section < len(self._columns):
                return None
            if role == Qt.ItemDataRole.DisplayRole:
                return self._columns[section].title
            if role == Qt.ItemDataRole.ToolTipRole:
                return self._columns[section].tooltip or None
            return None
        if role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self._raw):
            return str(section + 1)
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # -- helpers for views ---------------------------------------------------------------------
    def columns(self) -> list[Column]:
        return list(self._columns)

    def column_index(self, key: str) -> int:
        for i, c in enumerate(self._columns):
            if c.key == key:
                return i
        raise KeyError(key)

    def column_texts(self, column: int) -> list[str]:
        """Display texts of one column (for sizing columns without querying every cell)."""
        return [row[column] for row in self._text]

    def row_key(self, row: int) -> Any:
        return self._keys[row]

    def row_values(self, row: int) -> dict[str, Any]:
        """The row's keys with the shown columns' unknowns as None (what filters test)."""
        out = dict(self._records[row])
        for c, v in zip(self._columns, self._raw[row], strict=True):
            out[c.key] = v
        return out

    def row_dict(self, row: int) -> dict[str, Any]:
        """Every key of the row (also the ones not shown)."""
        return dict(self._records[row])


class TableFilterProxy(QSortFilterProxyModel):
    """Sorting by raw value with unknowns last in both directions; filtering by free text over
    the displayed columns plus any number of named predicates over the raw row."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setSortRole(SORT_ROLE)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterKeyColumn(-1)
        self._predicates: dict[str, Callable[[dict[str, Any]], bool]] = {}

    def set_predicate(self, name: str, predicate: Callable[[dict[str, Any]], bool] | None) -> None:
        """Add, replace or (None) remove a row filter over the row's raw values."""
        # Qt >= 6.9 wants begin/endFilterChange around the change; older Qt invalidates.
        new_api = hasattr(self, "beginFilterChange")
        if new_api:
            self.beginFilterChange()
        if predicate is None:
            self._predicates.pop(name, None)
        else:
            self._predicates[name] = predicate
        if new_api:
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateRowsFilter()

    def lessThan(self, left: AnyIndex, right: AnyIndex) -> bool:
        a = left.data(SORT_ROLE)
        b = right.data(SORT_ROLE)
        asc = self.sortOrder() == Qt.SortOrder.AscendingOrder
        if a is None or b is None:
            if a is None and b is None:
                return False
            # Unknown sorts last whatever the order: Qt reverses lessThan for descending.
            return (b is None) if asc else (a is None)
        try:
            return bool(a < b)
        except TypeError:
            return str(a) < str(b)

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        model = self.sourceModel()
        if self._predicates and isinstance(model, DataFrameTableModel):
            raw = model.row_values(source_row)
            for pred in self._predicates.values():
                if not pred(raw):
                    return False
        return super().filterAcceptsRow(source_row, source_parent)


def make_proxy(model: DataFrameTableModel, parent: Any = None) -> TableFilterProxy:
    proxy = TableFilterProxy(parent)
    proxy.setSourceModel(model)
    return proxy


class CellText:
    """One cell as shown (view order): what `QTableWidget.item(r, c)` gave views and tests,
    read from the proxy instead of being stored in items."""

    __slots__ = ("_background", "_text")

    def __init__(self, text: str, background: Any) -> None:
        self._text = text
        self._background = background

    def text(self) -> str:
        return self._text

    def background(self) -> Any:
        return self._background


class FrameTable(QTableView):
    """A read-only QTableView over a `DataFrameTableModel` behind a `TableFilterProxy`.

    `set_frame` swaps in prepared data in one model reset. The rows stay in the frame's order
    (e.g. llama.cpp device order) until the user clicks a header to sort. `rowCount()` and
    `item(row, column).text()` read the table in view order, like the QTableWidget these
    tables replaced."""

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        key_column: str | None = None,
        background: Callable[[dict[str, Any], str], QColor | None] | None = None,
        sortable: bool = True,
        parent: Any = None,
    ) -> None:
        super().__init__(parent)
        self.source = DataFrameTableModel(
            columns, key_column=key_column, background=background, parent=self
        )
        self.proxy = make_proxy(self.source, self)
        self.setModel(self.proxy)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(False)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setStretchLastSection(True)
        if sortable:
            # No sort column yet: frame order until a header is clicked.
            self.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
            self.setSortingEnabled(True)

    def set_frame(self, frame: Any) -> None:
        self.source.set_frame(frame)
        self._fit_columns()

    def _fit_columns(self, max_width: int = 360) -> None:
        # From the model's prepared texts and the font metrics: no per-cell model calls.
        fm = self.fontMetrics()
        header_fm = self.horizontalHeader().fontMetrics()
        pad = fm.horizontalAdvance("M") + 8
        for c in range(self.source.columnCount()):
            title = str(self.source.headerData(c, Qt.Orientation.Horizontal) or "")
            widest = header_fm.horizontalAdvance(title) + pad + 16  # room for the sort arrow
            for text in set(self.source.column_texts(c)):
                widest = max(widest, fm.horizontalAdvance(text) + pad)
            self.setColumnWidth(c, min(widest, max_width))

    def rowCount(self) -> int:
        return self.proxy.rowCount()

    def item(self, row: int, column: int) -> CellText | None:
        index = self.proxy.index(row, column)
        if not index.isValid():
            return None
        return CellText(
            index.data(Qt.ItemDataRole.DisplayRole) or "",
            index.data(Qt.ItemDataRole.BackgroundRole),
        )

    def source_row(self, row: int) -> int:
        """The frame row shown at view row `row`."""
        return self.proxy.mapToSource(self.proxy.index(row, 0)).row()

    def selected_source_rows(self) -> list[int]:
        model = self.selectionModel()
        if model is None:
            return []
        return sorted({self.proxy.mapToSource(i).row() for i in model.selectedRows()})
