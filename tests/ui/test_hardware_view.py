"""Hardware view: every catalog configuration, sorted by raw values, unknowns visible, each
figure's source and date in the detail panel, prices from the price engine."""

from __future__ import annotations

from PySide6.QtCore import Qt

from forgeplanner.engine import prices as px
from tests.ui.conftest import wait_idle
from ui.table_model import RAW_ROLE
from ui.views import hardware_view
from ui.views.hardware_view import HardwareView


def make_view(qtbot, ctx) -> HardwareView:
    view = hardware_view.create_view(ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.model.rowCount() == len(ctx.catalog.configs), timeout=10000)
    wait_idle(qtbot, ctx)
    return view


def column_texts(view: HardwareView, key: str) -> list[str]:
    col = view.model.column_index(key)
    return [view.proxy.index(r, col).data() for r in range(view.proxy.rowCount())]


def test_lists_every_configuration_and_passes_modeltester(qtbot, qtmodeltester, ctx):
    view = make_view(qtbot, ctx)
    ids = {view.model.row_key(r) for r in range(view.model.rowCount())}
    assert ids == set(ctx.catalog.configs)
    qtmodeltester.check(view.model)
    qtmodeltester.check(view.proxy)
    assert view.count.text() == f"{len(ids)} of {len(ids)} configurations"


def test_prices_come_from_the_price_engine(qtbot, ctx):
    view = make_view(qtbot, ctx)
    cat = ctx.catalog
    obs = list(cat.price_observations)
    fit = px.fit_depreciation(cat.configs, obs, cat.chips)
    used_col = view.model.column_index("price_used_usd")
    new_col = view.model.column_index("price_new_usd")
    per_gb = view.model.column_index("usd_per_gb_new")
    checked = 0
    for r in range(view.model.rowCount()):
        cfg = cat.configs[view.model.row_key(r)]
        used = px.used_price(cfg, obs, hardware_view_today(), fit)
        new = px.new_price(cfg, hardware_view_today(), obs, fit)
        assert view.model.index(r, used_col).data(RAW_ROLE) == used.price_usd
        assert view.model.index(r, new_col).data(RAW_ROLE) == new.price_usd
        if new.price_usd is not None:
            assert view.model.index(r, per_gb).data(RAW_ROLE) == new.price_usd / cfg.memory_gb
            checked += 1
    assert checked > 10


def hardware_view_today() -> str:
    from ui.frames import today

    return today()


def test_unknown_figures_are_visibly_unknown(qtbot, ctx):
    view = make_view(qtbot, ctx)
    cat = ctx.catalog
    # every chip's bandwidth is known (the Intel minis' derived from their DDR); Apple has not
    # published the 2026 models' power figures
    col = view.model.column_index("max_w")
    unknown_rows = [
        r
        for r in range(view.model.rowCount())
        if cat.configs[view.model.row_key(r)].max_w.value is None
    ]
    assert unknown_rows, "the catalog has configurations with unknown max power"
    idx = view.model.index(unknown_rows[0], col)
    assert idx.data() == "unknown"
    assert idx.data(Qt.ItemDataRole.ForegroundRole) is not None  # greyed


def test_sorting_uses_raw_values_and_puts_unknown_last(qtbot, ctx):
    view = make_view(qtbot, ctx)
    col = view.model.column_index("price_new_usd")
    for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
        view.table.sortByColumn(col, order)
        raws = [view.proxy.index(r, col).data(RAW_ROLE) for r in range(view.proxy.rowCount())]
        known = [v for v in raws if v is not None]
        n = len(known)
        assert raws[:n] == sorted(known, reverse=order == Qt.SortOrder.DescendingOrder)
        assert all(v is None for v in raws[n:])


def test_filters(qtbot, ctx):
    view = make_view(qtbot, ctx)
    cat = ctx.catalog
    view.kind.setCurrentIndex(view.kind.findData("mac-studio"))
    ids = [view.model.row_key(view.proxy.mapToSource(view.proxy.index(r, 0)).row())
           for r in range(view.proxy.rowCount())]  # fmt: skip
    assert ids and all(cat.configs[i].kind == "mac-studio" for i in ids)
    view.min_memory.setValue(128)
    mem = [view.proxy.index(r, view.model.column_index("memory_gb")).data(RAW_ROLE)
           for r in range(view.proxy.rowCount())]  # fmt: skip
    assert mem and min(mem) >= 128
    view.kind.setCurrentIndex(0)
    view.min_memory.setValue(0)
    view.apple_only.setChecked(True)
    chips = column_texts(view, "chip")
    assert chips and not any(c.startswith("Intel") for c in chips)
    view.apple_only.setChecked(False)
    view.search.setText("m2-ultra-76c")
    assert view.proxy.rowCount() == sum(1 for i in cat.configs if "m2-ultra-76c" in i)


def test_detail_panel_shows_source_and_date_of_every_figure(qtbot, ctx):
    view = make_view(qtbot, ctx)
    cat = ctx.catalog
    cid = "mac-studio-m2-ultra-76c-192gb"
    view.search.setText(cid)
    view.table.selectRow(0)
    text = view.detail.toPlainText()
    cfg = cat.configs[cid]
    assert cid in text
    assert cfg.launch_price_usd.as_of in text
    assert cfg.max_w.source.split(" ")[0] in text
    chip = cat.chips[cfg.chip_id]
    assert chip.mem_bandwidth_gbps.source.split(" ")[0] in text
    assert "Price used" in text and "Memory bandwidth" in text


def test_detail_panel_names_unknown_with_reason(qtbot, ctx):
    view = make_view(qtbot, ctx)
    cat = ctx.catalog
    cid, reason = next(
        (c.id, c.max_w.reason) for c in cat.configs.values() if c.max_w.value is None
    )
    view.show_detail(cid)
    text = view.detail.toPlainText()
    assert "unknown" in text
    assert reason.split(";")[0][:40] in text
