"""The only module that knows directories. platformdirs, with environment overrides.

- FORGEPLANNER_HOME: one directory for data, cache and config (tests, portable installs).
- FORGEPLANNER_DB: any SQLAlchemy URL for the user database.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "ForgePlanner"


def _mkdir(path: Path, mode: int = 0o777) -> Path:
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    except OSError as exc:
        from forgeplanner.errors import ForgePlannerError

        where = " (FORGEPLANNER_HOME)" if os.environ.get("FORGEPLANNER_HOME") else ""
        raise ForgePlannerError(
            f"cannot use the folder {path}{where}: {exc.strerror or exc}"
        ) from None
    return path


def _home() -> Path | None:
    home = os.environ.get("FORGEPLANNER_HOME")
    return Path(home) if home else None


def data_dir() -> Path:
    """The user's own data (the database): private to the user (0700), like ~/.ssh."""
    home = _home()
    path = home / "data" if home else Path(platformdirs.user_data_dir(APP, appauthor=False))
    _mkdir(path, 0o700)
    st = path.stat()
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        path.chmod(0o700)
    return path


def cache_dir() -> Path:
    home = _home()
    path = home / "cache" if home else Path(platformdirs.user_cache_dir(APP, appauthor=False))
    return _mkdir(path)


def config_dir() -> Path:
    home = _home()
    path = home / "config" if home else Path(platformdirs.user_config_dir(APP, appauthor=False))
    return _mkdir(path)


def database_url() -> str:
    url = os.environ.get("FORGEPLANNER_DB")
    if url:
        return url
    return f"sqlite:///{data_dir() / 'forgeplanner.db'}"


def tools_cache_dir() -> Path:
    """Where locally built external tools (llama.cpp's llama-bench, ggml-rpc-server) are cached.

    Deliberately independent of FORGEPLANNER_HOME: tests isolate user data per test, but an
    8-minute llama.cpp build must be shared by every test and every CI run on this machine.
    FORGEPLANNER_TOOLS_DIR overrides it.
    """
    override = os.environ.get("FORGEPLANNER_TOOLS_DIR")
    path = (
        Path(override)
        if override
        else Path(platformdirs.user_cache_dir(APP, appauthor=False)) / "tools"
    )
    return _mkdir(path)
