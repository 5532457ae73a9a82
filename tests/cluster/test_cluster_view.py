"""Cluster view offscreen (pytest-qt): the plan arrives from the worker and is drawn; machine
names, hover tooltips, and the layout goes into the plan."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QGuiApplication

from ui.context import AppContext
from ui.views.cluster_view import ClusterView, create_view

GiB = 1 << 30


@pytest.fixture
def view(qtbot):
    ctx = AppContext(max_threads=1)
    v = create_view(ctx)
    qtbot.addWidget(v)
    qtbot.waitUntil(lambda: v.result is not None or v.error is not None, timeout=20000)
    yield v
    v.shutdown()
    ctx.pool.waitForDone(5000)


def test_default_plan_is_drawn(view: ClusterView):
    assert view.error is None
    plan = view.result.plan
    assert [n.layers for n in plan.nodes] == [(0, 40), (40, 80)]
    heights = view.bars["weights"].opts["height"]
    assert heights == pytest.approx([n.weights_bytes / GiB for n in plan.nodes])
    kv_base = view.bars["kv_cache"].opts["y0"]
    assert kv_base == pytest.approx(heights)
    assert view.node_table.rowCount() == 2
    assert view.node_table.item(0, 5).text() == "Fits"
    assert view.node_table.item(0, 1).text() == "Mac mini (2024) - M4 Pro, 20-core GPU, 64 GB"
    assert view.tips.text_at(0.0, 5.0).startswith("mini-1: Mac mini (2024)")
    assert "--" not in view.speed_label.text()
    assert "decode" in view.speed_label.text()
    assert len(view.copy_buttons) == len(view.result.commands)


def test_copy_button_puts_the_command_on_the_clipboard(view: ClusterView):
    view.copy_buttons[0].click()
    assert QGuiApplication.clipboard().text() == view.result.commands[0].command


def test_editing_nodes_and_link_replans(qtbot, view: ClusterView):
    first = view.result
    view.config_picker.set_key("mac-studio-m2-ultra-76c-192gb")
    view.add_button.click()
    view.link_combo.setCurrentIndex(view.link_combo.findData("10gbe"))
    qtbot.waitUntil(lambda: view.result is not first and len(view.result.plan.nodes) == 3,
                    timeout=20000)  # fmt: skip
    plan = view.result.plan
    assert plan.link.id == "10gbe"
    assert plan.nodes[-1].config_id == "mac-studio-m2-ultra-76c-192gb"
    assert len(view.bars["weights"].opts["height"]) == 3


def test_errors_are_shown_not_raised(qtbot, view: ClusterView):
    view.mode_combo.setCurrentIndex(view.mode_combo.findData("tensor"))
    view.set_nodes(["mac-mini-m4-pro-20c-64gb"] * 3)
    qtbot.waitUntil(lambda: view.error is not None, timeout=20000)
    assert "divide by 3" in view.error
    assert "Cannot plan" in view.speed_label.text()


def test_layout_goes_into_the_plan(qtbot, view: ClusterView):
    with qtbot.waitSignal(view.ctx.plan.plan_changed, timeout=60000):
        view.add_to_plan()
    cluster = view.ctx.plan.plan.build.cluster
    assert cluster is not None and cluster.inputs["model_id"] == "llama-3.1-70b"
    assert cluster.inputs["nodes"] == [{"config_id": "mac-mini-m4-pro-20c-64gb", "count": 2}]
    assert len(cluster.result["nodes"]) == 2
