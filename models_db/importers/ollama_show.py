"""Import an Ollama `/api/show` response: from a saved JSON file, or live from a running Ollama.

Ollama's `model_info` carries the model's GGUF metadata keys (`general.architecture`,
`llama.block_count`, ...), so the GGUF metadata mapping is shared with the GGUF importer. A
verbose response (REST `"verbose": true`) also lists tensors with type and shape; their exact
byte sizes follow from the ggml block layouts. The live path uses the official `ollama` client
and defaults to localhost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from gguf import GGMLQuantizationType
from gguf.constants import GGML_QUANT_SIZES

from forgeplanner.domain.model import ModelSpec, TensorInfo
from forgeplanner.errors import DataError
from models_db.importers._common import slugify
from models_db.importers.gguf_metadata import file_type_name, spec_from_gguf_metadata

DEFAULT_OLLAMA_URL = "http://localhost:11434"
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # verbose responses with token lists are a few MB
_QUANT_LEVEL = re.compile(r"^[A-Za-z0-9_]{1,24}$")


def _tensors(file: str, raw: object) -> tuple[TensorInfo, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DataError(file, "tensors", raw, "must be a list")
    out = []
    for i, t in enumerate(raw):
        if not isinstance(t, Mapping):
            raise DataError(file, f"tensors[{i}]", t, "must be an object")
        name, type_name, shape = t.get("name"), t.get("type"), t.get("shape")
        if not isinstance(name, str) or not name:
            raise DataError(file, f"tensors[{i}].name", name, "must be a non-empty string")
        try:
            qtype = GGMLQuantizationType[str(type_name)]
            block, size = GGML_QUANT_SIZES[qtype]
        except KeyError:
            raise DataError(file, f"{name}.type", type_name, "unknown ggml type") from None
        if not isinstance(shape, list) or not 1 <= len(shape) <= 4:
            raise DataError(file, f"{name}.shape", shape, "must be a list of 1-4 dimensions")
        n = 1
        for d in shape:
            if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d < 1 << 40:
                raise DataError(file, f"{name}.shape", shape, "dimensions must be integers")
            n *= d
        if shape[0] % block or n > 1 << 48:
            raise DataError(file, f"{name}.shape", shape, f"not a valid {qtype.name} tensor")
        out.append(TensorInfo(name, tuple(shape), qtype.name, n // block * size))
    return tuple(out)


def spec_from_show(
    response: Mapping[str, Any],
    *,
    file: str,
    source: str,
    model_name: str | None = None,
    model_id: str | None = None,
) -> ModelSpec:
    """Map one /api/show response (a dict) to a ModelSpec."""
    if not isinstance(response, Mapping):
        raise DataError(file, "(top level)", type(response).__name__, "expected a JSON object")
    if "error" in response and "model_info" not in response:
        raise DataError(file, "error", response["error"], "Ollama returned an error")
    info = response.get("model_info", response.get("modelinfo"))
    if not isinstance(info, Mapping) or not info:
        raise DataError(file, "model_info", info, "missing or empty (is this an /api/show reply?)")
    details = response.get("details") or {}
    if not isinstance(details, Mapping):
        raise DataError(file, "details", details, "must be an object")
    meta = {str(k): v for k, v in info.items()}
    spec = spec_from_gguf_metadata(
        meta,
        file=file,
        source=source,
        origin="import:ollama",
        tensors=_tensors(file, response.get("tensors")),
        model_id=model_id or (slugify(model_name) if model_name else None),
        fallback_name=model_name or Path(file).stem,
    )
    level = details.get("quantization_level")
    file_type = spec.gguf_file_type
    if isinstance(level, str) and _QUANT_LEVEL.match(level):
        file_type = level
    elif file_type is None:
        file_type = file_type_name(meta.get("general.file_type"))
    extra = dict(spec.extra)
    if isinstance(details.get("parameter_size"), str):
        extra["ollama_parameter_size"] = details["parameter_size"]
    license_ = spec.license
    text = response.get("license")
    if not license_ and isinstance(text, str) and text.strip():
        license_ = text.strip().splitlines()[0][:120]
        unknown = dict(extra.get("unknown", {}))  # type: ignore[call-overload]
        unknown.pop("license", None)
        extra["unknown"] = unknown
        extra["license_note"] = "first line of the license text Ollama ships with the model"
    return replace(
        spec,
        name=model_name or spec.name,
        gguf_file_type=file_type,
        license=license_,
        extra=extra,
        notes=f"Imported from an Ollama /api/show response ({spec.family}).",
    )


def import_ollama_show(source: str | Path, model_id: str | None = None) -> ModelSpec:
    """Import a saved /api/show response (JSON file)."""
    from forgeplanner import jsonio
    from forgeplanner.fileio import read_input

    path = Path(source)
    name = str(path)
    data = jsonio.loads(read_input(path, MAX_RESPONSE_BYTES, "/api/show response file"), name)
    model_name = data.get("model") if isinstance(data, dict) else None
    return spec_from_show(
        data,
        file=name,
        source=f"Ollama /api/show response file {path.resolve()}",
        model_name=model_name if isinstance(model_name, str) else None,
        model_id=model_id,
    )


def fetch_ollama_show(
    model: str, url: str = DEFAULT_OLLAMA_URL, timeout: float = 10.0
) -> dict[str, Any]:
    """Ask a running Ollama for /api/show of `model` with the official client."""
    import httpx  # the ollama client's transport: timeouts surface as httpx errors
    import ollama

    from forgeplanner.http_deadline import DeadlineTransport

    try:
        # `timeout` is the whole exchange, not each read: a trickling server cannot stall it.
        transport = DeadlineTransport(timeout, MAX_RESPONSE_BYTES)
        client = ollama.Client(host=url, timeout=timeout, transport=transport)
        response = client.show(model)
    except ollama.ResponseError as exc:
        raise DataError(url, "model", model, f"Ollama says: {exc.error}") from None
    except (httpx.HTTPError, ConnectionError, OSError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(
            url, "(connection)", url, f"cannot reach Ollama ({text}); is `ollama serve` running?"
        ) from None
    except (ValueError, TypeError, AttributeError) as exc:
        # Not JSON (JSONDecodeError), a reply pydantic refuses (ValidationError: many lines),
        # an integer past 4,300 digits: one line.
        text = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise DataError(url, "(response)", model, f"not an /api/show reply: {text}") from None
    return response.model_dump(by_alias=True, mode="json")


def import_ollama_model(
    model: str, url: str = DEFAULT_OLLAMA_URL, model_id: str | None = None
) -> ModelSpec:
    """Import `model` from a running Ollama at `url` (localhost by default)."""
    response = fetch_ollama_show(model, url)
    return spec_from_show(
        response,
        file=f"{url}/api/show",
        source=f"Ollama /api/show of {model!r} at {url}",
        model_name=model,
        model_id=model_id,
    )
