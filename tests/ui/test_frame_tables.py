"""FrameTable (DataFrame model + sort/filter proxy behind a QTableView) and the Cluster,
Platform and Benchmarks tables built on it: qtmodeltester over every model and proxy, frame
order kept until a header is clicked, cells prepared in a worker thread equal to cells
prepared in the GUI thread."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import wait_idle
from ui.table_model import RAW_ROLE, Column, FrameTable

COLUMNS = [
    Column("name", "node"),
    Column("total", "total GiB", lambda v: f"{v / 2**30:.1f}"),
    Column("stage_s", "stage ms", lambda v: f"{v * 1e3:.1f}"),
]


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["mini-b", "mini-a", "studio"],
            "total": [40 * 2**30, 12 * 2**30, 100 * 2**30],
            "stage_s": [0.012, None, 0.004],
        }
    )


def test_frame_table_keeps_frame_order_until_a_header_is_clicked(qtbot, qtmodeltester):
    table = FrameTable(COLUMNS)
    qtbot.addWidget(table)
    table.set_frame(frame())
    assert table.rowCount() == 3
    assert [table.item(r, 0).text() for r in range(3)] == ["mini-b", "mini-a", "studio"]
    assert table.item(0, 1).text() == "40.0"
    assert table.item(1, 2).text() == "unknown"  # missing figure, greyed, sorts last
    table.sortByColumn(1, Qt.SortOrder.DescendingOrder)  # what a header click does
    assert [table.item(r, 0).text() for r in range(3)] == ["studio", "mini-b", "mini-a"]
    assert table.proxy.index(0, 1).data(RAW_ROLE) == 100 * 2**30  # raw bytes sort
    table.sortByColumn(2, Qt.SortOrder.AscendingOrder)
    assert [table.item(r, 0).text() for r in range(3)] == ["studio", "mini-b", "mini-a"]
    table.selectRow(0)
    assert table.selected_source_rows() == [2]
    assert table.item(5, 0) is None
    qtmodeltester.check(table.source)
    qtmodeltester.check(table.proxy)


def test_cells_prepared_in_a_worker_thread_match(qtbot):
    table = FrameTable(COLUMNS)
    qtbot.addWidget(table)
    out: list = []
    worker = threading.Thread(target=lambda: out.append(table.source.prepare(frame())))
    worker.start()
    worker.join(10)
    table.set_frame(out[0])
    from_worker = [[table.item(r, c).text() for c in range(3)] for r in range(3)]
    table.set_frame(frame())
    assert from_worker == [[table.item(r, c).text() for c in range(3)] for r in range(3)]


@pytest.fixture
def small_ctx(qapp):
    from ui.context import AppContext

    ctx = AppContext(max_threads=1)
    yield ctx
    ctx.pool.waitForDone(10000)


def test_cluster_node_table_models(qtbot, qtmodeltester, small_ctx):
    from ui.views.cluster_view import create_view

    view = create_view(small_ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.result is not None or view.error is not None, timeout=20000)
    assert view.error is None
    nodes = view.result.plan.nodes
    assert view.node_model.rowCount() == len(nodes) == 2
    col = view.node_model.column_index("total_bytes")
    assert view.node_table.item(0, col).text() == f"{nodes[0].total_bytes / 2**30:.1f}"
    verdict = view.node_model.column_index("verdict")
    assert view.node_table.item(0, verdict).background() is not None  # tinted by verdict
    qtmodeltester.check(view.node_model)
    qtmodeltester.check(view.node_table.proxy)
    view.shutdown()


def test_platform_tables_models(qtbot, qtmodeltester, small_ctx):
    from ui.views.platform_view import create_view

    view = create_view(small_ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.result is not None or view.error is not None, timeout=20000)
    assert view.error is None
    lay = view.result.layout
    assert view.node_model.rowCount() == len(lay.nodes)
    assert view.assign_model.rowCount() == len(lay.assignments) + len(lay.unplaced)
    by_name = {
        view.node_table.item(r, 0).text(): view.node_table.item(r, 4).text()
        for r in range(view.node_table.rowCount())
    }
    assert by_name == {n.name: f"{n.cpu_request_millicores}m" for n in lay.nodes}
    for model in (view.node_model, view.assign_model):
        qtmodeltester.check(model)
    for table in (view.node_table, view.assign_table):
        qtmodeltester.check(table.proxy)
    view.shutdown()


def test_bench_history_and_sheet_models(qtbot, qtmodeltester, ctx):
    from forgeplanner.store import BenchRunRepo
    from ui.views.bench_view import create_view

    view = create_view(ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: not view.busy(), timeout=20000)
    wait_idle(qtbot, ctx)
    with ctx.store().session() as s:
        repo = BenchRunRepo(s)
        for decode in (18.0, 25.0):
            rid = repo.start(
                runner="llama.cpp",
                fingerprint={"key": "k", "hostname": "h"},
                tool_versions={},
                params={},
                estimate={"decode_tps": 20.0},
            )
            repo.finish(rid, status="ok", measured={"decode_tps": decode})
    view.refresh_history()
    assert view.history.rowCount() == 2
    decode = view.history_model.column_index("decode_tps")
    assert {view.history.item(r, decode).text() for r in range(2)} == {"18.00", "25.00"}
    prefill = view.history_model.column_index("prefill_tps")
    assert view.history.item(0, prefill).text() == ""  # not measured: blank, as before
    view.history.sortByColumn(decode, Qt.SortOrder.DescendingOrder)
    view.history.selectRow(0)  # the detail follows the sorted row, not the frame row
    assert "Decode: measured 25.00 tokens/s" in view.history_detail.toPlainText()
    for model in (view.history_model, view.lab_sheet_model):
        qtmodeltester.check(model)
    for table in (view.history, view.lab_sheet):
        qtmodeltester.check(table.proxy)
    view.shutdown()
    wait_idle(qtbot, ctx)
