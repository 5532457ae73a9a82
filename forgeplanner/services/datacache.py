"""The shipped catalog and model database, kept validated between runs.

Reading and validating the TOML data files costs a command more than all its own work
(benchmarks/bench_cli_startup.py); the loaded values are the same until a data file or the
code that reads them changes. So the front ends (the command line, the desktop app) install
this cache into `catalog` and `models_db`, which know no directories themselves: the first run
loads and validates the files as always and keeps the result in the user cache directory as a
pickle named by a SHA-256 of everything it was made from (the data files' bytes, the loader
and domain code, Python's and ForgePlanner's versions); later runs read that pickle instead.
Anything unexpected (a missing, unreadable, truncated or foreign file; a cache directory that
cannot be written) falls back to reading the data files: the cache only ever saves time.

Pickle is safe here as the cache directory is the user's own, written only by this program.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when the cache's layout changes

Build = Callable[[], Any]


def _code_files() -> list[Path]:
    """The code that decides what a loaded catalog or model database is: the loaders and the
    domain types they build (a change there must not be answered from an old pickle)."""
    import catalog
    import models_db
    from forgeplanner import domain

    out: list[Path] = []
    for package in (catalog, models_db, domain):
        root = Path(package.__file__).parent
        out += sorted(root.glob("*.py"))
    return out


class DataCache:
    """`cache(name, files, build)`: the value `build()` makes from `files`, from the cache
    directory when it holds one made from the same bytes, else built and kept there."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._code_digest: str | None = None

    def _code(self) -> str:
        if self._code_digest is None:
            h = hashlib.sha256()
            for path in _code_files():
                h.update(path.name.encode())
                h.update(path.read_bytes())
            self._code_digest = h.hexdigest()
        return self._code_digest

    def key(self, name: str, files: Sequence[Path]) -> str:
        from forgeplanner import __version__

        h = hashlib.sha256()
        h.update(f"{FORMAT}|{name}|{__version__}|{sys.version}|{self._code()}".encode())
        for path in files:
            h.update(path.name.encode())
            h.update(path.read_bytes())
        return h.hexdigest()

    def path(self, name: str, files: Sequence[Path]) -> Path:
        return self.directory / f"{name}-{self.key(name, files)[:32]}.pickle"

    def __call__(self, name: str, files: Sequence[Path], build: Build) -> Any:
        try:
            target = self.path(name, files)
        except OSError:  # a data file cannot be read: let the loader say so
            return build()
        try:
            with target.open("rb") as fh:
                return pickle.load(fh)
        except FileNotFoundError:
            pass
        except Exception:  # any damaged cache file (whatever pickle raises) is rebuilt
            with contextlib.suppress(OSError):
                target.unlink()
        value = build()
        self._keep(name, target, value)
        return value

    def _keep(self, name: str, target: Path, value: Any) -> None:
        """Write atomically (a reader never sees half a file) and drop older versions."""
        import os
        import tempfile  # here: only a first run writes

        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as fh:
                    pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            for old in self.directory.glob(f"{name}-*.pickle"):
                if old != target:
                    with contextlib.suppress(OSError):
                        old.unlink()
        except (OSError, pickle.PicklingError):
            pass  # no cache this time; the value is still right


_installed: Path | None = None


def install(directory: Path | None = None) -> None:
    """Use the cache (in `directory`, by default the user cache directory's data/) for the
    catalog and the model database from now on in this process."""
    global _installed
    import catalog.loader
    import models_db.loader

    if directory is None:
        from forgeplanner import paths

        directory = paths.cache_dir() / "data"
    if directory == _installed:
        return
    cache = DataCache(directory)
    catalog.loader.set_persistent_cache(cache)
    models_db.loader.set_persistent_cache(cache)
    _installed = directory
