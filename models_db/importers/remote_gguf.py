"""Read a remote GGUF's header with HTTP range requests, never its weights.

The header (metadata + tensor table) sits at the start of the file; its length is not known in
advance (the vocabulary arrays make it a few hundred KB to a few MB). So the first
`FIRST_RANGE` bytes are fetched and the bounds-checked header walk (gguf_header) is run on them;
while the walk runs out of bytes the range is doubled, up to `MAX_HEADER_BYTES`. The prefix is
then written into a sparse local file of the remote file's full size, so the exact same
validation and `gguf.GGUFReader` path as a local import runs on it; only header pages are ever
read, and the unfetched tensor data is a hole in the sparse file (no disk space).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from forgeplanner.errors import DataError
from models_db.importers.gguf_header import header_data_offset

FIRST_RANGE = 256 * 1024
MAX_HEADER_BYTES = 64 * 1024 * 1024  # > any real header (Gemma 3's 262k-token vocab: ~6 MB)

# fetch(start, end_inclusive) -> (bytes, total file size)
RangeFetcher = Callable[[int, int], tuple[bytes, int]]
Progress = Callable[[str], None]

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def parse_content_range(value: str | None, name: str) -> int:
    """Total size from a `Content-Range: bytes a-b/total` header."""
    m = _CONTENT_RANGE.fullmatch((value or "").strip())
    if m is None:
        raise DataError(name, "Content-Range", value, "server did not answer the range request")
    return int(m.group(3))


def fetch_header(
    name: str, fetch: RangeFetcher, progress: Progress | None = None
) -> tuple[bytes, int]:
    """(header prefix bytes, total file size): the smallest doubling of FIRST_RANGE that holds
    the whole header."""
    want = FIRST_RANGE
    while True:
        data, total = fetch(0, want - 1)
        complete = len(data) >= total
        if progress:
            progress(f"{name}: read {len(data):,} of {total:,} bytes (header only)")
        try:
            header_data_offset(name, data, len(data), complete=complete)
            return data, total
        except DataError:
            # On a prefix every shortfall (a string, an array or a count the walk measures
            # against the bytes it has) may just mean "fetch more"; only the whole file, or
            # the size cap that bounds a hostile header, makes the error final.
            if complete or want >= MAX_HEADER_BYTES:
                raise
        want *= 2


def write_sparse(path: Path, prefix: bytes, total: int) -> Path:
    """`prefix` followed by a hole up to `total` bytes (sparse on every common filesystem)."""
    with path.open("wb") as fh:
        fh.write(prefix)
        fh.truncate(total)
    return path
