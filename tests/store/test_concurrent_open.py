"""A fresh database opened by several openers at once (the GUI's store and a view's worker
both open it on first start) is migrated exactly once; nobody sees 'table already exists'."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from forgeplanner.store import Store
from forgeplanner.store.db import head_revision


def test_threads_opening_a_fresh_database_together_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    start = threading.Barrier(6)
    errors: list[BaseException] = []
    revisions: list[str | None] = []

    def open_it() -> None:
        start.wait()
        try:
            store = Store(url)
            revisions.append(store.current_revision())
            store.close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert revisions == [head_revision()] * 6


def test_processes_opening_a_fresh_database_together_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = (
        "import sys; from forgeplanner.store import Store; "
        "s = Store(sys.argv[1]); print(s.current_revision()); s.close()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    assert {out.strip() for out, _ in outs} == {head_revision()}
