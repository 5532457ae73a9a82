"""Import a local GGUF file: metadata and the exact tensor table, never the weights.

gguf.GGUFReader memory-maps the file (np.memmap, mode "r") and builds each tensor's `data` as a
lazy view; nothing here reads those views, so only header pages are ever loaded. Before the
reader sees the file, gguf_header.precheck_gguf validates every count and length in the header
(see there for why GGUFReader cannot be trusted with hostile input).
"""

from __future__ import annotations

import re
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
            warnings.simplefilter("error", RuntimeWarning)
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


_SHARD = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
MAX_SHARDS = 1024


def _shard_paths(path: Path, count: int) -> list[Path]:
    """All shards of a split GGUF, named as llama.cpp's gguf-split and GGUFWriter name them
    (`{prefix}-00001-of-00003.gguf`)."""
    m = _SHARD.match(path.name)
    if m is None or int(m["count"]) != count:
        raise DataError(
            str(path),
            "split.count",
            count,
            "a split GGUF, but the file name is not PREFIX-0000i-of-0000n.gguf",
        )
    shards = [
        path.with_name(f"{m['prefix']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)
    ]
    for shard in shards:
        if not shard.is_file():
            raise DataError(str(path), "split.count", count, f"shard {shard.name} is missing")
    return shards


def import_gguf(path: str | Path, model_id: str | None = None) -> ModelSpec:
    """Read a GGUF file's metadata and tensor table into a ModelSpec (DataError on bad input).

    For a split GGUF (any shard may be given), the metadata comes from the first shard and the
    tensor table is the union of all shards."""
    path = Path(path)
    meta, tensors, n_tokens = read_gguf(path)
    count = meta.get("split.count")
    size = path.stat().st_size
    if isinstance(count, int) and not isinstance(count, bool) and count > 1:
        if count > MAX_SHARDS:
            raise DataError(str(path), "split.count", count, f"more than {MAX_SHARDS} shards")
        shards = _shard_paths(path, count)
        merged: list[TensorInfo] = []
        for shard in shards:
            shard_meta, shard_tensors, shard_tokens = read_gguf(shard)
            if shard == shards[0]:
                meta, n_tokens = shard_meta, shard_tokens
            merged.extend(shard_tensors)
        names = [t.name for t in merged]
        if len(set(names)) != len(names):
            raise DataError(str(path), "split.tensors.count", len(names), "tensor in two shards")
        declared = meta.get("split.tensors.count")
        if isinstance(declared, int) and declared != len(merged):
            raise DataError(
                str(shards[0]),
                "split.tensors.count",
                declared,
                f"the {count} shards hold {len(merged)} tensors",
            )
        tensors = tuple(merged)
        size = sum(s.stat().st_size for s in shards)
        path = shards[0]
    return spec_from_gguf_metadata(
        meta,
        file=str(path),
        source=f"GGUF file {path.resolve()} ({size} bytes"
        + (f" in {count} shards)" if isinstance(count, int) and count > 1 else ")"),
        origin="import:gguf",
        tensors=tensors,
        model_id=model_id,
        fallback_name=path.stem,
        n_vocab_tokens=n_tokens,
    )
