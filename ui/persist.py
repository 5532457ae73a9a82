"""Every view remembers its inputs, column widths, sort order, splitter positions and tabs.

`name_children(view)` names the view's widget attributes after themselves (`self.context_edit`
-> objectName "context_edit"), so a view only keeps its widgets as attributes; `restore(view,
key)` reads their state from QSettings group `views/<key>` before the view's first compute,
and `save(view, key)` writes it (the main window saves every built page when it closes). A view
whose inputs depend on each other (the Fit view's quantizations depend on model and runtime)
keeps them out with `skip(widget)` and offers `settings_values() -> dict` and
`apply_settings_values(dict)` instead.

What is stored per widget type: an editable combo box its text, a combo box its item's data
(else its text), spin boxes their value, check boxes their state, line edits their text (read-
only ones are outputs, not inputs), sliders their value, splitters and table headers Qt's own
saveState (column widths, order and the sort indicator; the table is re-sorted on restore),
tab widgets their current tab. Values that no longer fit (an item that is gone, a number out
of range) are skipped: the widget keeps its default.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QWidget,
)

_KINDS = (QComboBox, QSpinBox, QDoubleSpinBox, QCheckBox, QLineEdit, QSlider, QSplitter,
          QTableView, QTabWidget)  # fmt: skip


def name_children(view: QWidget) -> None:
    """objectName = attribute name for every remembered kind of widget held by the view."""
    for attr, value in vars(view).items():
        if isinstance(value, _KINDS) and not value.objectName():
            value.setObjectName(attr)


def _settings() -> QSettings:
    from ui.app import settings

    return settings()


def _remembered(view: QWidget) -> list[QWidget]:
    name_children(view)
    seen: set[int] = set()
    out: list[QWidget] = []
    for value in vars(view).values():
        if isinstance(value, _KINDS) and value.objectName() and id(value) not in seen:
            if getattr(value, "_persist_skip", False):
                continue
            seen.add(id(value))
            out.append(value)
    return out


def skip(widget: QWidget) -> None:
    """Never remember this widget (an output that happens to be an input type)."""
    widget._persist_skip = True  # type: ignore[attr-defined]


def save(view: QWidget, key: str, s: QSettings | None = None) -> None:
    s = s or _settings()
    s.beginGroup(f"views/{key}")
    try:
        for w in _remembered(view):
            name = w.objectName()
            value = _value(w)
            if value is not None:
                s.setValue(name, value)
        extra = getattr(view, "settings_values", None)
        if callable(extra):
            for k, v in extra().items():
                s.setValue(f"inputs/{k}", v)
    finally:
        s.endGroup()
    s.sync()


def restore(view: QWidget, key: str, s: QSettings | None = None) -> None:
    s = s or _settings()
    s.beginGroup(f"views/{key}")
    try:
        for w in _remembered(view):
            if s.contains(w.objectName()):
                _set(w, s.value(w.objectName()))
        apply = getattr(view, "apply_settings_values", None)
        s.beginGroup("inputs")
        stored = {k: s.value(k) for k in s.childKeys()}
        s.endGroup()
        if callable(apply) and stored:
            apply(stored)
    finally:
        s.endGroup()


def has_state(widget: QWidget, key: str, s: QSettings | None = None) -> bool:
    """True when the widget's state was remembered (a table keeps its restored widths
    instead of sizing its columns to the data)."""
    s = s or _settings()
    return s.contains(f"views/{key}/{widget.objectName()}")


def _value(w: QWidget) -> Any:
    if isinstance(w, QComboBox):
        if w.isEditable():
            return w.currentText()
        data = w.currentData()
        return f"data:{data}" if isinstance(data, str) else f"text:{w.currentText()}"
    if isinstance(w, QSpinBox | QDoubleSpinBox | QSlider):
        return w.value()
    if isinstance(w, QCheckBox):
        return "1" if w.isChecked() else "0"
    if isinstance(w, QLineEdit):
        return None if w.isReadOnly() else w.text()
    if isinstance(w, QSplitter):
        return w.saveState()
    if isinstance(w, QTableView):
        return w.horizontalHeader().saveState()
    if isinstance(w, QTabWidget):
        return w.currentIndex()
    return None


def _set(w: QWidget, value: Any) -> None:
    if isinstance(w, QComboBox):
        text = str(value)
        if w.isEditable():
            w.setCurrentText(text)
            return
        kind, _, rest = text.partition(":")
        i = w.findData(rest) if kind == "data" else w.findText(rest)
        if i >= 0:
            w.setCurrentIndex(i)
        return
    if isinstance(w, QSpinBox | QSlider):
        try:
            n = int(float(value))
        except (TypeError, ValueError):
            return
        if w.minimum() <= n <= w.maximum():
            w.setValue(n)
        return
    if isinstance(w, QDoubleSpinBox):
        try:
            x = float(value)
        except (TypeError, ValueError):
            return
        if w.minimum() <= x <= w.maximum():
            w.setValue(x)
        return
    if isinstance(w, QCheckBox):
        w.setChecked(str(value) in ("1", "true", "True"))
        return
    if isinstance(w, QLineEdit):
        if not w.isReadOnly():
            w.setText(str(value))
        return
    if isinstance(w, QSplitter) and isinstance(value, QByteArray):
        w.restoreState(value)
        return
    if isinstance(w, QTableView) and isinstance(value, QByteArray):
        header = w.horizontalHeader()
        if header.restoreState(value) and w.isSortingEnabled():
            section = header.sortIndicatorSection()
            if 0 <= section < header.count():
                w.sortByColumn(section, header.sortIndicatorOrder())
        return
    if isinstance(w, QTabWidget):
        try:
            i = int(value)
        except (TypeError, ValueError):
            return
        if 0 <= i < w.count():
            w.setCurrentIndex(i)


__all__ = ["has_state", "name_children", "restore", "save", "skip"]
