"""What every view receives: shared data, the worker pool and the current plan.

Views bind to this state, not to the database: the catalog and model database are loaded once
(lazily, on first use, so `gui --view X` only pays for what X needs), the user store is opened
on first use, and the current plan lives in a `PlanDocument` whose edits go through a
`QUndoStack` and announce themselves with `plan_changed`.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack


class _SetPlanCommand(QUndoCommand):
    def __init__(self, doc: PlanDocument, old: Any, new: Any, text: str) -> None:
        super().__init__(text)
        self._doc = doc
        self._old = old
        self._new = new

    def redo(self) -> None:
        self._doc._apply(self._new)

    def undo(self) -> None:
        self._doc._apply(self._old)


class PlanDocument(QObject):
    """The current plan: an immutable value replaced as a whole on every edit.

    Every change goes through `set_plan`, which pushes an undoable command; `plan_changed`
    carries the new plan. The plan view extends its use (load/save, dirty state)
    without changing the contract views rely on: read `plan`, listen to `plan_changed`, edit
    with `set_plan(new_plan, "what changed")`.
    """

    plan_changed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._plan: Any = None
        self.undo_stack = QUndoStack(self)

    @property
    def plan(self) -> Any:
        return self._plan

    def set_plan(self, plan: Any, text: str = "Edit plan") -> None:
        if plan is self._plan:
            return
        self.undo_stack.push(_SetPlanCommand(self, self._plan, plan, text))

    def _apply(self, plan: Any) -> None:
        self._plan = plan
        self.plan_changed.emit(plan)

    # -- files and dirty state (used by ui/views/plan_view.py) ------------------------------------
    path: Any = None  # pathlib.Path of the .fplan the plan came from or was saved to

    def replace_plan(self, plan: Any, path: Any = None) -> None:
        """Start a fresh document (a new or opened plan): no undo history, clean."""
        self.path = path
        self.set_plan(plan, "Open plan")
        self.undo_stack.clear()
        self.undo_stack.setClean()

    def open(self, path: Any) -> None:
        """Read a `.fplan` (older schemas are migrated; bad files raise a one-line error)."""
        from pathlib import Path

        from forgeplanner.plan.files import read_plan

        self.replace_plan(read_plan(path), Path(path))

    def save(self, path: Any = None) -> Any:
        """Write the plan atomically to `path` (or where it came from); marks it clean."""
        from pathlib import Path

        from forgeplanner.plan.files import write_plan

        target = Path(path) if path is not None else self.path
        if target is None or self._plan is None:
            raise ValueError("no file to save to: give a path")
        write_plan(target, self._plan)
        self.path = target
        self.undo_stack.setClean()
        return target

    @property
    def is_dirty(self) -> bool:
        return not self.undo_stack.isClean()


class AppContext(QObject):
    """Shared state handed to `create_view(ctx)`."""

    status_message = Signal(str, int)  # text, timeout ms (0 = until replaced)
    models_changed = Signal()  # the user's models (imported / from the store) changed

    def __init__(self, parent: QObject | None = None, max_threads: int | None = None) -> None:
        super().__init__(parent)
        self._catalog: Any = None
        self._models: Any = None
        self._store: Any = None
        self._user_models: dict[str, Any] = {}  # id -> ModelSpec, imported or from the store
        # Views load data in workers: the first catalog / models / store use may come from
        # two threads at once, and each must be opened once.
        self._load_lock = threading.RLock()
        self.pool = QThreadPool(self)
        if max_threads is not None:
            self.pool.setMaxThreadCount(max_threads)
        self.plan = PlanDocument(self)

    # -- shared data, loaded on first use ------------------------------------------------------
    @property
    def catalog(self) -> Any:
        """`catalog.load_catalog()`, loaded once."""
        if self._catalog is None:
            with self._load_lock:
                if self._catalog is None:
                    import catalog

                    self._catalog = catalog.load_catalog()
        return self._catalog

    @property
    def models(self) -> Any:
        """`models_db.load_models()`, loaded once; `add_models` appends imported ones."""
        if self._models is None:
            with self._load_lock:
                if self._models is None:
                    import models_db

                    self._models = models_db.load_models()
        return self._models

    def user_models(self) -> list[Any]:
        return list(self._user_models.values())

    def add_user_models(self, specs: list[Any]) -> None:
        """Make imported models known to every view (Models lists them, Fit sizes them)."""
        changed = False
        for spec in specs:
            if self._user_models.get(spec.id) != spec:
                self._user_models[spec.id] = spec
                changed = True
        if changed:
            self.models_changed.emit()

    def all_models(self) -> list[Any]:
        """Shipped models first, then the user's (a user id never shadows a shipped one)."""
        shipped = list(self.models.all())
        ids = {m.id for m in shipped}
        return shipped + [m for m in self._user_models.values() if m.id not in ids]

    def model(self, model_id: str) -> Any:
        spec = self._user_models.get(model_id)
        if spec is not None and model_id not in self.models:
            return spec
        return self.models.get(model_id)

    def store(self) -> Any:
        """The user database (`forgeplanner.store`), opened on first use."""
        if self._store is None:
            with self._load_lock:
                if self._store is None:
                    from forgeplanner import store

                    opener = getattr(store, "open_store", None)
                    if opener is None:
                        raise RuntimeError("forgeplanner.store has no open_store() yet")
                    self._store = opener()
        return self._store

    def status(self, text: str, timeout_ms: int = 5000) -> None:
        self.status_message.emit(text, timeout_ms)

    def shutdown(self, timeout_ms: int = 3000) -> None:
        """Wait for workers (they were asked to cancel by their views) and close the store."""
        self.pool.waitForDone(timeout_ms)
        close = getattr(self._store, "close", None)
        if close is not None:
            close()
