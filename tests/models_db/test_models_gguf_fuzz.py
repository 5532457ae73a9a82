"""Property tests: random, truncated and count-mutated GGUF headers give a ModelSpec or one
DataError; never another exception, never a hang or a huge allocation."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeplanner.domain.model import ModelSpec
from forgeplanner.errors import DataError
from models_db.importers import import_gguf

FUZZ = settings(
    max_examples=150,
    deadline=3000,  # one import of these small files takes milliseconds
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gguf-fuzz")


def _import(workdir: Path, content: bytes) -> ModelSpec | None:
    path = workdir / "case.gguf"
    path.write_bytes(content)
    try:
        return import_gguf(path)
    except DataError as err:
        assert err.file == str(path) and err.field and err.problem
        return None


@pytest.fixture(scope="module")
def layout(workdir: Path, tiny_gguf_bytes: bytes) -> tuple[list[int], list[tuple[int, int]]]:
    result = _layout(workdir, tiny_gguf_bytes)
    _import(workdir, tiny_gguf_bytes)  # warm imports so the first example is not slow
    return result


def _layout(workdir: Path, content: bytes) -> tuple[list[int], list[tuple[int, int]]]:
    """Offsets of the region boundaries and of every integer field (position, width) of the
    valid file, found by pointer arithmetic on GGUFReader's memory-mapped views."""
    path = workdir / "layout.gguf"
    path.write_bytes(content)
    reader = GGUFReader(path)
    base = reader.data.__array_interface__["data"][0]
    ints: list[tuple[int, int]] = []
    parts = [p for f in reader.fields.values() for p in f.parts]
    parts += [p for t in reader.tensors for p in t.field.parts]
    for part in parts:
        if part.dtype in (np.uint64, np.uint32) and part.size <= 4:
            pos = part.__array_interface__["data"][0] - base
            ints += [(pos + i * part.itemsize, part.itemsize) for i in range(part.size)]
    kv_start = min(f.offset for k, f in reader.fields.items() if not k.startswith("GGUF."))
    ti_start = reader.tensors[0].field.offset
    data_end = max(t.data_offset + t.n_bytes for t in reader.tensors)  # then only padding
    bounds = [0, 4, 8, 16, 24, kv_start, ti_start, reader.data_offset, data_end, len(content)]
    del reader
    return bounds, sorted(set(ints))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(workdir, data):
    _import(workdir, data)


@FUZZ
@given(
    st.binary(max_size=2048),
    st.sampled_from([2, 3]),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**64 - 1),
)
def test_random_body_after_valid_magic(workdir, body, version, n_tensors, n_kv):
    _import(workdir, b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + body)


@FUZZ
@given(st.data())
def test_truncation_at_every_offset_class(workdir, tiny_gguf_bytes, layout, data):
    bounds, _ = layout
    region = data.draw(st.integers(0, len(bounds) - 2), label="region")
    cut = data.draw(st.integers(bounds[region], bounds[region + 1]), label="cut")
    spec = _import(workdir, tiny_gguf_bytes[:cut])
    # Complete once the last tensor's bytes are in; only the alignment padding may be missing.
    assert (spec is not None) == (cut >= bounds[-2])


_ABSURD = st.one_of(
    st.sampled_from([0, 1, 5, 2**31, 2**32 - 1, 2**60, 2**63, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
)


@FUZZ
@given(st.data())
def test_mutated_counts_and_lengths(workdir, tiny_gguf_bytes, layout, data):
    _, ints = layout
    buf = bytearray(tiny_gguf_bytes)
    for _ in range(data.draw(st.integers(1, 3), label="n_mutations")):
        pos, width = data.draw(st.sampled_from(ints), label="field")
        value = data.draw(_ABSURD, label="value") % (1 << (8 * width))
        struct.pack_into("<Q" if width == 8 else "<I", buf, pos, value)
    spec = _import(workdir, bytes(buf))
    assert spec is None or isinstance(spec, ModelSpec)


@FUZZ
@given(st.data())
def test_flipped_header_bytes(workdir, tiny_gguf_bytes, layout, data):
    bounds, _ = layout
    buf = bytearray(tiny_gguf_bytes)
    for _ in range(data.draw(st.integers(1, 8), label="n_flips")):
        pos = data.draw(st.integers(0, bounds[-2] - 1), label="pos")
        buf[pos] = data.draw(st.integers(0, 255), label="byte")
    _import(workdir, bytes(buf))
