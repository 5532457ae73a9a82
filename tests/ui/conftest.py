"""Fixtures for the GUI tests: one shared AppContext per test, views built through the shell's
`create_view(ctx)` contract, and workers drained before a test ends."""

from __future__ import annotations

import pytest

from ui.context import AppContext


@pytest.fixture
def ctx(qapp):
    c = AppContext()
    yield c
    c.pool.waitForDone(10000)
    qapp.processEvents()


def wait_idle(qtbot, ctx, timeout: int = 10000) -> None:
    """Until every worker finished and its queued signals were delivered."""
    from ui.workers import running_workers

    qtbot.waitUntil(lambda: running_workers() == 0, timeout=timeout)
