"""Plan files on disk: read safely, written atomically, edited under a lock.

Every file ForgePlanner writes for a plan (the `.fplan` itself and every export) goes through
`forgeplanner.fileio.atomic_write` (temporary file beside it, fsync, check, `os.replace`): a
crash, a full disk or a failing renderer leaves the old file untouched.

Edits are read-modify-write: two processes editing one plan at once used to read the same
version and the second write silently dropped the first one's change. `locked_plan` holds an
exclusive `fcntl.flock` on a lock file beside the plan (`.NAME.fplan.lock`) for the whole read,
change and write, so concurrent edits queue instead of losing updates. The lock is on its own
file, not on the plan: `os.replace` gives the plan a new inode, and a lock on the old inode
would not exclude the next reader. A lock is released by the kernel when its holder dies.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from forgeplanner.domain.plan import Plan
from forgeplanner.errors import DataError, ForgePlannerError
from forgeplanner.fileio import atomic_path, atomic_write, atomic_write_with, read_input
from forgeplanner.plan import document

__all__ = [
    "MAX_PLAN_BYTES",
    "PLAN_SUFFIX",
    "atomic_path",
    "atomic_write",
    "atomic_write_with",
    "lock_path",
    "locked_plan",
    "read_plan",
    "write_plan",
]

PLAN_SUFFIX = ".fplan"
MAX_PLAN_BYTES = 64 << 20  # plans with attached raw benchmark outputs are a few MB
LOCK_WAIT_S = 60.0


def read_plan(path: str | os.PathLike[str]) -> Plan:
    data = read_input(path, MAX_PLAN_BYTES, "plan file")
    return document.loads(data, source=str(path))


def write_plan(path: str | os.PathLike[str], plan: Plan) -> None:
    try:
        text = document.dumps(plan)
    except ValueError as exc:
        raise DataError(str(path), "plan", plan.name, str(exc)) from exc
    atomic_write(path, text.encode("utf-8"))


def lock_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_name(f".{p.name}.lock")


@contextlib.contextmanager
def locked_plan(path: str | os.PathLike[str], wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the plan's edit lock for the block (waits up to `wait_s` for another editor).
    A path that is not a regular file (a device, a FIFO) is refused before any lock file is
    made beside it."""
    from forgeplanner.fileio import check_output_path

    path = check_output_path(path)
    lock = lock_path(path)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise ForgePlannerError(
            f"{path}: cannot lock the plan for editing ({lock}: {exc.strerror or exc})"
        ) from None
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise ForgePlannerError(
                        f"{path}: cannot lock the plan: {exc.strerror or exc}"
                    ) from None
                if time.monotonic() >= deadline:
                    raise ForgePlannerError(
                        f"{path}: another ForgePlanner has been editing this plan for over "
                        f"{wait_s:.0f} s; nothing was changed, try again"
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # closing releases the lock
