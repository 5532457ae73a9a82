"""Bounds-checked walk over a GGUF header before gguf.GGUFReader sees the file.

Why this exists (hand-written on purpose, and only this much): gguf.GGUFReader (gguf 0.19)
memory-maps the file and trusts every count in it. Read against hostile input:
- an ARRAY value whose length says 2**60 with a scalar item type that runs past the end of the
  file makes `_get_field_parts` loop 2**60 times (each read past the end returns an empty view
  and the offset stops advancing) while appending to Python lists: a hang and unbounded memory;
- strings and counts past the end surface as IndexError/ValueError/KeyError/UnicodeDecodeError
  from deep inside numpy, and nested arrays recurse without limit (RecursionError);
- tensor offsets and sizes are not checked against the file, and numpy integer overflow in
  offset arithmetic only warns.
So this walk checks every length against the bytes that remain, before any loop runs, and
refuses the file with one DataError (file, field, value) instead. It reads only the header
(through mmap, page by page) and never touches tensor data. Layout per the GGUF spec
(ggml-org/ggml docs/gguf.md): magic, version, tensor_count, kv_count, KV pairs, tensor infos,
padding to general.alignment, tensor data.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from forgeplanner.errors import DataError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
GGML_MAX_DIMS = 4  # ggml.h
MAX_STRING = 1 << 30  # no real key, value or tensor name is near 1 GiB
MAX_ARRAY_DEPTH = 3
MAX_ELEMENTS = 1 << 48  # per tensor: far above any real model, far below int64 overflow
# GGUFReader keeps numpy views per array item (measured: a 152k-token SPM vocabulary, 456k
# items, costs ~7 s and ~400 MB), so the header's array items are capped in total. Real
# headers hold < 1M (Gemma 3: 262k tokens + scores + types = 786k; Llama 3: 128k tokens + 128k
# types + 280k merges); 2M leaves room and bounds a hostile header near ~2 GB / ~30 s.
MAX_ARRAY_ITEMS_TOTAL = 1 << 21
# Real files: ~20-60 keys and < 2,000 tensors (Llama 3.1 405B: 1,138).
MAX_KV_COUNT = 1 << 16
MAX_TENSOR_COUNT = 1 << 20

# value type id -> (name, fixed size or None for STRING/ARRAY)
_SCALARS: dict[int, tuple[str, str]] = {
    0: ("UINT8", "B"),
    1: ("INT8", "b"),
    2: ("UINT16", "H"),
    3: ("INT16", "h"),
    4: ("UINT32", "I"),
    5: ("INT32", "i"),
    6: ("FLOAT32", "f"),
    7: ("BOOL", "?"),
    10: ("UINT64", "Q"),
    11: ("INT64", "q"),
    12: ("FLOAT64", "d"),
}
_STRING, _ARRAY = 8, 9
_MIN_KV_BYTES = 8 + 4 + 1  # key length, type, smallest value
_MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8  # name length, n_dims, type, offset


@dataclass(slots=True)
class HeaderSummary:
    version: int
    tensor_count: int
    kv_count: int
    alignment: int
    data_offset: int
    file_size: int
    byte_order: str  # "<" or ">"
    tensor_bytes: dict[str, int] = field(default_factory=dict)


class _Walker:
    def __init__(self, name: str, buf: mmap.mmap | bytes, size: int) -> None:
        self.name, self.buf, self.size = name, buf, size
        self.pos = 0
        self.order = "<"
        self.array_items = 0

    def fail(self, fld: str, value: object, problem: str) -> DataError:
        return DataError(self.name, fld, value, problem)

    def need(self, n: int, fld: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise self.fail(
                fld,
                n,
                f"needs {n} bytes at offset {self.pos} but the file has {self.size} bytes "
                "(truncated or corrupt)",
            )

    def unpack(self, fmt: str, fld: str) -> int | float | bool:
        width = struct.calcsize(fmt)
        self.need(width, fld)
        (value,) = struct.unpack_from(self.order + fmt, self.buf, self.pos)
        self.pos += width
        return value

    def u32(self, fld: str) -> int:
        return int(self.unpack("I", fld))

    def u64(self, fld: str) -> int:
        return int(self.unpack("Q", fld))

    def string(self, fld: str) -> str:
        length = self.u64(f"{fld} (string length)")
        if length > MAX_STRING or length > self.size - self.pos:
            raise self.fail(
                f"{fld} (string length)",
                length,
                f"string runs past the end of the file ({self.size - self.pos} bytes left)",
            )
        raw = bytes(self.buf[self.pos : self.pos + length])
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(fld, raw[:40], "string is not valid UTF-8") from None

    def skip_value(self, vtype: int, fld: str, depth: int = 0) -> object:
        """Skip one value; returns it when it is a scalar or string (for general.alignment)."""
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype][1], fld)
        if vtype == _STRING:
            return self.string(fld)
        if vtype != _ARRAY:
            raise self.fail(f"{fld} (value type)", vtype, "unknown GGUF value type")
        if depth >= MAX_ARRAY_DEPTH:
            raise self.fail(fld, depth, "arrays nested too deeply")
        item_type = self.u32(f"{fld} (array item type)")
        length = self.u64(f"{fld} (array length)")
        left = self.size - self.pos
        self.array_items += length
        if self.array_items > MAX_ARRAY_ITEMS_TOTAL:
            raise self.fail(
                f"{fld} (array length)",
                length,
                f"header arrays would hold more than {MAX_ARRAY_ITEMS_TOTAL} items in all; "
                "no real model has that many",
            )
        if item_type in _SCALARS:
            width = struct.calcsize(_SCALARS[item_type][1])
            if length > left // width:
                raise self.fail(
                    f"{fld} (array length)", length, f"needs {length} x {width} bytes, {left} left"
                )
            self.pos += length * width
            return None
        min_item = 8 if item_type == _STRING else 12
        if item_type not in (_STRING, _ARRAY):
            raise self.fail(f"{fld} (array item type)", item_type, "unknown GGUF value type")
        if length > left // min_item:
            raise self.fail(
                f"{fld} (array length)", length, f"at least {min_item} bytes each, {left} left"
            )
        for i in range(length):
            if item_type == _STRING:
                # Inline skip: this loop runs once per vocabulary token.
                self.need(8, f"{fld}[{i}]")
                (slen,) = struct.unpack_from(self.order + "Q", self.buf, self.pos)
                self.pos += 8
                if slen > self.size - self.pos:
                    raise self.fail(f"{fld}[{i}] (string length)", slen, "runs past end of file")
                self.pos += slen
            else:
                self.skip_value(_ARRAY, f"{fld}[{i}]", depth + 1)
        return None


def precheck_gguf(path: Path) -> HeaderSummary:
    """Validate the header of `path`; raise one DataError naming file, field and value."""
    from forgeplanner.fileio import check_regular_input

    name = str(path)
    check_regular_input(path, "GGUF file")  # /dev/zero or a FIFO: refused, never mapped
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            if size < 24:
                head = fh.read(4)
                if head[:4] != GGUF_MAGIC[: len(head)] or not head:
                    raise DataError(name, "magic", head, "not a GGUF file (expected b'GGUF')")
                raise DataError(name, "header", size, "truncated: a GGUF header needs 24 bytes")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _walk(name, buf, size)
    except OSError as exc:
        raise DataError(name, "(file)", name, f"cannot read: {exc.strerror or exc}") from None


def header_data_offset(name: str, buf: bytes, size: int, *, complete: bool) -> int:
    """Walk a header held in `buf` (the first `size` bytes of a file, or all of it when
    `complete`) and return where tensor data starts. A prefix too short for the header raises the
    walk's DataError, so a caller can fetch more and retry; tensor extents are only checked
    against the file when `complete`."""
    if size < 24:
        raise DataError(name, "header", size, f"needs 24 bytes at offset 0 but has {size}")
    return _walk(name, buf, size, check_data=complete).data_offset


def _walk(
    name: str, buf: mmap.mmap | bytes, size: int, *, check_data: bool = True
) -> HeaderSummary:
    w = _Walker(name, buf, size)
    magic = bytes(buf[0:4])
    if magic != GGUF_MAGIC:
        raise w.fail("magic", magic, "not a GGUF file (expected b'GGUF')")
    w.pos = 4
    version = w.u32("version")
    if version & 0xFFFF == 0 and version != 0:  # written on a big-endian machine
        w.order = ">"
        version = struct.unpack_from(">I", buf, 4)[0]
    if version not in SUPPORTED_VERSIONS:
        raise w.fail("version", version, "unsupported GGUF version (supported: 2, 3)")
    tensor_count = w.u64("tensor_count")
    kv_count = w.u64("kv_count")
    left = size - w.pos
    if kv_count > MAX_KV_COUNT:
        raise w.fail("kv_count", kv_count, f"absurd: more than {MAX_KV_COUNT} key/value pairs")
    if tensor_count > MAX_TENSOR_COUNT:
        raise w.fail("tensor_count", tensor_count, f"absurd: more than {MAX_TENSOR_COUNT} tensors")
    if kv_count > left // _MIN_KV_BYTES:
        raise w.fail(
            "kv_count",
            kv_count,
            f"absurd: the file has room for at most {left // _MIN_KV_BYTES} key/value pairs",
        )
    if tensor_count > left // _MIN_TENSOR_INFO_BYTES:
        raise w.fail(
            "tensor_count",
            tensor_count,
            f"absurd: the file has room for at most {left // _MIN_TENSOR_INFO_BYTES} tensor infos",
        )

    alignment = 32  # GGUF_DEFAULT_ALIGNMENT
    keys: set[str] = set()
    for i in range(kv_count):
        key = w.string(f"kv[{i}].key")
        label = key if key.strip() else f"kv[{i}]"  # field name for errors
        if key in keys:
            raise w.fail(f"kv[{i}].key", key, "key appears twice in the header")
        keys.add(key)
        vtype = w.u32(f"{label} (value type)")
        value = w.skip_value(vtype, label)
        if key == "general.alignment":
            if vtype != 4 or not isinstance(value, int) or value <= 0 or value & (value - 1):
                raise w.fail(key, value, "must be a UINT32 power of two")
            alignment = value

    infos: list[tuple[str, int, int]] = []  # name, offset, n_bytes
    names: set[str] = set()
    for i in range(tensor_count):
        tname = w.string(f"tensor[{i}].name")
        if tname in names:
            raise w.fail(f"tensor[{i}].name", tname, "duplicate tensor name")
        names.add(tname)
        tname = tname if tname.strip() else f"tensor[{i}]"  # field name for errors
        n_dims = w.u32(f"{tname}.n_dims")
        if n_dims > GGML_MAX_DIMS:
            raise w.fail(f"{tname}.n_dims", n_dims, f"more than {GGML_MAX_DIMS} dimensions")
        dims = [w.u64(f"{tname}.dims[{j}]") for j in range(n_dims)]
        n_elements = 1
        for d in dims:
            n_elements *= d
            if n_elements > MAX_ELEMENTS:
                raise w.fail(f"{tname}.dims", dims, "absurd tensor size")
        raw_type = w.u32(f"{tname}.type")
        try:
            qtype = GGMLQuantizationType(raw_type)
            block, type_size = GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise w.fail(f"{tname}.type", raw_type, "unknown ggml tensor type") from None
        if dims and dims[0] % block:
            raise w.fail(
                f"{tname}.dims",
                dims,
                f"row length not a multiple of the {qtype.name} block size {block}",
            )
        offset = w.u64(f"{tname}.offset")
        if offset % alignment:
            raise w.fail(f"{tname}.offset", offset, f"not a multiple of the alignment {alignment}")
        infos.append((tname, offset, n_elements // block * type_size))

    data_offset = w.pos + (-w.pos % alignment)
    summary = HeaderSummary(
        version=version,
        tensor_count=tensor_count,
        kv_count=kv_count,
        alignment=alignment,
        data_offset=data_offset,
        file_size=size,
        byte_order=w.order,
    )
    for tname, offset, n_bytes in infos:
        summary.tensor_bytes[tname] = n_bytes
        if not check_data:
            continue
        end = data_offset + offset + n_bytes
        if end > size:
            raise w.fail(
                f"{tname}.offset",
                offset,
                f"tensor data ends at byte {end} but the file "
                f"has {size} bytes (truncated download?)",
            )
    return summary
