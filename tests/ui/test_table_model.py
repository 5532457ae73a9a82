"""DataFrameTableModel + TableFilterProxy: raw sort, formatted display, unknowns last."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from PySide6.QtCore import QModelIndex, Qt

from ui.table_model import (
    KNOWN_ROLE,
    RAW_ROLE,
    SORT_ROLE,
    Column,
    DataFrameTableModel,
    make_proxy,
)

COLUMNS = [
    Column("name", "Name"),
    Column("price", "Price", fmt=lambda v: f"${v:,.0f}"),
    Column("mem", "Memory", fmt=lambda v: f"{v} GB"),
]


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "name": ["beta", "Alpha", "delta", "gamma"],
            "price": [1999.0, float("nan"), 599.0, 10000.0],
            "mem": [64, 16, None, 192],
        }
    )


@pytest.fixture
def model(qapp) -> DataFrameTableModel:
    return DataFrameTableModel(COLUMNS, frame(), key_column="id")


def _column(proxy, col: int) -> list[str]:
    return [proxy.index(r, col).data() for r in range(proxy.rowCount())]


def test_model_passes_qtmodeltester(qtmodeltester, model):
    qtmodeltester.check(model)
    proxy = make_proxy(model)
    qtmodeltester.check(proxy)


def test_display_is_formatted_and_raw_is_kept(model):
    idx = model.index(0, 1)
    assert idx.data() == "$1,999"
    assert idx.data(RAW_ROLE) == 1999.0
    assert idx.data(SORT_ROLE) == 1999.0
    assert model.headerData(1, Qt.Orientation.Horizontal) == "Price"
    assert model.row_key(2) == "c"
    assert model.row_dict(2)["id"] == "c"


def test_unknown_shown_as_unknown_and_greyed(model):
    unknown = model.index(1, 1)
    assert unknown.data() == "unknown"
    assert unknown.data(RAW_ROLE) is None
    assert unknown.data(KNOWN_ROLE) is False
    assert unknown.data(Qt.ItemDataRole.ForegroundRole) is not None
    known = model.index(0, 1)
    assert known.data(Qt.ItemDataRole.ForegroundRole) is None
    assert model.index(2, 2).data() == "unknown"


def test_sort_by_raw_value_with_unknowns_last_both_ways(model):
    proxy = make_proxy(model)
    proxy.sort(1, Qt.SortOrder.AscendingOrder)
    # "$10,000" would sort before "$599" as text; raw values sort numerically.
    assert _column(proxy, 1) == ["$599", "$1,999", "$10,000", "unknown"]
    proxy.sort(1, Qt.SortOrder.DescendingOrder)
    assert _column(proxy, 1) == ["$10,000", "$1,999", "$599", "unknown"]
    proxy.sort(0, Qt.SortOrder.AscendingOrder)
    assert _column(proxy, 0) == ["Alpha", "beta", "delta", "gamma"]  # case-insensitive


def test_text_filter_and_predicates(qtmodeltester, model):
    proxy = make_proxy(model)
    proxy.setFilterFixedString("ALP")
    assert _column(proxy, 0) == ["Alpha"]
    proxy.setFilterFixedString("")
    proxy.set_predicate("big", lambda row: row["mem"] is not None and row["mem"] >= 64)
    assert sorted(_column(proxy, 0)) == ["beta", "gamma"]
    qtmodeltester.check(proxy)
    proxy.set_predicate("big", None)
    assert proxy.rowCount() == 4


def test_replace_resets_and_keeps_columns(qtbot, qtmodeltester, model):
    with qtbot.waitSignals([model.modelAboutToBeReset, model.modelReset]):
        model.set_frame(frame().iloc[:2])
    assert model.rowCount() == 2
    assert model.columnCount() == 3
    qtmodeltester.check(model)
    model.set_frame(frame().iloc[0:0])
    assert model.rowCount() == 0
    assert model.rowCount(model.index(0, 0)) == 0
    assert not model.index(5, 5).isValid()
    assert model.data(QModelIndex()) is None


def test_missing_column_is_unknown(qapp):
    m = DataFrameTableModel([Column("nope", "Nope")], frame())
    assert m.index(0, 0).data() == "unknown"
    assert math.isnan(frame()["price"][1])
