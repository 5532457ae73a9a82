"""Pickers shared by the views: a model by name, id or alias, and a machine by its name.

Both are editable combo boxes with a completer that matches anywhere in a search text (the
model's id, its published name and its aliases; the machine's name and catalog id), case-
insensitively. The item shows what people read (the machine's name; the model's id and name);
the item data is the id the engine takes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QCompleter, QWidget

SEARCH_ROLE = Qt.ItemDataRole.UserRole + 20


def model_aliases(spec: Any) -> tuple[str, ...]:
    """The names people type for a model, when the database has them."""
    return tuple(getattr(spec, "aliases", ()) or ())


def model_label(spec: Any) -> str:
    name = getattr(spec, "name", "") or ""
    label = spec.id if not name or name.lower() == spec.id.lower() else f"{spec.id} · {name}"
    if getattr(spec, "origin", "catalog") != "catalog":
        label += "  (imported)"
    return label


class _Picker(QComboBox):
    """Editable combo: completion by any part of the search text; an unknown typed text
    reverts to the current item (and `unknown_text` says what was typed)."""

    picked = Signal(str)  # the id now chosen (also after typing a name and pressing Enter)
    unknown_text = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(22)
        self._items = QStandardItemModel(self)
        self.setModel(self._items)
        self._filter = QSortFilterProxyModel(self)
        self._filter.setSourceModel(self._items)
        self._filter.setFilterRole(SEARCH_ROLE)
        self._filter.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer = QCompleter(self)
        completer.setModel(self._items)
        completer.setCompletionRole(SEARCH_ROLE)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        # The popup lists what people read; matching uses the search text.
        completer.activated[QModelIndex].connect(self._completed)
        self.setCompleter(completer)
        self.currentIndexChanged.connect(self._index_changed)
        self.lineEdit().editingFinished.connect(self._typed)
        self._last = -1

    def _add(self, label: str, key: str, search: str, tooltip: str = "") -> None:
        item = QStandardItem(label)
        item.setData(key, Qt.ItemDataRole.UserRole)
        item.setData(search.lower(), SEARCH_ROLE)
        if tooltip:
            item.setToolTip(tooltip)
        self._items.appendRow(item)

    def _completed(self, index: Any) -> None:
        key = index.data(Qt.ItemDataRole.UserRole)
        self.set_key(key)
        self.lineEdit().setText(self.currentText())

    def _index_changed(self, i: int) -> None:
        if i >= 0 and i != self._last:
            self._last = i
            self.lineEdit().setCursorPosition(0)
            self.picked.emit(str(self.currentData()))

    def _typed(self) -> None:
        text = self.lineEdit().text().strip()
        if not text or (self.currentIndex() >= 0 and text == self.itemText(self.currentIndex())):
            return
        key = self.resolve(text)
        if key is None:
            self.unknown_text.emit(text)
            self.lineEdit().setText(self.currentText())
            return
        self.set_key(key)

    def resolve(self, text: str) -> str | None:
        """The id of the one item whose id, label or alias is `text` (case-insensitive), or the
        only item whose search text contains it."""
        t = text.strip().lower()
        contains: list[str] = []
        for row in range(self._items.rowCount()):
            item = self._items.item(row)
            key = str(item.data(Qt.ItemDataRole.UserRole))
            words = str(item.data(SEARCH_ROLE)).split("\n")
            if t == key.lower() or t == item.text().lower() or t in words:
                return key
            if t in str(item.data(SEARCH_ROLE)):
                contains.append(key)
        return contains[0] if len(contains) == 1 else None

    def key(self) -> str | None:
        data = self.currentData()
        return None if data is None else str(data)

    def set_key(self, key: str | None) -> bool:
        i = self.findData(key)
        if i < 0:
            return False
        if i != self.currentIndex():
            self.setCurrentIndex(i)
        return True

    def matches(self, text: str) -> list[str]:
        """Ids whose search text contains `text` (what the completer offers)."""
        self._filter.setFilterFixedString(text.lower())
        return [
            str(self._filter.index(r, 0).data(Qt.ItemDataRole.UserRole))
            for r in range(self._filter.rowCount())
        ]


class ModelPicker(_Picker):
    def set_models(self, specs: list[Any], keep: str | None = None) -> None:
        keep = keep or self.key()
        self.blockSignals(True)
        self._items.clear()
        for m in sorted(specs, key=lambda m: m.id):
            words = [m.id, getattr(m, "name", "") or "", *model_aliases(m)]
            if getattr(m, "hf_repo", ""):
                words.append(m.hf_repo)
            self._add(model_label(m), m.id, "\n".join(words), m.name or m.id)
        self._last = -1
        i = self.findData(keep) if keep else -1
        self.setCurrentIndex(max(i, 0))
        self._last = self.currentIndex()
        self.blockSignals(False)
        self.lineEdit().setCursorPosition(0)


class MachinePicker(_Picker):
    def set_machines(self, choices: list[tuple[str, str]], keep: str | None = None) -> None:
        """(name, id) pairs, e.g. from viewstate.vocabulary.machine_choices."""
        keep = keep or self.key()
        self.blockSignals(True)
        self._items.clear()
        for name, key in choices:
            self._add(name, key, f"{name}\n{key}", key)
        self._last = -1
        i = self.findData(keep) if keep else -1
        self.setCurrentIndex(max(i, 0))
        self._last = self.currentIndex()
        self.blockSignals(False)
        self.lineEdit().setCursorPosition(0)


__all__ = ["MachinePicker", "ModelPicker", "model_label"]
