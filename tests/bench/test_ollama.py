"""Ollama runner against a loopback HTTP server.

No Ollama binary can be installed here, so the official `ollama` client talks to a small
server on 127.0.0.1 that replays responses taken from Ollama's documented API
(github.com/ollama/ollama docs/api.md: "Generate a completion" streaming example, its final
object with the nanosecond timings; "List Running Models" /api/ps example; /api/version).
The server also records the requests, so the test checks what the runner asks for.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from forgeplanner.bench.ollama_runner import (
    OllamaError,
    OllamaSpec,
    generate_request,
    parse_generate_final,
    parse_ps,
    run_ollama,
)
from forgeplanner.bench.process import free_port
from forgeplanner.bench.progress import drive
from forgeplanner.errors import DataError

# docs/api.md, Generate a completion, "Response" (stream): a partial object, then the final one.
STREAM_CHUNK = {
    "model": "llama3.2",
    "created_at": "2023-08-04T08:52:19.385406455-07:00",
    "response": "The",
    "done": False,
}
FINAL = {
    "model": "llama3.2",
    "created_at": "2023-08-04T19:22:45.499127Z",
    "response": "",
    "done": True,
    "context": [1, 2, 3],
    "total_duration": 10706818083,
    "load_duration": 6338219291,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 130079000,
    "eval_count": 259,
    "eval_duration": 4232710000,
}
# docs/api.md, List Running Models, "Response".
PS = {
    "models": [
        {
            "name": "mistral:latest",
            "model": "mistral:latest",
            "size": 5137025024,
            "digest": "2ae6f6dd7a3dd734790bbbf58b8909a606e0e7e97e94b7604e0aa7ae4490e6d8",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "llama",
                "families": ["llama"],
                "parameter_size": "7.2B",
                "quantization_level": "Q4_0",
            },
            "expires_at": "2024-06-04T14:38:31.83753-07:00",
            "size_vram": 5137025024,
        }
    ]
}


class _Replay(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []
    known_models: ClassVar[set[str]] = {"mistral", "mistral:latest"}

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _json(self, code: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/api/ps":
            self._json(200, PS)
        elif self.path == "/api/version":
            self._json(200, {"version": "0.5.1"})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, **body})
        if self.path != "/api/generate":
            self._json(404, {"error": "not found"})
            return
        if body["model"] not in self.known_models:
            self._json(404, {"error": f"model '{body['model']}' not found"})
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.end_headers()
        for _ in range(20):
            self.wfile.write((json.dumps({**STREAM_CHUNK, "model": body["model"]}) + "\n").encode())
        self.wfile.write((json.dumps({**FINAL, "model": body["model"]}) + "\n").encode())


@pytest.fixture
def ollama_url():
    _Replay.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Replay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_timings_are_nanoseconds() -> None:
    t = parse_generate_final(FINAL)
    assert t.prompt_tokens == 26 and t.gen_tokens == 259
    assert t.prompt_tps == pytest.approx(26 / 0.130079)
    assert t.gen_tps == pytest.approx(259 / 4.23271)
    assert t.load_s == pytest.approx(6.338219291)
    with pytest.raises(DataError, match="eval_duration"):
        parse_generate_final({**FINAL, "eval_duration": -5})
    with pytest.raises(DataError, match="done"):
        parse_generate_final({**FINAL, "done": False})


def test_ps_memory() -> None:
    m = parse_ps(PS, "mistral")
    assert m is not None and m["size_bytes"] == 5137025024 and m["size_vram_bytes"] == 5137025024
    assert parse_ps(PS, "llama3.1:8b") is None
    with pytest.raises(DataError):
        parse_ps({"models": "x"}, "m")


def test_requests_defeat_the_prompt_cache_and_ask_for_exact_generation() -> None:
    spec = OllamaSpec("mistral", n_gen=64)
    a, b = generate_request(spec, 1), generate_request(spec, 2)
    assert a["prompt"] != b["prompt"] and a["raw"] is True
    assert a["options"]["num_predict"] == 64 and a["options"]["temperature"] == 0


def test_run_against_the_replaying_server(ollama_url: str) -> None:
    spec = OllamaSpec("mistral", url=ollama_url, repetitions=2, n_gen=64)
    run = drive(run_ollama(spec), bar=False)
    tests = {r.test: r for r in run.results}
    assert tests["tg"].median_ts == pytest.approx(259 / 4.23271)
    assert tests["pp"].median_ts == pytest.approx(26 / 0.130079)
    assert tests["tg"].samples_ts == pytest.approx((259 / 4.23271,) * 2)
    assert run.memory is not None and run.memory["size_bytes"] == 5137025024
    assert run.version == "0.5.1"
    gens = [r for r in _Replay.requests if r["path"] == "/api/generate"]
    assert len(gens) == 3  # warm-up + 2 repetitions
    assert len({g["prompt"] for g in gens}) == 3
    assert all(g["options"]["num_predict"] == 64 and g["raw"] for g in gens)


def test_unknown_model_says_how_to_pull(ollama_url: str) -> None:
    spec = OllamaSpec("llama3.1:8b", url=ollama_url, repetitions=1)
    with pytest.raises(OllamaError, match=r"ollama pull llama3\.1:8b"):
        drive(run_ollama(spec), bar=False)


def test_unreachable_server_says_how_to_start_it() -> None:
    spec = OllamaSpec("mistral", url=f"http://127.0.0.1:{free_port()}", repetitions=1)
    with pytest.raises(OllamaError, match="ollama serve"):
        drive(run_ollama(spec), bar=False)
