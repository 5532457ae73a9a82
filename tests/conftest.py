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


@pytest.fixture(scope="session")
def llamacpp_bin():
    """The directory holding real llama.cpp tools (llama-bench, ggml-rpc-server,
    llama-fit-params). Found on PATH/cache, else built once from the llama-cpp-python sdist
    (about 8 minutes on 2 cores; cached across runs). A failed build fails the test: these
    tests check real llama.cpp and must not silently skip in CI."""
    from forgeplanner.bench.llamacpp_tools import TOOLS, build_llamacpp_tools, find_llamacpp_tool

    found = [find_llamacpp_tool(t) for t in TOOLS]
    if all(found) and len({p.parent for p in found if p}) == 1:
        return found[0].parent  # type: ignore[union-attr]
    return build_llamacpp_tools(log=lambda msg: print(f"[llama.cpp tools] {msg}"))
