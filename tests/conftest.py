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


@pytest.fixture(scope="session")
def pdftotext() -> str:
    """poppler's pdftotext, to read exported PDFs back as text. Installed from the system's
    packages (poppler-utils) when missing, as CI's fresh machine lacks it; a failed install
    fails the test: the PDF content must be checked, never skipped."""
    import shutil
    import subprocess

    found = shutil.which("pdftotext")
    if found:
        return found
    apt = shutil.which("apt-get")
    assert apt, "pdftotext (poppler-utils) is needed and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "poppler-utils"]):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)
        assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr[-2000:]}"
    found = shutil.which("pdftotext")
    assert found, "poppler-utils installed but pdftotext is not on PATH"
    return found
