"""Plan files on disk, written atomically.

Every file ForgePlanner writes for a plan (the `.fplan` itself and every export) goes through
`atomic_write`: the content is written to a temporary file in the destination directory,
flushed and fsynced, then moved over the destination with `os.replace`, which is atomic on
POSIX and Windows. A crash or a failing renderer leaves the old file untouched and no
half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from forgeplanner.domain.plan import Plan
from forgeplanner.errors import DataError, ForgePlannerError
from forgeplanner.plan import document

PLAN_SUFFIX = ".fplan"


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; on success it replaces `dest`, on error it goes.

    For writers that insist on a file name (Qt's PDF writer, openpyxl)."""
    dest = Path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise ForgePlannerError(f"{dest}: directory '{parent}' does not exist")
    if dest.is_dir():
        raise ForgePlannerError(f"{dest}: is a directory; give a file name")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise ForgePlannerError(f"{dest}: cannot write here: {exc.strerror}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the mode the old file had, or the
        # usual 0644, so an export can be shared like any other file.
        mode = dest.stat().st_mode & 0o777 if dest.exists() else 0o644
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise ForgePlannerError(f"{dest}: cannot write: {exc.strerror or exc}") from exc
        raise


def atomic_write(dest: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_with(dest: str | os.PathLike[str], writer: Callable[[Path], None]) -> None:
    with atomic_path(dest) as tmp:
        writer(tmp)


def read_plan(path: str | os.PathLike[str]) -> Plan:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ForgePlannerError(f"{path}: no such plan file") from exc
    except OSError as exc:
        raise ForgePlannerError(f"{path}: cannot read: {exc.strerror}") from exc
    return document.loads(data, source=str(path))


def write_plan(path: str | os.PathLike[str], plan: Plan) -> None:
    try:
        text = document.dumps(plan)
    except ValueError as exc:
        raise DataError(str(path), "plan", plan.name, str(exc)) from exc
    atomic_write(path, text.encode("utf-8"))
