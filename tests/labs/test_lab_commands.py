"""Every command any lab prints runs, as printed (argv from shlex; `forgeplanner` as this
interpreter's module), in order, in one working directory per lab, with the exit code the lab
says it ends with.

What cannot run on this Linux machine is served locally: the Ollama step talks to a local
server replaying recorded answers in Ollama's documented format (tests/bench/test_ollama.py),
reached through OLLAMA_HOST as Ollama's own clients do. llama-bench is the real one."""

from __future__ import annotations

import importlib.util
import os
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from forgeplanner.labs import LABS
from forgeplanner.labs.runner import run_command


def _ollama_replay():
    path = Path(__file__).parents[1] / "bench" / "test_ollama.py"
    spec = importlib.util.spec_from_file_location("recorded_ollama_replay", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    handler = mod._Replay
    handler.known_models = {*handler.known_models, "llama3.1:8b"}
    return handler


@pytest.fixture()
def ollama_host(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ollama_replay())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{server.server_address[1]}")
    yield
    server.shutdown()
    server.server_close()


@pytest.mark.slow
@pytest.mark.parametrize("lab_id", ["L-001", "L-002", "L-003"])
def test_every_printed_command_runs(lab_id, tmp_path, ollama_host, llamacpp_bin, monkeypatch):
    monkeypatch.setenv("PATH", f"{llamacpp_bin}{os.pathsep}{os.environ['PATH']}")
    ran = 0
    for step in LABS[lab_id].steps:
        for cmd in step.commands:
            res = run_command(cmd, tmp_path, timeout=1800)
            assert res["exit_code"] == cmd.expect_exit, (
                f"{lab_id} {step.id}: `{cmd.text}` -> {res['exit_code']}\n{res['output']}"
            )
            ran += 1
    assert ran == sum(len(s.commands) for s in LABS[lab_id].steps) >= 4
