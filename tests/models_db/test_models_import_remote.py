"""`models import hf:ORG/REPO[@REV]` and `models import ollama:NAME:TAG` through the real
huggingface_hub client and httpx against a loopback HTTP server.

The Hugging Face hub and the Ollama registry cannot be reached from the test machine, so the
server below answers in their formats: the hub's `/api/models/<repo>[/revision/<rev>]` JSON
(the fields huggingface_hub's ModelInfo parses: id, sha, private, gated, createdAt, cardData,
siblings), `/<repo>/resolve/<rev>/<file>` with HTTP range support, and its error convention
(401/403/404 with `X-Error-Code: RepoNotFound | GatedRepo | RevisionNotFound`); the registry's
OCI manifest (`application/vnd.ollama.image.model` / `.license` layers) and blob endpoints with
range support and OCI error bodies. The payloads are not captured from the live services; the
GGUF bytes are a real GGUF written by the official gguf package.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from forgeplanner.cli.main import main
from forgeplanner.errors import DataError, ForgePlannerError
from models_db import load_models
from models_db.importers import remote_gguf
from models_db.importers.hf_hub import import_hf_repo, parse_hf_ref
from models_db.importers.ollama_registry import import_ollama_registry, parse_ollama_ref

DATA = Path(__file__).parent / "data"
SHA = "3f1c0a9e5b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e"


class _Hub(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}  # URL path -> body
    api: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}  # API path -> reply
    served: ClassVar[list[tuple[str, int]]] = []  # (path, bytes sent)

    def _send(self, status: int, headers: dict[str, str], body: bytes, head: bool) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
            _Hub.served.append((self.path, len(body)))

    def _handle(self, head: bool) -> None:
        path = self.path.split("?")[0]
        if path in _Hub.api:
            status, headers, body = _Hub.api[path]
            return self._send(status, headers, body, head)
        if path in _Hub.files:
            data = _Hub.files[path]
            common = {"X-Repo-Commit": SHA, "ETag": '"x"', "Accept-Ranges": "bytes"}
            rng = self.headers.get("Range")
            if rng:
                start, _, end = rng.removeprefix("bytes=").partition("-")
                a, b = int(start), min(int(end), len(data) - 1)
                common["Content-Range"] = f"bytes {a}-{b}/{len(data)}"
                return self._send(206, common, data[a : b + 1], head)
            return self._send(200, common, data, head)
        body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "not found"}]})
        error = {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}
        self._send(404, error, body.encode(), head)

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _info(repo: str, files: list[str], license_: str = "apache-2.0") -> bytes:
    return json.dumps(
        {
            "_id": "6650b1a2c3d4e5f6a7b8c9d0",
            "id": repo,
            "modelId": repo,
            "author": repo.split("/")[0],
            "sha": SHA,
            "lastModified": "2025-05-21T12:00:00.000Z",
            "createdAt": "2025-04-29T03:41:00.000Z",
            "private": False,
            "disabled": False,
            "gated": False,
            "tags": ["transformers", "license:" + license_],
            "cardData": {"license": license_},
            "siblings": [{"rfilename": f} for f in files],
        }
    ).encode()


@pytest.fixture
def hub(monkeypatch, tiny_gguf_bytes) -> Iterator[str]:
    config = (DATA / "hf" / "qwen3-30b-a3b.json").read_bytes()
    ok = {"Content-Type": "application/json"}
    q3, tiny = "test-org/Qwen3-30B-A3B", "test-org/tiny-GGUF"
    tiny_files = ["tiny-Q8_0.gguf", "tiny-F16.gguf", "README.md"]

    def refusal(status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
        return status, {"X-Error-Code": code, "X-Error-Message": message}, b"{}"

    _Hub.api = {
        f"/api/models/{q3}": (200, ok, _info(q3, ["config.json", "README.md"])),
        f"/api/models/{q3}/revision/{SHA}": (200, ok, _info(q3, ["config.json"])),
        f"/api/models/{tiny}": (200, ok, _info(tiny, tiny_files, "mit")),
        "/api/models/test-org/gated-model": refusal(
            403, "GatedRepo", "Access to model test-org/gated-model is restricted."
        ),
        "/api/models/test-org/missing": refusal(401, "RepoNotFound", "Repository Not Found"),
        f"/api/models/{q3}/revision/nope": refusal(404, "RevisionNotFound", "Invalid rev id: nope"),
    }
    _Hub.files = {
        f"/test-org/Qwen3-30B-A3B/resolve/{SHA}/config.json": config,
        f"/test-org/tiny-GGUF/resolve/{SHA}/tiny-Q8_0.gguf": tiny_gguf_bytes,
    }
    _Hub.served = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    # a header spanning several ranges: start small so the doubling is exercised
    monkeypatch.setattr(remote_gguf, "FIRST_RANGE", 4096)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_parse_refs():
    assert parse_hf_ref("hf:Qwen/Qwen3-8B@abc123").repo_id == "Qwen/Qwen3-8B"
    assert parse_hf_ref("hf:Qwen/Qwen3-8B@abc123").revision == "abc123"
    assert parse_hf_ref("hf:Qwen/Qwen3-8B").revision is None
    with pytest.raises(DataError):
        parse_hf_ref("hf:not a repo")
    assert parse_ollama_ref("ollama:llama3.3:70b") == ("library/llama3.3", "70b")
    assert parse_ollama_ref("ollama:qwen3") == ("library/qwen3", "latest")
    assert parse_ollama_ref("ollama:someone/model:q4") == ("someone/model", "q4")
    with pytest.raises(DataError):
        parse_ollama_ref("ollama:Bad Name")


def test_hf_config_repo(hub):
    messages: list[str] = []
    spec = import_hf_repo("hf:test-org/Qwen3-30B-A3B", progress=messages.append)
    catalog = load_models().get("qwen3-30b-a3b")
    assert spec.n_layers == catalog.n_layers and spec.moe == catalog.moe
    assert abs(spec.params_total - catalog.params_total) <= 500_000
    assert spec.hf_repo == "test-org/Qwen3-30B-A3B" and spec.origin == "import:hf"
    assert spec.license == "apache-2.0" and spec.release_date == "2025-04-29"
    assert SHA in spec.source and spec.extra["source_commit"].endswith(SHA)
    assert "unknown" in spec.extra and "license" not in spec.extra["unknown"]
    assert any("metadata" in m for m in messages) and any("config.json" in m for m in messages)


def test_hf_revision_is_pinned(hub):
    spec = import_hf_repo(f"hf:test-org/Qwen3-30B-A3B@{SHA}")
    assert spec.n_layers == 48


def test_hf_gguf_repo_reads_only_the_header(hub, tiny_gguf_bytes):
    messages: list[str] = []
    spec = import_hf_repo("hf:test-org/tiny-GGUF", progress=messages.append)
    gguf_reads = [n for p, n in _Hub.served if p.endswith(".gguf")]
    # doubling from 4 KiB: several ranges, together well below the file
    assert len(gguf_reads) >= 2 and sum(gguf_reads) < len(tiny_gguf_bytes)
    assert spec.n_layers == 2 and spec.gguf_file_type == "Q8_0"
    assert spec.tensors and spec.license == "mit"
    assert "tiny-Q8_0.gguf" in spec.source
    assert any("header only" in m for m in messages)


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("hf:test-org/gated-model", "gated repository"),
        ("hf:test-org/missing", "not found, or private"),
        ("hf:test-org/Qwen3-30B-A3B@nope", "no such revision"),
    ],
)
def test_hf_refusals_are_one_clear_line(hub, ref, words):
    with pytest.raises(DataError) as err:
        import_hf_repo(ref)
    assert words in str(err.value) and ref.split("@")[0] in str(err.value)
    assert "\n" not in str(err.value)


def test_hf_unreachable_endpoint(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused
    with pytest.raises(ForgePlannerError) as err:
        import_hf_repo("hf:test-org/anything")
    assert "cannot reach http://127.0.0.1:9" in str(err.value)
    assert "hf:test-org/anything" in str(err.value)


def test_cli_import_hf_saves_to_user_db(hub, capsys):
    assert main(["models", "import", "hf:test-org/Qwen3-30B-A3B", "--json"]) == 0
    out, err = capsys.readouterr()
    reply = json.loads(out)
    assert reply["saved"] and reply["model"]["hf_repo"] == "test-org/Qwen3-30B-A3B"
    assert "config.json" in err  # progress on stderr
    assert main(["models", "show", reply["saved_as"], "--json"]) == 0


def test_cli_import_gated_exits_2_with_one_line(hub, capsys):
    assert main(["models", "import", "hf:test-org/gated-model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "gated repository" in err[-1]


# --- Ollama registry ------------------------------------------------------------------------


@pytest.fixture
def registry(monkeypatch, tiny_gguf_bytes) -> Iterator[str]:
    model_digest = "sha256:" + hashlib.sha256(tiny_gguf_bytes).hexdigest()
    license_text = b"Tiny Test Licence 1.0\n\nPermission is granted...\n"
    license_digest = "sha256:" + hashlib.sha256(license_text).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": "sha256:" + "1" * 64,
            "size": 485,
        },
        "layers": [
            {
                "mediaType": "application/vnd.ollama.image.model",
                "digest": model_digest,
                "size": len(tiny_gguf_bytes),
            },
            {
                "mediaType": "application/vnd.ollama.image.license",
                "digest": license_digest,
                "size": len(license_text),
            },
        ],
    }
    _Hub.api = {
        "/v2/library/tiny/manifests/q8": (
            200,
            {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"},
            json.dumps(manifest).encode(),
        )
    }
    _Hub.files = {
        f"/v2/library/tiny/blobs/{model_digest}": tiny_gguf_bytes,
        f"/v2/library/tiny/blobs/{license_digest}": license_text,
    }
    _Hub.served = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("FORGEPLANNER_OLLAMA_REGISTRY", url)
    monkeypatch.setattr(remote_gguf, "FIRST_RANGE", 4096)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_ollama_registry_manifest_and_header(registry, tiny_gguf_bytes):
    messages: list[str] = []
    spec = import_ollama_registry("ollama:tiny:q8", progress=messages.append)
    reads = [n for p, n in _Hub.served if "/blobs/" in p and n > 100]
    assert sum(reads) < len(tiny_gguf_bytes)
    assert spec.n_layers == 2 and spec.origin == "import:ollama" and spec.id == "tiny-q8"
    assert spec.license == "Tiny Test Licence 1.0"
    assert "manifest q8" in spec.source and any("manifest" in m for m in messages)


def test_ollama_registry_missing_tag(registry):
    with pytest.raises(DataError) as err:
        import_ollama_registry("ollama:tiny:nope")
    assert "no such model or tag" in str(err.value) and "ollama:tiny:nope" in str(err.value)


def test_cli_import_ollama_registry(registry, capsys):
    assert main(["models", "import", "ollama:tiny:q8", "--no-save", "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["model"]["n_layers"] == 2 and reply["saved"] is False
