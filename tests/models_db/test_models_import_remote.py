"""`models import hf:ORG/REPO[@REV]` and `models import ollama:NAME:TAG` through the real
huggingface_hub client and httpx against a loopback HTTP server that replays recorded real
responses of the Hugging Face hub and the Ollama registry.

Neither service can be reached from the test machine. What each test replays is named in the
test and listed with its origin (repository, path, commit) in data/recorded/README.md:

- hub metadata (`/api/models/...`): replies recorded from huggingface.co by huggingface_hub's
  own test suite (VCR cassettes), byte for byte: the 307 redirect of the renamed
  meta-llama/Meta-Llama-3.1-8B-Instruct, the gated (`"gated": "manual"`) reply of
  meta-llama/Llama-3.1-8B-Instruct at commit 0e9e39f2, and stabilityai/stable-diffusion-2-1
  (a diffusers repo without a top-level config.json);
- Llama 3.1 8B Instruct's config.json as copied in mlc-llm's model presets;
- the registry manifest of `qwen2.5-coder:7b` as Ollama saved it after a pull.

Not recorded anywhere we could find, and therefore built in the services' documented formats
(the test says so where it uses one): the hub's error replies (401/404 with `X-Error-Code`,
the convention huggingface_hub's `hf_raise_for_status` reads), a GGUF-only repo listing, and
the GGUF bytes behind a file or blob (a real GGUF written by the official gguf package; a
recorded prefix of a multi-GB weights file is not published).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
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

RECORDED = Path(__file__).parent / "data" / "recorded"
# meta-llama/Llama-3.1-8B-Instruct at the commit the recorded metadata names ("sha")
LLAMA_SHA = "0e9e39f249a16976918f6564b8830bc894c89659"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
TOKEN = "hf_recorded_replay_token"

Reply = tuple[int, dict[str, str], bytes]
Route = Callable[["_Server"], Reply]


def recorded(name: str) -> Reply:
    """A response recorded from huggingface.co: status, the headers that matter, verbatim body."""
    rec = json.loads((RECORDED / "hf" / name).read_text(encoding="utf-8"))
    return rec["status"], dict(rec["headers"]), rec["body"].encode("utf-8")


def hub_error(status: int, code: str, message: str) -> Reply:
    """Built, not recorded: the hub's error convention (status + X-Error-Code/-Message headers,
    read by huggingface_hub.utils.hf_raise_for_status)."""
    body = json.dumps({"error": message}).encode()
    return status, {"X-Error-Code": code, "X-Error-Message": message}, body


class _Server(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, Route]] = {}
    blobs: ClassVar[dict[str, bytes]] = {}  # URL path -> bytes served with range support
    served: ClassVar[list[tuple[str, int]]] = []  # (path, bytes sent)

    def _send(self, status: int, headers: dict[str, str], body: bytes, head: bool) -> None:
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
            _Server.served.append((self.path, len(body)))

    def _handle(self, head: bool) -> None:
        path = self.path.split("?")[0]
        if path in _Server.routes:
            return self._send(*_Server.routes[path](self), head)
        if path in _Server.blobs:
            data = _Server.blobs[path]
            common = {"ETag": '"blob"', "Accept-Ranges": "bytes"}
            rng = self.headers.get("Range")
            if rng:
                start, _, end = rng.removeprefix("bytes=").partition("-")
                a, b = int(start), min(int(end), len(data) - 1)
                common["Content-Range"] = f"bytes {a}-{b}/{len(data)}"
                return self._send(206, common, data[a : b + 1], head)
            return self._send(200, common, data, head)
        if path.startswith("/v2/"):  # the registry's OCI error body (distribution spec)
            body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "not found"}]})
            return self._send(404, {"Content-Type": "application/json"}, body.encode(), head)
        self._send(*hub_error(404, "EntryNotFound", "Entry not found"), head)

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve(monkeypatch) -> Iterator[Callable[[dict[str, Route], dict[str, bytes]], str]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(routes: dict[str, Route], blobs: dict[str, bytes]) -> str:
        _Server.routes, _Server.blobs, _Server.served = routes, blobs, []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}"

    # a header spanning several ranges: start small so the doubling is exercised
    monkeypatch.setattr(remote_gguf, "FIRST_RANGE", 4096)
    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _gated_file(body: bytes) -> Route:
    """A file of a gated repo: served only to a request carrying a token, as the hub does.
    Without one the hub answers 401 + GatedRepo (built: no recorded refusal was found)."""

    def route(handler: _Server) -> Reply:
        if handler.headers.get("Authorization") == f"Bearer {TOKEN}":
            return 200, {"Content-Type": "application/json", "X-Repo-Commit": LLAMA_SHA}, body
        return hub_error(
            401,
            "GatedRepo",
            f"Access to model {LLAMA} is restricted. You must have access to it and be "
            "authenticated to access it. Please log in.",
        )

    return route


@pytest.fixture
def hub(serve, monkeypatch, tmp_path, tiny_gguf_bytes) -> str:
    llama_info = recorded("api_models_meta-llama_Llama-3.1-8B-Instruct.json")
    config = (RECORDED / "hf" / "meta-llama_Llama-3.1-8B-Instruct.config.json").read_bytes()
    gguf_listing = {  # built: no recorded listing of a GGUF-only repo was found
        "id": "test-org/tiny-GGUF",
        "sha": "3f1c0a9e5b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e",
        "createdAt": "2025-04-29T03:41:00.000Z",
        "private": False,
        "gated": False,
        "cardData": {"license": "mit"},
        "siblings": [{"rfilename": f} for f in ("README.md", "tiny-F16.gguf", "tiny-Q8_0.gguf")],
    }
    routes: dict[str, Route] = {
        # recorded: the old name redirects to the new one (relative Location)
        "/api/models/meta-llama/Meta-Llama-3.1-8B-Instruct": lambda _h: recorded(
            "api_models_meta-llama_Meta-Llama-3.1-8B-Instruct.json"
        ),
        # recorded: gated "manual"; metadata is public, files need an accepted token
        f"/api/models/{LLAMA}": lambda _h: llama_info,
        # the revision endpoint returns the same document for the commit the reply names
        f"/api/models/{LLAMA}/revision/{LLAMA_SHA}": lambda _h: llama_info,
        f"/{LLAMA}/resolve/{LLAMA_SHA}/config.json": _gated_file(config),
        # recorded: a diffusers repo, no top-level config.json and no GGUF
        "/api/models/stabilityai/stable-diffusion-2-1": lambda _h: recorded(
            "api_models_stabilityai_stable-diffusion-2-1.json"
        ),
        # built (hub error convention)
        "/api/models/test-org/missing": lambda _h: hub_error(
            401, "RepoNotFound", "Repository not found"
        ),
        f"/api/models/{LLAMA}/revision/nope": lambda _h: hub_error(
            404, "RevisionNotFound", "Invalid rev id: nope"
        ),
        "/api/models/test-org/tiny-GGUF": lambda _h: (
            200,
            {"Content-Type": "application/json"},
            json.dumps(gguf_listing).encode(),
        ),
    }
    blobs = {f"/test-org/tiny-GGUF/resolve/{gguf_listing['sha']}/tiny-Q8_0.gguf": tiny_gguf_bytes}
    url = serve(routes, blobs)
    monkeypatch.setenv("HF_ENDPOINT", url)
    # only the token a test sets: none from the environment or a stored login
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    return url


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


def test_hf_renamed_gated_repo_with_token(hub, monkeypatch):
    """Replays the recorded 307 of meta-llama/Meta-Llama-3.1-8B-Instruct and the recorded gated
    metadata of meta-llama/Llama-3.1-8B-Instruct; config.json (mlc-llm's copy) is served to
    the token the user logged in with."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    messages: list[str] = []
    spec = import_hf_repo("hf:meta-llama/Meta-Llama-3.1-8B-Instruct", progress=messages.append)
    catalog = load_models().get("llama-3.1-8b")
    assert (spec.n_layers, spec.hidden_size, spec.n_kv_heads) == (32, 4096, 8)
    assert abs(spec.params_total - catalog.params_total) <= 500_000
    assert spec.max_context == 131072 and spec.vocab_size == 128256
    # the hub's answers, not ours: the new repo id, its commit, licence and creation date
    assert spec.hf_repo == LLAMA and spec.origin == "import:hf"
    assert spec.license == "llama3.1" and spec.release_date == "2024-07-18"
    assert LLAMA_SHA in spec.source and spec.extra["source_commit"] == f"{LLAMA}@{LLAMA_SHA}"
    assert "license" not in spec.extra["unknown"]
    assert any("now names it" in m for m in messages)
    assert any("config.json" in m for m in messages)


def test_hf_gated_repo_without_token_is_one_clear_line(hub):
    """Recorded gated metadata; the file request without a token gets the hub's 401 GatedRepo."""
    with pytest.raises(DataError) as err:
        import_hf_repo(f"hf:{LLAMA}")
    assert "gated repository" in str(err.value) and LLAMA in str(err.value)
    assert "\n" not in str(err.value)


def test_hf_revision_is_pinned(hub, monkeypatch):
    """The recorded metadata served for /revision/<its own sha>."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    spec = import_hf_repo(f"hf:{LLAMA}@{LLAMA_SHA}")
    assert spec.n_layers == 32 and spec.extra["source_commit"].endswith(LLAMA_SHA)
    paths = [p for p, _ in _Server.served]
    assert f"/api/models/{LLAMA}/revision/{LLAMA_SHA}" in paths


def test_hf_repo_without_config_or_gguf(hub):
    """Replays the recorded metadata of stabilityai/stable-diffusion-2-1 (diffusers layout)."""
    with pytest.raises(DataError) as err:
        import_hf_repo("hf:stabilityai/stable-diffusion-2-1")
    assert "no config.json and no .gguf file" in str(err.value)
    assert "\n" not in str(err.value)


def test_hf_gguf_repo_reads_only_the_header(hub, tiny_gguf_bytes):
    """Built listing (no recorded GGUF-only repo listing was found) and a gguf-package GGUF."""
    messages: list[str] = []
    spec = import_hf_repo("hf:test-org/tiny-GGUF", progress=messages.append)
    gguf_reads = [n for p, n in _Server.served if p.endswith(".gguf")]
    # doubling from 4 KiB: several ranges, together well below the file
    assert len(gguf_reads) >= 2 and sum(gguf_reads) < len(tiny_gguf_bytes)
    assert spec.n_layers == 2 and spec.gguf_file_type == "Q8_0"
    assert spec.tensors and spec.license == "mit"
    assert "tiny-Q8_0.gguf" in spec.source
    assert any("header only" in m for m in messages)


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("hf:test-org/missing", "not found, or private"),
        (f"hf:{LLAMA}@nope", "no such revision"),
    ],
)
def test_hf_refusals_are_one_clear_line(hub, ref, words):
    """Built error replies in the hub's convention (RepoNotFound, RevisionNotFound)."""
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


def test_cli_import_hf_saves_to_user_db(hub, monkeypatch, capsys):
    """Recorded redirect + gated metadata, with a token: saved to the user database."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(["models", "import", "hf:meta-llama/Meta-Llama-3.1-8B-Instruct", "--json"]) == 0
    out, err = capsys.readouterr()
    reply = json.loads(out)
    assert reply["saved"] and reply["model"]["hf_repo"] == LLAMA
    assert "config.json" in err  # progress on stderr
    assert main(["models", "show", reply["saved_as"], "--json"]) == 0


def test_cli_import_gated_exits_2_with_one_line(hub, capsys):
    assert main(["models", "import", f"hf:{LLAMA}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "gated repository" in err[-1]


# --- Ollama registry ------------------------------------------------------------------------

MANIFEST = RECORDED / "ollama" / "library_qwen2.5-coder_7b.manifest.json"


@pytest.fixture
def registry(serve, monkeypatch, tiny_gguf_bytes) -> str:
    manifest = MANIFEST.read_bytes()
    model = json.loads(manifest)["layers"][0]
    media = {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}
    routes: dict[str, Route] = {
        "/v2/library/qwen2.5-coder/manifests/7b": lambda _h: (200, media, manifest),
    }
    # the recorded manifest's model layer is a 4.7 GB blob; its bytes are stood in for by the
    # gguf-package GGUF (the licence blob was not recorded: the registry answers 404 here)
    blobs = {f"/v2/library/qwen2.5-coder/blobs/{model['digest']}": tiny_gguf_bytes}
    url = serve(routes, blobs)
    monkeypatch.setenv("FORGEPLANNER_OLLAMA_REGISTRY", url)
    return url


def test_ollama_registry_manifest_and_header(registry, tiny_gguf_bytes):
    """Replays the recorded qwen2.5-coder:7b manifest (model, system, template, licence
    layers); the model blob is read by range requests only."""
    messages: list[str] = []
    spec = import_ollama_registry("ollama:qwen2.5-coder:7b", progress=messages.append)
    reads = [n for p, n in _Server.served if "/blobs/" in p and n > 100]
    assert len(reads) >= 2 and sum(reads) < len(tiny_gguf_bytes)
    assert spec.n_layers == 2 and spec.origin == "import:ollama" and spec.id == "qwen2.5-coder-7b"
    digest = "sha256:60e05f2100071479f596b964f89f510f057ce397ea22f2833a0cfe029bfc2463"
    assert digest in spec.source and spec.extra["source_commit"].endswith(digest)
    # the licence layer could not be read: the licence stays unknown, with its reason
    assert spec.license == "" and spec.extra["unknown"].get("license")
    assert "manifest 7b" in spec.source and any("manifest" in m for m in messages)


def test_ollama_registry_missing_tag(registry):
    """The registry's OCI error body (MANIFEST_UNKNOWN) for an unknown tag."""
    with pytest.raises(DataError) as err:
        import_ollama_registry("ollama:qwen2.5-coder:nope")
    assert "no such model or tag" in str(err.value)
    assert "ollama:qwen2.5-coder:nope" in str(err.value)


def test_cli_import_ollama_registry(registry, capsys):
    assert main(["models", "import", "ollama:qwen2.5-coder:7b", "--no-save", "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert reply["model"]["n_layers"] == 2 and reply["saved"] is False
