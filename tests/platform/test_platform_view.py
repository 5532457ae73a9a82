"""Platform view offscreen (pytest-qt): roles, placement, power, manifests and export."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from forgeplanner.platform.manifests import K8S_VERSION
from ui.context import AppContext
from ui.views.platform_view import PlatformView, create_view


@pytest.fixture
def view(qtbot):
    ctx = AppContext(max_threads=1)
    v = create_view(ctx)
    qtbot.addWidget(v)
    qtbot.waitUntil(lambda: v.result is not None or v.error is not None, timeout=20000)
    yield v
    v.shutdown()
    ctx.pool.waitForDone(5000)


def test_default_shelf(view: PlatformView):
    assert view.error is None
    lay = view.result.layout
    assert view.node_table.rowCount() == len(lay.nodes) == 5
    roles = {view.node_table.item(r, 0).text(): view.node_table.item(r, 2).text()
             for r in range(5)}  # fmt: skip
    assert roles["studio"] == "inference"
    assert roles["mini-1"] == "control-plane"  # the strongest Intel mini (i7, 32 GB)
    assert "telemetry" in roles.values()
    assert "shelf power" in view.summary_label.text()
    assert view.assign_table.rowCount() == len(lay.assignments)
    assert "curl -sfL https://get.k3s.io" in view.commands_text.toPlainText()


def test_manifest_preview_is_valid_yaml(view: PlatformView):
    assert view.file_combo.count() == len(view.result.files)
    for i in range(view.file_combo.count()):
        view.file_combo.setCurrentIndex(i)
        for doc in yaml.safe_load_all(view.manifest_text.toPlainText()):
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_export_writes_the_files(view: PlatformView, tmp_path):
    written = view.export_to(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(view.result.files)


def test_removing_nodes_reports_unplaced(qtbot, view: PlatformView):
    first = view.result
    view.set_nodes([("solo", "mac-mini-2018-i7-32gb")])
    qtbot.waitUntil(lambda: view.result is not first, timeout=20000)
    assert view.result.layout.unplaced
    assert "unplaced" in view.summary_label.text()


def test_layout_goes_into_the_plan(qtbot, view: PlatformView):
    with qtbot.waitSignal(view.ctx.plan.plan_changed, timeout=60000):
        view.add_to_plan()
    platform = view.ctx.plan.plan.build.platform
    assert platform is not None and len(platform.inputs["nodes"]) == 5
    # the default shelf names machines, not roles: placement picks the control plane
    assert {n["name"] for n in platform.result["nodes"]} == {"mini-1", "mini-2", "mini-3",
                                                              "mini-4", "studio"}  # fmt: skip
