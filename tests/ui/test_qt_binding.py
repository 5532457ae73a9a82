"""Guard against a broken Qt binding: PySide6 6.12.0 returns `True` from SignalInstance.emit()
without a reference, so on Python 3.11 (where True is not immortal) a few thousand emits abort
the process with "bool_dealloc: deallocating True or False". pyproject excludes 6.12.0; this
test catches the next release that does the same."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(object)


def test_emit_keeps_reference_counts_of_singletons(qapp):
    e = _Emitter()
    e.fired.connect(lambda v: None)
    before = {name: sys.getrefcount(obj) for name, obj in (("True", True), ("None", None))}
    for _ in range(200):
        e.fired.emit(None)
    after = {name: sys.getrefcount(obj) for name, obj in (("True", True), ("None", None))}
    # a correct binding leaves them unchanged (allow a little noise from the interpreter)
    assert abs(after["True"] - before["True"]) < 20, (before, after)
    assert abs(after["None"] - before["None"]) < 20, (before, after)
