"""A missing llama.cpp tool says how to get it ("a missing binary ... gives a clear
message with how to install or start it")."""

from __future__ import annotations

import pytest

from forgeplanner.bench.llamacpp import (
    LlamaBenchError,
    LlamaBenchSpec,
    RpcEndpoint,
    run_llamacpp,
)
from forgeplanner.bench.llamacpp_tools import INSTALL_HINT


def test_rpc_run_without_llama_bench_says_how_to_install_it(tmp_path, monkeypatch) -> None:
    # A regression: the message once said llama-bench was needed but not how to
    # get it. Nothing on PATH, an empty tools cache, no override: llama-bench is nowhere.
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("FORGEPLANNER_TOOLS_DIR", str(tmp_path / "tools"))
    monkeypatch.delenv("FORGEPLANNER_LLAMACPP_BIN", raising=False)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    spec = LlamaBenchSpec(str(model), rpc=(RpcEndpoint("127.0.0.1", 50052),))
    with pytest.raises(LlamaBenchError) as exc:
        next(run_llamacpp(spec))
    msg = str(exc.value)
    assert "RPC clusters need llama-bench" in msg
    assert INSTALL_HINT in msg and "brew install llama.cpp" in msg
    assert "\n" not in msg
