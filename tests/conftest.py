"""Test-wide setup: no test touches the real user directories."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("fphome")
    monkeypatch.setenv("FORGEPLANNER_HOME", str(home))
    monkeypatch.delenv("FORGEPLANNER_DB", raising=False)
    yield home
