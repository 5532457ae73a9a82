"""Fixtures for the model-database tests: real GGUF files written with the gguf package."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFValueType, GGUFWriter

from forgeplanner.bench.synthetic_gguf import SyntheticShape, write_synthetic_gguf

TINY = SyntheticShape(
    n_layers=2,
    hidden_size=64,
    intermediate_size=128,
    n_heads=4,
    n_kv_heads=2,
    vocab_size=300,
    context_length=256,
    name="tiny-llama",
)


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid 2-layer llama GGUF (Q8_0, GQA, untied) with an SPM tokenizer; ~60 KB."""
    return write_synthetic_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", TINY, "Q8_0", 7)


@pytest.fixture(scope="session")
def tiny_gguf_bytes(tiny_gguf: Path) -> bytes:
    return tiny_gguf.read_bytes()


MetaWriter = Callable[..., Path]


def write_meta_gguf(
    path: Path,
    arch: str,
    kv: dict[str, Any],
    tensors: Sequence[tuple[str, tuple[int, ...]]] = (("token_embd.weight", (8, 32)),),
) -> Path:
    """A GGUF with the given metadata and small F32 tensors (numpy shapes)."""
    w = GGUFWriter(path, arch)
    for key, value in kv.items():
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value) if value < 2**32 else w.add_uint64(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        elif isinstance(value, str):
            w.add_string(key, value)
        elif isinstance(value, list):
            w.add_array(key, value)
        else:
            raise TypeError(key)
    for name, shape in tensors:
        w.add_tensor(name, np.zeros(shape, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def meta_gguf(tmp_path: Path) -> MetaWriter:
    def make(arch: str, kv: dict[str, Any], tensors=None, name: str = "m.gguf") -> Path:
        if tensors is None:
            return write_meta_gguf(tmp_path / name, arch, kv)
        return write_meta_gguf(tmp_path / name, arch, kv, tensors)

    return make


OLLAMA_LLAMA = Path(__file__).parent / "data" / "ollama" / "show_llama3.1-8b.json"


# --- a loopback HTTP server replaying Ollama /api/show replies (Ollama cannot run here) -----


class _Replay(BaseHTTPRequestHandler):
    replies: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Replay.requests.append({"path": self.path, "body": body})
        reply = _Replay.replies.get(body.get("model", "")) if self.path == "/api/show" else None
        if reply is None:
            payload, status = json.dumps({"error": f"model '{body.get('model')}' not found"}), 404
            reply = payload.encode()
        else:
            status = 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ollama_url() -> Iterator[str]:
    _Replay.replies = {"llama3.1:8b": OLLAMA_LLAMA.read_bytes()}
    _Replay.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Replay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def ollama_requests() -> list[dict]:
    """The requests the replay server received (JSON bodies), in order."""
    return _Replay.requests


REPLAY = _Replay

__all__ = ["REPLAY", "TINY", "GGMLQuantizationType", "GGUFValueType", "write_meta_gguf"]
