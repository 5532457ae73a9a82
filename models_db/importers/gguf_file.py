"""Import a local GGUF file: metadata and the exact tensor table, never the weights.

gguf.GGUFReader memory-maps the file (np.memmap, mode "r") and builds each tensor's `data` as a
lazy view; nothing here reads those views, so only header pages are ever loaded. Before the
reader sees the file, gguf_header.precheck_gguf validates every count and length in the header
(see there for why GGUFReader cannot be trusted with hostile input).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from gguf import GGUFReader, GGUFValueType

from forgeplanner.domain.model import ModelSpec, TensorInfo
from forgeplanner.errors import DataError
from models_db.importers.gguf_header import precheck_gguf
from models_db.importers.gguf_metadata import spec_from_gguf_metadata

# Arrays longer than this (token lists, merges, scores) are summarised by their length only.
MAX_ARRAY_ITEMS = 4096


def _field_value(field: Any) -> Any:
    types = field.types
    if not types:
        return None
    if types[0] == GGUFValueType.ARRAY:
        if len(field.data) > MAX_ARRAY_ITEMS or (
            len(types) > 1 and types[1] == GGUFValueType.ARRAY
        ):
            return None
        return field.contents()
    return field.contents()


def read_gguf(path: Path) -> tuple[dict[str, Any], tuple[TensorInfo, ...], int | None]:
    """(metadata, tensor infos, number of tokens in tokenizer.ggml.tokens)."""
    name = str(path)
    summary = precheck_gguf(path)
    try:
        with warnings.catch_warnings():
            # numpy overflow warnings would mean a corrupt header slipped through: make them
            # errors so they become a DataError below, not a printed warning.
            warnings.simplefilter("error")
            reader = GGUFReader(path, "r")
            meta: dict[str, Any] = {}
            n_tokens = None
            for key, field in reader.fields.items():
                if key.startswith("GGUF."):
                    continue
                if key == "tokenizer.ggml.tokens":
                    n_tokens = len(field.data)
                meta[key] = _field_value(field)
            tensors = tuple(
                TensorInfo(
                    name=t.name,
                    shape=tuple(int(d) for d in t.shape),
                    ggml_type=t.tensor_type.name,
                    n_bytes=int(t.n_bytes),  # from type size x elements, as stored
                )
                for t in reader.tensors
            )
            del reader  # drop the memory map
    except (
        ValueError,
        KeyError,
        IndexError,
        OverflowError,
        TypeError,
        RecursionError,
        UnicodeDecodeError,
        RuntimeWarning,
    ) as exc:
        raise DataError(
            name, "(header)", type(exc).__name__, f"GGUFReader refused it: {exc}"
        ) from None
    for t in tensors:
        if summary.tensor_bytes.get(t.name) != t.n_bytes:
            raise DataError(name, f"{t.name}.n_bytes", t.n_bytes, "disagrees with the header walk")
    return meta, tensors, n_tokens


def import_gguf(path: str | Path, model_id: str | None = None) -> ModelSpec:
    """Read a GGUF file's metadata and tensor table into a ModelSpec (DataError on bad input)."""
    path = Path(path)
    meta, tensors, n_tokens = read_gguf(path)
    size = path.stat().st_size
    return spec_from_gguf_metadata(
        meta,
        file=str(path),
        source=f"GGUF file {path.resolve()} ({size} bytes)",
        origin="import:gguf",
        tensors=tensors,
        model_id=model_id,
        fallback_name=path.stem,
        n_vocab_tokens=n_tokens,
    )
