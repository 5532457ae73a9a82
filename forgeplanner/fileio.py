"""Reading input files and writing output files safely: the one place that touches raw paths
for user-named files.

Reading (`read_input`): only regular files, never more than a cap. `open()` on a FIFO blocks
until a writer appears and `/dev/zero` never ends, so the file is opened with O_NONBLOCK (a
FIFO then opens at once), checked with fstat to be a regular file, refused past its size cap,
and read at most cap + 1 bytes (a file that grows while being read cannot run past the cap).

Writing (`atomic_path`, `atomic_write`): the content goes to a temporary file beside the
destination, is flushed, fsynced and checked (not empty, the expected size, a format check
when the caller has one) and only then moved over the destination with `os.replace`, which is
atomic on POSIX. A full disk, a failing renderer or an interrupt leaves the old file untouched
and no temporary file behind. A destination that exists and is not a regular file (a device
node such as /dev/null, a FIFO, a socket, a directory) is refused: replacing it would destroy
it. Temporary files carry the writer's process id; one left by a process that was killed
(SIGKILL cannot be caught) is removed by the next write to the same destination.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from forgeplanner.errors import DataError, ForgePlannerError

MiB = 1 << 20


class InputFileError(DataError):
    """An input file that cannot be read as one: names the file and why (a DataError on
    the field "(file)", so importers' callers handle it like any bad file)."""

    def __init__(self, message: str) -> None:
        file, _, problem = message.partition(": ")
        self.file, self.field, self.value, self.problem = file, "(file)", file, problem
        ForgePlannerError.__init__(self, message)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_input(path: str | os.PathLike[str], max_bytes: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `max_bytes`; InputFileError otherwise."""
    name = str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        raise InputFileError(f"{name}: cannot read: no such {what}") from None
    except IsADirectoryError:
        raise InputFileError(f"{name}: is a directory, not a {what}") from None
    except OSError as exc:
        raise InputFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputFileError(f"{name}: is {_kind(st.st_mode)}, not a {what}; give a file")
        if st.st_size > max_bytes:
            raise InputFileError(
                f"{name}: {st.st_size:,} bytes is larger than any {what} "
                f"(limit {max_bytes:,} bytes)"
            )
        chunks: list[bytes] = []
        total = 0
        while True:
            try:
                chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            except OSError as exc:
                raise InputFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise InputFileError(f"{name}: grew past the {what} limit of {max_bytes:,} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def check_regular_input(path: str | os.PathLike[str], what: str = "file") -> Path:
    """For readers that need a path (memory-mapped GGUF, a directory walk): the path, after
    checking it names a regular file; InputFileError otherwise. Never opens a FIFO."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputFileError(f"{p}: cannot read: no such {what}") from None
    except OSError as exc:
        raise InputFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(f"{p}: is {_kind(st.st_mode)}, not a {what}; give a file")
    return p


# -- writing ------------------------------------------------------------------------------------


def check_output_path(dest: str | os.PathLike[str]) -> Path:
    """The path a writer may replace: its directory exists, and it is absent or a regular file
    (a symlink to one is followed, so the link stays and its target is replaced)."""
    dest = Path(dest)
    if dest.is_symlink():
        target = Path(os.path.realpath(dest))
        if target.exists() or target.parent.is_dir():
            dest = target
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.is_dir():
        raise ForgePlannerError(f"{dest}: directory '{parent}' does not exist")
    try:
        st = dest.stat()
    except FileNotFoundError:
        return dest
    except OSError as exc:
        raise ForgePlannerError(f"{dest}: cannot write: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ForgePlannerError(f"{dest}: is a directory; give a file name")
    if not stat.S_ISREG(st.st_mode):
        raise ForgePlannerError(
            f"{dest}: is {_kind(st.st_mode)}; ForgePlanner writes regular files only "
            "(it would replace it): give a file name"
        )
    return dest


_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temps(dest: Path) -> list[Path]:
    """Temporary files for `dest` left by writers that no longer run (killed mid-write)."""
    parent = dest.parent if str(dest.parent) else Path(".")
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _TMP.match(entry.name)
        if m is None or m.group("name") != dest.name or _alive(int(m.group("pid"))):
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed.append(entry)
    return removed


Verifier = Callable[[Path], "str | None"]


class _Incomplete(ForgePlannerError):
    """The written temporary file failed its check (named with the destination below)."""


def _check_written(tmp: Path, expected_size: int | None, verify: Verifier | None) -> None:
    size = tmp.stat().st_size
    if size == 0:
        raise _Incomplete("the writer produced an empty file (disk full?)")
    if expected_size is not None and size != expected_size:
        raise _Incomplete(f"only {size:,} of {expected_size:,} bytes reached the disk (disk full?)")
    if verify is not None:
        problem = verify(tmp)
        if problem:
            raise _Incomplete(f"the written file is not complete: {problem}")


@contextlib.contextmanager
def atomic_path(
    dest: str | os.PathLike[str],
    *,
    expected_size: int | None = None,
    verify: Verifier | None = None,
    mode: int | None = None,
) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; once the block succeeds and the file checks out,
    it replaces `dest`. On any error the temporary file goes and `dest` is untouched.

    For writers that insist on a file name (openpyxl, pandas, a PDF renderer); `verify` gets
    the written temporary path and returns a problem or None. `mode` defaults to the old
    file's mode, else 0644 (an export is shared like any other file)."""
    dest = check_output_path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    remove_stale_temps(dest)
    tmp = parent / f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ForgePlannerError(f"{dest}: cannot write here: {exc.strerror}") from exc
    os.close(fd)
    try:
        yield tmp
        if mode is None:
            mode = dest.stat().st_mode & 0o777 if dest.exists() else 0o644
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        _check_written(tmp, expected_size, verify)
        os.replace(tmp, dest)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise ForgePlannerError(
                f"{dest}: cannot write: {exc.strerror or exc}; the old file is unchanged"
            ) from exc
        if isinstance(exc, _Incomplete):
            raise ForgePlannerError(f"{dest}: {exc}; the old file is unchanged") from exc
        raise


def atomic_write(dest: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    with atomic_path(dest, expected_size=len(data), mode=mode) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()


def atomic_write_with(
    dest: str | os.PathLike[str], writer: Callable[[Path], None], verify: Verifier | None = None
) -> None:
    with atomic_path(dest, verify=verify) as tmp:
        writer(tmp)


# Format checks for writers that report no error of their own.
def zip_verifier(tmp: Path) -> str | None:
    """xlsx is a ZIP file: its central directory is written last, so a cut file has none."""
    import zipfile

    return None if zipfile.is_zipfile(tmp) else "not a complete ZIP (xlsx) file"


def parquet_verifier(tmp: Path) -> str | None:
    """Parquet starts and ends with the magic 'PAR1' (the footer is written last)."""
    with open(tmp, "rb") as fh:
        head = fh.read(4)
        fh.seek(-4, os.SEEK_END)
        tail = fh.read(4)
    return None if head == tail == b"PAR1" else "not a complete Parquet file"


def pdf_verifier(tmp: Path) -> str | None:
    """A PDF ends with %%EOF (ISO 32000-1, 7.5.5); a writer cut short never writes it."""
    with open(tmp, "rb") as fh:
        head = fh.read(5)
        fh.seek(max(0, tmp.stat().st_size - 1024))
        tail = fh.read()
    return None if head == b"%PDF-" and b"%%EOF" in tail else "not a complete PDF"
