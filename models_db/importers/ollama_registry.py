"""Import a model from the Ollama registry by name: `ollama:NAME[:TAG]` (no Ollama needed).

The registry speaks the OCI distribution API (ollama server/images.go pulls the same way):
`GET /v2/<namespace>/<name>/manifests/<tag>` returns a manifest whose layers name the blobs by
media type; `application/vnd.ollama.image.model` is the GGUF file, `...image.license` the
licence text. The GGUF header is read with HTTP range requests on
`GET /v2/<namespace>/<name>/blobs/<digest>` (remote_gguf), never the weights. Nothing touches
the network unless a caller asks for an `ollama:` name.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from forgeplanner.domain.model import ModelSpec
from forgeplanner.errors import DataError, ForgePlannerError
from models_db.importers._common import slugify
from models_db.importers.gguf_file import import_gguf
from models_db.importers.remote_gguf import fetch_header, parse_content_range, write_sparse

DEFAULT_REGISTRY = "https://registry.ollama.ai"
TIMEOUT_S = 30.0
MANIFEST_MEDIA = "application/vnd.docker.distribution.manifest.v2+json"
MODEL_MEDIA = "application/vnd.ollama.image.model"
LICENSE_MEDIA = "application/vnd.ollama.image.license"
MAX_SMALL_BLOB = 1024 * 1024  # licence texts and manifests are a few KB
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)?$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

Progress = Callable[[str], None]


def parse_ollama_ref(text: str) -> tuple[str, str]:
    """`ollama:NAME[:TAG]` -> (namespace/name, tag); library models get the `library/` namespace."""
    raw = text.strip()
    body = raw[7:] if raw.lower().startswith("ollama:") else raw
    name, _, tag = body.partition(":")
    tag = tag or "latest"
    if not _NAME.match(name) or not _TAG.match(tag):
        raise DataError(raw, "(model name)", raw, "expected ollama:NAME or ollama:NAME:TAG")
    return (name if "/" in name else f"library/{name}"), tag


def _registry() -> str:
    return (os.environ.get("FORGEPLANNER_OLLAMA_REGISTRY") or DEFAULT_REGISTRY).rstrip("/")


def import_ollama_registry(
    text: str, *, model_id: str | None = None, progress: Progress | None = None
) -> ModelSpec:
    import httpx

    name, tag = parse_ollama_ref(text)
    say = progress or (lambda _m: None)
    base = f"{_registry()}/v2/{name}"
    where = f"ollama:{name.removeprefix('library/')}:{tag}"
    try:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=True) as client:
            say(f"{where}: reading the manifest from {_registry()}")
            r = client.get(f"{base}/manifests/{tag}", headers={"Accept": MANIFEST_MEDIA})
            if r.status_code in (401, 403, 404):
                raise DataError(where, "(manifest)", f"HTTP {r.status_code}", _refusal(r))
            r.raise_for_status()
            manifest = _json(where, r)
            layers = manifest.get("layers")
            if not isinstance(layers, list):
                raise DataError(where, "layers", layers, "manifest without a layer list")
            model = _layer(where, layers, MODEL_MEDIA)
            if model is None:
                raise DataError(
                    where, "layers", [x.get("mediaType") for x in layers], "no model layer"
                )
            digest = model.get("digest")
            if not isinstance(digest, str) or not _DIGEST.match(digest):
                raise DataError(where, "layers.digest", digest, "not a sha256 digest")
            url = f"{base}/blobs/{digest}"

            def fetch(start: int, end: int) -> tuple[bytes, int]:
                resp = client.get(url, headers={"Range": f"bytes={start}-{end}"})
                if resp.status_code != 206:
                    raise DataError(where, "Range", f"HTTP {resp.status_code}", "no range support")
                return resp.content, parse_content_range(resp.headers.get("Content-Range"), url)

            say(f"{where}: reading the GGUF header of blob {digest[7:19]}")
            prefix, total = fetch_header(where, fetch, say)
            license_text = None
            lic = _layer(where, layers, LICENSE_MEDIA)
            if lic is not None and isinstance(lic.get("digest"), str):
                resp = client.get(f"{base}/blobs/{lic['digest']}")
                if resp.status_code == 200 and len(resp.content) <= MAX_SMALL_BLOB:
                    license_text = resp.text
    except httpx.HTTPError as exc:
        raise ForgePlannerError(f"{where}: cannot reach {_registry()} ({exc})") from None
    with tempfile.TemporaryDirectory(prefix="forgeplanner-ollama-") as tmp:
        spec = import_gguf(write_sparse(Path(tmp) / "model.gguf", prefix, total), model_id)
    extra = dict(spec.extra)
    license_ = spec.license
    if not license_ and license_text and license_text.strip():
        license_ = license_text.strip().splitlines()[0][:120]
        extra["license_source"] = f"first line of the licence layer of {where}"
        unknown = dict(extra.get("unknown", {}))  # type: ignore[call-overload]
        unknown.pop("license", None)
        extra["unknown"] = unknown
    extra["source_commit"] = f"{where}@{digest}"
    return replace(
        spec,
        id=model_id or slugify(where.removeprefix("ollama:").replace(":", "-")),
        name=where.removeprefix("ollama:"),
        license=license_,
        source=f"{_registry()}/v2/{name} manifest {tag}, model blob {digest} (header only)",
        origin="import:ollama",
        extra=extra,
    )


def _layer(where: str, layers: list[Any], media: str) -> dict[str, Any] | None:
    for layer in layers:
        if isinstance(layer, dict) and layer.get("mediaType") == media:
            return layer
    return None


def _json(where: str, response: Any) -> dict[str, Any]:
    if len(response.content) > MAX_SMALL_BLOB:
        raise DataError(where, "(manifest)", len(response.content), "too large for a manifest")
    try:
        data = response.json()
    except ValueError:
        raise DataError(where, "(manifest)", response.text[:40], "not JSON") from None
    if not isinstance(data, dict):
        raise DataError(where, "(manifest)", type(data).__name__, "expected a JSON object")
    return data


def _refusal(response: Any) -> str:
    """The registry's own error text (OCI error format: {"errors": [{"code", "message"}]})."""
    try:
        errors = response.json().get("errors") or []
        message = "; ".join(str(e.get("message") or e.get("code")) for e in errors)
    except (ValueError, AttributeError):
        message = ""
    if response.status_code == 404:
        return f"no such model or tag in the registry ({message or 'not found'})"
    return f"the registry refused access ({message or 'unauthorized'})"
