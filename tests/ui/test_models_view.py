"""Models view: the model database with filters, and imports by dialog path or drop, with the
importer's clear errors. Imports run the real importers on real files (HF config.json copies
and a GGUF written with the gguf package)."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from tests.ui.conftest import wait_idle
from ui.errors import open_error_dialogs
from ui.table_model import RAW_ROLE
from ui.views import models_view
from ui.views.models_view import ModelsView

HF_DIR = Path(__file__).resolve().parents[1] / "models_db" / "data" / "hf"


def make_view(qtbot, ctx) -> ModelsView:
    view = models_view.create_view(ctx)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: not view.busy(), timeout=10000)
    wait_idle(qtbot, ctx)
    return view


def visible(view: ModelsView, key: str) -> list:
    col = view.model.column_index(key)
    return [view.proxy.index(r, col).data(RAW_ROLE) for r in range(view.proxy.rowCount())]


def test_lists_the_database_and_passes_modeltester(qtbot, qtmodeltester, ctx):
    view = make_view(qtbot, ctx)
    assert view.model.rowCount() == len(ctx.models)
    assert set(visible(view, "id")) == set(ctx.models.ids())
    qtmodeltester.check(view.model)
    qtmodeltester.check(view.proxy)


def test_filters_family_moe_size_context_licence(qtbot, ctx):
    view = make_view(qtbot, ctx)
    view.moe.setCurrentIndex(view.moe.findData(True))
    ids = visible(view, "id")
    assert ids and all(ctx.models.get(i).moe is not None for i in ids)
    view.moe.setCurrentIndex(view.moe.findData(False))
    assert all(ctx.models.get(i).moe is None for i in visible(view, "id"))
    view.moe.setCurrentIndex(0)

    view.family.setCurrentIndex(view.family.findData("qwen3"))
    assert visible(view, "id") and all(
        ctx.models.get(i).family == "qwen3" for i in visible(view, "id")
    )
    view.family.setCurrentIndex(0)

    view.min_size.setValue(30)
    view.max_size.setValue(80)
    sizes = visible(view, "params_b")
    assert sizes and all(30 <= s <= 80 for s in sizes)
    view.min_size.setValue(0)
    view.max_size.setValue(2000)

    view.min_context.setValue(131072)
    ctxs = visible(view, "max_context")
    assert ctxs and all(c >= 131072 for c in ctxs)
    view.min_context.setValue(0)

    view.licence.setCurrentIndex(view.licence.findData("MIT"))
    assert visible(view, "license") and set(visible(view, "license")) == {"MIT"}


def test_selecting_shows_the_source(qtbot, ctx):
    view = make_view(qtbot, ctx)
    assert view.select("llama-3.1-8b")
    text = view.detail.toPlainText()
    spec = ctx.models.get("llama-3.1-8b")
    assert "llama-3.1-8b" in text
    assert spec.source[:40] in text


def _import(qtbot, ctx, view: ModelsView, path: Path) -> None:
    view.import_path(str(path))
    wait_idle(qtbot, ctx)


def test_import_config_json_adds_saves_and_selects(qtbot, ctx, tmp_path):
    view = make_view(qtbot, ctx)
    cfg = tmp_path / "config.json"
    cfg.write_text((HF_DIR / "mistral-7b.json").read_text())
    before = view.model.rowCount()
    _import(qtbot, ctx, view, cfg)
    assert view.model.rowCount() == before + 1
    imported = [m for m in view.all_models() if m.origin != "catalog"]
    assert len(imported) == 1
    # selected and shown
    rows = view.table.selectionModel().selectedRows()
    assert rows and view.proxy.data(rows[0]) == imported[0].id
    # saved to the user database: a fresh app (new context) lists it too
    from ui.context import AppContext

    ctx2 = AppContext()
    view2 = make_view(qtbot, ctx2)
    qtbot.waitUntil(lambda: imported[0].id in {m.id for m in view2.all_models()}, timeout=5000)
    ctx2.pool.waitForDone()


def test_import_gguf_by_drop(qtbot, ctx, tmp_path):
    from forgeplanner.bench.synthetic_gguf import SyntheticShape, write_synthetic_gguf

    shape = SyntheticShape(
        n_layers=2, hidden_size=64, intermediate_size=128, n_heads=4, n_kv_heads=2,
        vocab_size=300, context_length=256, name="tiny-drop",
    )  # fmt: skip
    gguf_path = write_synthetic_gguf(tmp_path / "tiny.gguf", shape, "Q8_0", 1)
    view = make_view(qtbot, ctx)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(gguf_path))])
    event = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime,
        Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    view.dropEvent(event)
    wait_idle(qtbot, ctx)
    imported = [m for m in view.all_models() if m.origin == "import:gguf"]
    assert len(imported) == 1
    assert imported[0].n_layers == 2
    assert imported[0].tensors  # exact tensor table from the header

    # the Fit view offers the imported model and sizes it with the engine
    from ui.views import fit_view

    fit = fit_view.create_view(ctx)
    qtbot.addWidget(fit)
    qtbot.waitUntil(lambda: not fit.busy(), timeout=10000)
    assert fit.model_picker.findData(imported[0].id) >= 0
    fit.model_picker.set_key(imported[0].id)
    wait_idle(qtbot, ctx)
    assert fit.estimate_now() is not None
    assert fit.estimate_now().model_id == imported[0].id


def test_import_error_is_a_dialog_with_the_importers_reason(qtbot, ctx, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": -3}))
    view = make_view(qtbot, ctx)
    before = view.model.rowCount()
    _import(qtbot, ctx, view, bad)
    qtbot.waitUntil(lambda: len(open_error_dialogs()) == 1)
    box = open_error_dialogs()[0]
    try:
        assert str(bad) in box.text()  # names the file
        assert "\n" not in box.text()  # one line
        assert box.windowTitle() == "Import failed"
        assert box.detailedText()
        assert view.model.rowCount() == before  # nothing half-imported
        assert view.import_button.isEnabled()
    finally:
        box.close()


def test_import_of_non_model_file_names_file_and_problem(qtbot, ctx, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_bytes(b"\x00\x01 not a model")
    view = make_view(qtbot, ctx)
    _import(qtbot, ctx, view, junk)
    qtbot.waitUntil(lambda: len(open_error_dialogs()) == 1)
    box = open_error_dialogs()[0]
    try:
        assert str(junk) in box.text()
        assert "neither GGUF nor JSON" in box.text()
    finally:
        box.close()


# A loopback server replaying a recorded real Ollama /api/show reply (Ollama cannot run here).
from tests.models_db.conftest import ollama_url  # noqa: E402, F401 (fixture)


def test_import_from_running_ollama(qtbot, ctx, ollama_url):  # noqa: F811
    view = make_view(qtbot, ctx)
    view.import_ollama("llama3.1:8b", ollama_url)
    wait_idle(qtbot, ctx)
    imported = [m for m in view.all_models() if m.origin == "import:ollama"]
    assert len(imported) == 1
    assert imported[0].n_layers == 32
    assert view.ollama_button.isEnabled()


def test_import_from_ollama_unknown_model_is_one_line_error(qtbot, ctx, ollama_url):  # noqa: F811
    view = make_view(qtbot, ctx)
    view.import_ollama("nope:1b", ollama_url)
    wait_idle(qtbot, ctx)
    qtbot.waitUntil(lambda: len(open_error_dialogs()) == 1)
    box = open_error_dialogs()[0]
    try:
        assert "nope:1b" in box.text()
        assert ollama_url in box.text()
    finally:
        box.close()
