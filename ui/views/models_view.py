"""Models: the model database (shipped + imported) with filters, a fit badge per model for a
chosen machine, row actions (Open in Fit, Recommend hardware, Add to plan), and import of a
config.json, GGUF file or Ollama /api/show JSON by file dialog or drag-and-drop.

The badge is the best quantization that fits on the chosen machine at the chosen context, from
`forgeplanner.services.models_fit` (the `models fit` command), computed in a worker."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from forgeplanner.viewstate.fit import context_presets
from forgeplanner.viewstate.vocabulary import (
    THIS_MACHINE,
    THIS_MACHINE_NAME,
    machine_choices,
    use_choices,
    verdict_word,
)
from ui import persist, theme
from ui.context import AppContext
from ui.errors import show_error
from ui.frames import models_frame
from ui.model_actions import ModelActions
from ui.model_import import (
    ImportProgress,
    ImportResult,
    import_model_job,
    import_ollama_job,
    user_models,
)
from ui.pickers import MachinePicker
from ui.table_model import Column, DataFrameTableModel, make_proxy
from ui.widgets import after_first_paint, configure_table, fit_columns
from ui.workers import Recompute, WorkerError, start_worker

DEFAULT_MACHINE = "mac-mini-m4-pro-20c-64gb"
DEFAULT_CONTEXT = 8192


def _fit_background(row: dict[str, Any], key: str) -> Any:
    if key != "fit" or not row.get("fit_verdict"):
        return None
    return theme.verdict_tint(row["fit_verdict"])


COLUMNS = [
    Column("id", "Id"),
    Column(
        "fit",
        "Fit on the machine",
        tooltip="the best quantization that fits on the machine chosen above, at its context",
        missing="",
    ),
    Column("family", "Family"),
    Column("params_b", "Params", lambda v: f"{v:,.1f} B", "total parameters (all experts)"),
    Column("active_b", "Active", lambda v: f"{v:,.1f} B", "parameters read per token (MoE)"),
    Column("experts", "Experts", tooltip="experts used per token / experts"),
    Column("layers", "Layers", lambda v: str(int(v))),
    Column("max_context", "Context", lambda v: f"{int(v):,}", "maximum context in tokens"),
    Column("attention", "Attention"),
    Column("license", "Licence"),
    Column("uses", "Use", tooltip="chat, code, reasoning: from the publisher's name and card"),
    Column("origin", "Origin"),
    Column("name", "Name"),
]

FILE_FILTER = "Model descriptions (*.gguf *.json);;GGUF (*.gguf);;JSON (*.json);;All files (*)"


class ModelsView(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self._workers: list[Any] = []
        self.model = DataFrameTableModel(
            COLUMNS, key_column="id", background=_fit_background, parent=self
        )
        self._fits: dict[str, tuple[str, str | None]] = {}  # id -> (verdict, best quant)
        self.proxy = make_proxy(self.model, self)

        self.search = QLineEdit(placeholderText="Filter: id, family, name...")
        self.search.setClearButtonEnabled(True)
        self.family = QComboBox()
        # filled after the first show (deferred fill): size to the items whenever they change
        self.family.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.moe = QComboBox()
        for label, value in (("Dense and MoE", None), ("Dense only", False), ("MoE only", True)):
            self.moe.addItem(label, value)
        self.min_size = QDoubleSpinBox(prefix="size >= ", suffix=" B", decimals=1)
        self.min_size.setRange(0, 2000)
        self.max_size = QDoubleSpinBox(prefix="size <= ", suffix=" B", decimals=1)
        self.max_size.setRange(0, 2000)
        self.max_size.setValue(2000)
        self.min_context = QSpinBox(prefix="context >= ", singleStep=4096)
        self.min_context.setRange(0, 10_000_000)
        self.licence = QComboBox()
        self.licence.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.licence.setMinimumContentsLength(16)
        self.open_only = QCheckBox("Open licence only")
        self.open_only.setToolTip("Apache-2.0 or MIT")
        self.use_combo = QComboBox()
        for label, value in use_choices():
            self.use_combo.addItem(label, value)
        self.fit_machine = MachinePicker()
        self.fit_machine.set_machines(
            [(THIS_MACHINE_NAME, THIS_MACHINE), *machine_choices(ctx.catalog)],
            keep=DEFAULT_MACHINE,
        )
        self.fit_machine.setMinimumContentsLength(16)
        self.fit_context = QComboBox()
        for label, n in context_presets(None):
            self.fit_context.addItem(label, n)
        self.fit_context.setCurrentIndex(self.fit_context.findData(DEFAULT_CONTEXT))
        self.fit_status = QLabel()
        self.import_button = QPushButton("Import model...")
        self.import_button.setToolTip(
            "Import a config.json, a .gguf file or an Ollama /api/show JSON (or drop it here)"
        )
        self.ollama_button = QPushButton("From Ollama...")
        self.ollama_button.setToolTip("Import a model from a running Ollama (localhost by default)")
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setVisible(False)
        self.progress.setMaximumWidth(160)
        self.count = QLabel()

        bar1 = QHBoxLayout()
        bar1.addWidget(self.search, 2)
        bar1.addWidget(self.family)
        bar1.addWidget(self.licence)
        bar1.addWidget(self.moe)
        bar1.addStretch(1)
        bar1.addWidget(self.progress)
        bar1.addWidget(self.import_button)
        bar1.addWidget(self.ollama_button)
        bar2 = QHBoxLayout()
        bar2.addWidget(self.use_combo)
        bar2.addWidget(self.min_size)
        bar2.addWidget(self.max_size)
        bar2.addWidget(self.min_context)
        bar2.addWidget(self.open_only)
        bar2.addStretch(1)
        bar2.addWidget(self.count)
        bar3 = QHBoxLayout()
        bar3.addWidget(QLabel("Fit on"))
        bar3.addWidget(self.fit_machine, 2)
        bar3.addWidget(QLabel("at"))
        bar3.addWidget(self.fit_context)
        bar3.addWidget(self.fit_status, 1)

        self.table = QTableView()
        self.table.setObjectName("modelsTable")
        self.table.setModel(self.proxy)
        configure_table(self.table)
        self.detail = QTextBrowser()
        self.detail.setObjectName("modelDetail")
        self.hint = QLabel("Drop a config.json, .gguf or Ollama /api/show JSON here to import it.")
        self.hint.setEnabled(False)  # palette's disabled text: a quiet hint in light and dark

        self.actions = ModelActions(self, self.table, self._current)
        table_box = QWidget()
        tl = QVBoxLayout(table_box)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.table, 1)
        tl.addLayout(self.actions.layout())
        self.split = QSplitter(Qt.Orientation.Vertical)
        self.split.addWidget(table_box)
        self.split.addWidget(self.detail)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(bar1)
        layout.addLayout(bar2)
        layout.addLayout(bar3)
        layout.addWidget(self.split, 1)
        layout.addWidget(self.hint)

        self.search.textChanged.connect(self.proxy.setFilterFixedString)
        self.search.textChanged.connect(self._update_count)
        for combo in (self.family, self.moe, self.licence):
            combo.currentIndexChanged.connect(self._apply_filters)
        for spin in (self.min_size, self.max_size, self.min_context):
            spin.valueChanged.connect(self._apply_filters)
        self.open_only.toggled.connect(self._apply_filters)
        self.use_combo.currentIndexChanged.connect(self._apply_filters)
        self.import_button.clicked.connect(self._choose_file)
        self.ollama_button.clicked.connect(self._ask_ollama)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self._loading = True
        self._select_after_refresh: str | None = None
        persist.skip(self.fit_machine)
        persist.restore(self, "models")
        self._widths_restored = persist.has_state(self.table, "models")
        self._badges = Recompute(
            self, self._prepare_badges, self._show_badges, delay_ms=200, pool=ctx.pool,
            on_error=lambda err: self.fit_status.setText(f"Fit not computed: {err.reason}"),
        )  # fmt: skip
        self.fit_machine.picked.connect(lambda _k: self._badges.schedule())
        self.fit_context.currentIndexChanged.connect(self._badges.schedule)
        # Fill the table on the next event-loop pass, after the page's first paint.
        after_first_paint(self, self._first_fill)

    def _first_fill(self) -> None:
        # The model database is read and the table's frame and cells prepared in a worker;
        # the GUI thread only swaps them in.
        ctx, model = self.ctx, self.model

        def job(token):
            yield "models"
            return model.prepare(models_frame(ctx.all_models()))

        def done(prepared: Any) -> None:
            self._loading = False
            self._refresh(prepared=prepared)
            self.ctx.models_changed.connect(self._on_models_changed)
            self._load_user_models()
            self._badges.run_now()

        def failed(err: WorkerError) -> None:
            self._loading = False
            show_error(self, err.reason, err.details)

        self._workers.append(
            start_worker(self.ctx.pool, job, on_result=done, on_error=failed, owner=self)
        )

    def _on_models_changed(self) -> None:
        select, self._select_after_refresh = self._select_after_refresh, None
        self._refresh(select=select)

    def busy(self) -> bool:
        return self._loading or self._badges.busy()

    # -- fit badges ------------------------------------------------------------------------------
    def _prepare_badges(self) -> Any:
        machine = self.fit_machine.key() or DEFAULT_MACHINE
        context = int(self.fit_context.currentData() or DEFAULT_CONTEXT)
        models = list(self.ctx.all_models())
        catalog = self.ctx.catalog
        self.fit_status.setText("computing...")

        def work(token: Any) -> Any:
            from forgeplanner.host import host_from_chip, host_this_machine
            from forgeplanner.services.models_fit import fit_models

            if machine == THIS_MACHINE:
                host = host_this_machine()
            else:
                cfg = catalog.configs[machine]
                host = host_from_chip(catalog.chips[cfg.chip_id], cfg.memory_gb, config=cfg)
            result = fit_models(models, host, context=context, cancelled=lambda: token.cancelled)
            return machine, context, {m.model_id: (m.verdict, m.best_quant) for m in result.models}

        return work

    def _show_badges(self, payload: Any) -> None:
        _machine, context, fits = payload
        self._fits = fits
        self._fit_context_used = context
        n = sum(1 for v, _ in fits.values() if v == "fits")
        self.fit_status.setText(f"{n} of {len(fits)} models fit without raising the GPU limit")
        self._refresh(select=self._selected_id())

    def _badge_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            verdict, quant = self._fits.get(r["id"], (None, None))
            text = None
            if verdict is not None:
                text = verdict_word(verdict, short=True) + (f" · {quant}" if quant else "")
            out.append({**r, "fit": text, "fit_verdict": verdict, "fit_quant": quant})
        return out

    def _selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.row_key(self.proxy.mapToSource(rows[0]).row())

    def _current(self) -> tuple[str, str | None, str | None, int | None] | None:
        model_id = self._selected_id()
        if model_id is None:
            return None
        _verdict, quant = self._fits.get(model_id, (None, None))
        context = int(self.fit_context.currentData() or DEFAULT_CONTEXT)
        return model_id, self.fit_machine.key(), quant, context

    # -- data ----------------------------------------------------------------------------------
    def all_models(self) -> list[Any]:
        return self.ctx.all_models()

    def _load_user_models(self) -> None:
        def job(token):
            yield "store"
            return user_models()

        def done(models: list[Any]) -> None:
            self.ctx.add_user_models(models)

        def failed(err: WorkerError) -> None:
            # The shipped database still works; say why imported models are missing.
            self.ctx.status(f"Your imported models could not be read: {err.reason}", 0)

        self._workers.append(
            start_worker(self.ctx.pool, job, on_result=done, on_error=failed, owner=self)
        )

    def _refresh(self, select: str | None = None, prepared: Any = None) -> None:
        if prepared is None or self._fits:
            rows = prepared.records if prepared is not None else models_frame(self.all_models())
            prepared = self.model.prepare(self._badge_rows(rows))
        rows = prepared.records
        self.model.set_frame(prepared)
        self._fill_combo(
            self.family, "All families", sorted({r["family"] for r in rows if r.get("family")})
        )
        self._fill_combo(
            self.licence, "All licences", sorted({r["license"] for r in rows if r.get("license")})
        )
        if not self._widths_restored:
            fit_columns(self.table, self.model, max_width=240)
        self._apply_filters()
        if select is not None:
            self.select(select)
        elif not self.table.selectionModel().hasSelection() and self.proxy.rowCount():
            self.table.selectRow(0)

    @staticmethod
    def _fill_combo(combo: QComboBox, all_label: str, values: list[str]) -> None:
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(all_label, None)
        for v in values:
            combo.addItem(v, v)
        i = combo.findData(current) if current is not None else 0
        combo.setCurrentIndex(max(i, 0))
        combo.blockSignals(False)

    def _apply_filters(self) -> None:
        p = self.proxy
        fam = self.family.currentData()
        p.set_predicate("family", None if fam is None else (lambda r, f=fam: r["family"] == f))
        lic = self.licence.currentData()
        p.set_predicate("licence", None if lic is None else (lambda r, x=lic: r["license"] == x))
        moe = self.moe.currentData()
        p.set_predicate("moe", None if moe is None else (lambda r, m=moe: bool(r["moe"]) == m))
        lo, hi = self.min_size.value(), self.max_size.value()
        p.set_predicate(
            "size",
            None
            if lo == 0 and hi >= 2000
            else (lambda r: r["params_b"] is not None and lo <= r["params_b"] <= hi),
        )
        ctx = self.min_context.value()
        p.set_predicate(
            "context",
            None
            if ctx == 0
            else (lambda r: r["max_context"] is not None and r["max_context"] >= ctx),
        )
        p.set_predicate(
            "open",
            (lambda r: (r["license"] or "").lower() in {"apache-2.0", "apache 2.0", "mit"})
            if self.open_only.isChecked()
            else None,
        )
        use = self.use_combo.currentData()
        p.set_predicate("use", None if use is None else (lambda r, u=use: u in (r["uses"] or "")))
        self._update_count()

    def _update_count(self) -> None:
        self.count.setText(f"{self.proxy.rowCount()} of {self.model.rowCount()} models")

    def select(self, model_id: str) -> bool:
        for r in range(self.proxy.rowCount()):
            src = self.proxy.mapToSource(self.proxy.index(r, 0))
            if self.model.row_key(src.row()) == model_id:
                self.table.selectRow(r)
                self.table.scrollTo(self.proxy.index(r, 0))
                return True
        return False

    def _on_selection(self, *_: Any) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        key = self.model.row_key(self.proxy.mapToSource(rows[0]).row())
        spec = next((m for m in self.all_models() if m.id == key), None)
        if spec is not None:
            self.detail.setHtml(model_html(spec))

    # -- import --------------------------------------------------------------------------------
    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a model", "", FILE_FILTER)
        if path:
            self.import_path(path)

    def _ask_ollama(self) -> None:
        from models_db.importers import DEFAULT_OLLAMA_URL

        name, ok = QInputDialog.getText(
            self, "Import from Ollama", "Model name (as in `ollama list`):", text="llama3.1:8b"
        )
        if not ok or not name.strip():
            return
        url, ok = QInputDialog.getText(
            self, "Import from Ollama", "Ollama URL:", text=DEFAULT_OLLAMA_URL
        )
        if ok and url.strip():
            self.import_ollama(name.strip(), url.strip())

    def import_path(self, path: str) -> Any:
        """Import a file in a worker; errors (the importer's one-line DataError) go to the
        error dialog."""
        return self._run_import(import_model_job(path), path)

    def import_ollama(self, model: str, url: str) -> Any:
        """Import from a running Ollama in a worker (network off the GUI thread)."""
        return self._run_import(import_ollama_job(model, url), f"{model} from {url}")

    def _run_import(self, job: Any, what: str) -> Any:
        self.progress.setVisible(True)
        self.import_button.setEnabled(False)
        self.ollama_button.setEnabled(False)
        self.ctx.status(f"Importing {what}...", 0)

        def progress(event: ImportProgress) -> None:
            self.ctx.status(f"Importing {event.path}: {event.step}...", 0)

        def done(result: ImportResult | None) -> None:
            if result is None:
                return
            spec = result.spec
            if result.saved_as != spec.id:
                import dataclasses

                spec = dataclasses.replace(spec, id=result.saved_as)
            self._select_after_refresh = spec.id
            self.ctx.add_user_models([spec])  # -> models_changed -> _refresh
            self.ctx.status(f"Imported {spec.id} from {result.kind}", 8000)

        def failed(err: WorkerError) -> None:
            self.ctx.status("Import failed", 5000)
            show_error(self, err.reason, err.details, title="Import failed")

        def finished() -> None:
            self.progress.setVisible(False)
            self.import_button.setEnabled(True)
            self.ollama_button.setEnabled(True)

        worker = start_worker(
            self.ctx.pool,
            job,
            on_progress=progress,
            on_result=done,
            on_error=failed,
            on_finished=finished,
            owner=self,
        )
        self._workers.append(worker)
        return worker

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.import_path(url.toLocalFile())
        event.acceptProposedAction()

    def changeEvent(self, event: QEvent) -> None:
        """Light/dark switch: re-derive the greyed "unknown" colour from the new palette."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.model.frame() is not None:
            self.model.set_frame(self.model.frame())

    def shutdown(self) -> None:
        self._badges.cancel()
        for w in self._workers:
            w.cancel()


def model_html(m: Any) -> str:
    e = html.escape
    a = m.attention
    att = a.kind
    if a.kind == "sliding" and a.sliding_window:
        att += f" (window {a.sliding_window:,} on {len(a.sliding_layers)}/{m.n_layers} layers)"
    elif a.kind == "mla":
        att += f" (latent {a.mla_kv_lora_rank} + rope {a.mla_qk_rope_head_dim})"
    elif a.kind == "hybrid":
        att += f" ({len(a.attention_layers)}/{m.n_layers} layers attend)"
    moe = (
        f"{m.moe.n_experts} experts, {m.moe.experts_per_token} per token, "
        f"{m.moe.shared_experts} shared"
        if m.moe
        else "dense"
    )
    rows = [
        ("Parameters", f"{m.params_total:,}"),
        ("Active per token", f"{m.active_params:,}"),
        ("Layers / hidden", f"{m.n_layers} / {m.hidden_size:,}"),
        ("Heads / KV heads / head dim", f"{m.n_heads} / {m.n_kv_heads} / {m.head_dim}"),
        ("Vocabulary", f"{m.vocab_size:,} (tied embeddings: {m.tie_word_embeddings})"),
        ("Max context", f"{m.max_context:,}" if m.max_context else "unknown"),
        ("Attention", att),
        ("Experts", moe),
        ("Licence", m.license or "unknown"),
        ("Weights available", ", ".join(m.formats)),
        ("Origin", m.origin),
    ]
    body = "".join(f"<tr><td><b>{e(k)}</b></td><td>{e(v)}</td></tr>" for k, v in rows)
    return (
        f"<h3>{e(m.name)} <code>{e(m.id)}</code></h3><table cellpadding='2'>{body}</table>"
        f"<p><b>Source:</b> {e(m.source)}</p>" + (f"<p>{e(m.notes)}</p>" if m.notes else "")
    )


def create_view(ctx: AppContext) -> QWidget:
    return ModelsView(ctx)
