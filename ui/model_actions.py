"""Row actions on a model, shared by the Models and "Models for my Mac" views: open it in Fit,
ask Recommend for the hardware it needs, add it to the plan."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QHBoxLayout, QMenu, QPushButton, QTableView, QWidget

from forgeplanner.domain.runtime import Runtime

DEFAULT_QUANT = "Q4_K_M"
DEFAULT_CONTEXT = 8192


def open_in_fit(ctx: Any, model_id: str, machine: str | None = None, quant: str | None = None,
                context: int | None = None) -> None:  # fmt: skip
    ctx.request_view("fit", model_id=model_id, machine=machine, quant=quant, context=context)


def recommend_hardware(ctx: Any, model_id: str, context: int | None = None) -> None:
    ctx.request_view("recommend", model_id=model_id, context=context)


def add_model_to_plan(
    ctx: Any,
    model_id: str,
    quant: str | None = None,
    runtime: str = Runtime.LLAMA_CPP,
    context: int | None = None,
    parent: QWidget | None = None,
) -> Any:
    from ui.plan_edits import add_models_and_machines

    quant = quant or DEFAULT_QUANT
    context = context or DEFAULT_CONTEXT
    return add_models_and_machines(
        ctx, [], "new", [(model_id, quant, runtime, context)],
        f"Add {model_id} {quant} to the plan", parent=parent,
    )  # fmt: skip


class ModelActions:
    """Three buttons under a table and the same three in the table's context menu, acting on
    the selected row. `current()` gives (model id, machine, quant, context) for the selection,
    or None."""

    def __init__(self, owner: QWidget, table: QTableView, current: Any) -> None:
        self.owner = owner
        self.ctx = owner.ctx  # type: ignore[attr-defined]
        self.table = table
        self.current = current
        self.fit_button = QPushButton("Open in Fit")
        self.recommend_button = QPushButton("Recommend hardware")
        self.plan_button = QPushButton("Add to plan")
        self.fit_button.setToolTip("Size this model on the chosen machine in the Fit view")
        self.recommend_button.setToolTip("Which machine to buy for this model")
        self.plan_button.setToolTip("Add this model (its best quantization here) to the plan")
        self.fit_button.clicked.connect(self.open_in_fit)
        self.recommend_button.clicked.connect(self.recommend)
        self.plan_button.clicked.connect(self.add_to_plan)
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.customContextMenuRequested.connect(self._menu)
        table.doubleClicked.connect(lambda _i: self.open_in_fit())
        table.selectionModel().selectionChanged.connect(lambda *_: self.update())
        self.update()

    def layout(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(self.fit_button)
        row.addWidget(self.recommend_button)
        row.addWidget(self.plan_button)
        row.addStretch(1)
        return row

    def update(self) -> None:
        on = self.current() is not None
        for b in (self.fit_button, self.recommend_button, self.plan_button):
            b.setEnabled(on)

    def _menu(self, pos: Any) -> None:
        if self.current() is None:
            return
        menu = QMenu(self.table)
        for text, slot in (("Open in Fit", self.open_in_fit),
                           ("Recommend hardware", self.recommend),
                           ("Add to plan", self.add_to_plan)):  # fmt: skip
            action = QAction(text, menu)
            action.triggered.connect(slot)
            menu.addAction(action)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def open_in_fit(self) -> None:
        cur = self.current()
        if cur is not None:
            model_id, machine, quant, context = cur
            open_in_fit(self.ctx, model_id, machine, quant, context)

    def recommend(self) -> None:
        cur = self.current()
        if cur is not None:
            recommend_hardware(self.ctx, cur[0], cur[3])

    def add_to_plan(self) -> Any:
        cur = self.current()
        if cur is None:
            return None
        model_id, _machine, quant, context = cur
        return add_model_to_plan(self.ctx, model_id, quant, context=context, parent=self.owner)


__all__ = ["ModelActions", "add_model_to_plan", "open_in_fit", "recommend_hardware"]
