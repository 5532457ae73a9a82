"""Opening the user database: engine, SQLite settings, migrations, one session per action.

`Store(url)` opens (and creates) the database at `url` (default: `forgeplanner.paths
.database_url()`, which honours `FORGEPLANNER_DB`), upgrades it to this app's Alembic head
and refuses a database whose revision this app does not know (written by a newer
ForgePlanner), because writing to a schema we do not understand could destroy the user's data.

SQLite runs in WAL mode with foreign keys on: a process killed half way through a write leaves
the last committed state intact (the uncommitted WAL frames are discarded on the next open).
"""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import DatabaseError as SQLAlchemyDatabaseError
from sqlalchemy.orm import Session, sessionmaker

from forgeplanner.errors import ForgePlannerError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 10_000


class DatabaseError(ForgePlannerError):
    """The user database cannot be opened or used as it is."""


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    if len(heads) != 1:  # a packaging bug, not a user error
        raise RuntimeError(f"ForgePlanner migrations have {len(heads)} heads: {heads}")
    return heads[0]


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # WAL: readers do not block the writer and a killed writer cannot corrupt committed data.
    # In-memory databases answer "memory"; that is fine.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"FORGEPLANNER_DB: '{url}' is not a SQLAlchemy database URL") from exc
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().parent
        try:
            # A folder we create holds only the user's data: private (0700).
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(
                f"FORGEPLANNER_DB: cannot create the folder '{folder}' for '{url}': "
                f"{exc.strerror or exc}"
            ) from exc
        _prepare_sqlite_file(Path(parsed.database).expanduser())
    try:
        engine = create_engine(parsed)
    except Exception as exc:  # missing driver for another backend, bad options
        raise DatabaseError(f"cannot open database '{parsed!r}': {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _prepare_sqlite_file(path: Path) -> None:
    """The database file is private to the user (0600; SQLite gives its -wal and -shm files
    the same mode), and a file that exists but is empty is refused: SQLite would silently
    treat it as a new database, and an empty file where the user's data should be means
    something went wrong (a failed copy, a full disk) that a fresh schema would paper over."""
    with _sqlite_file_lock(f"sqlite:///{path}"):
        try:
            st = path.stat()
        except FileNotFoundError:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return
            except OSError as exc:
                raise DatabaseError(
                    f"cannot create the database {path}: {exc.strerror or exc}"
                ) from None
            os.close(fd)
            # Write the header now, under the lock, so no other opener sees 0 bytes.
            import sqlite3

            conn = sqlite3.connect(path)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            finally:
                conn.close()
            return
        except OSError as exc:
            raise DatabaseError(f"cannot open the database {path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):
            raise DatabaseError(f"database {path} is not a regular file")
        if st.st_size == 0:
            raise DatabaseError(
                f"database {path} is an empty (0-byte) file, not a ForgePlanner database; "
                "restore it from a backup, or move it away to start a new one"
            )
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(path, 0o600)


_MIGRATION_LOCK = threading.Lock()


@contextmanager
def _sqlite_file_lock(url: str) -> Iterator[None]:
    """An exclusive lock file beside a SQLite database file (no-op for other databases)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        yield
        return
    lock_path = f"{parsed.database}.migrate.lock"
    fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Store:
    """The user database. Use `with store.session() as s:` once per user action."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        if url is None:
            from forgeplanner import paths

            url = paths.database_url()
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.upgrade()

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self) -> None:
        """Bring the schema to this app's head; refuse a database from a newer app."""
        script = ScriptDirectory.from_config(_alembic_config())
        head = head_revision()
        try:
            current = self.current_revision()
        except SQLAlchemyDatabaseError as exc:
            # OperationalError (locked, unreachable) and "file is not a database" alike.
            raise DatabaseError(f"cannot open database {self._shown()}: {exc.orig}") from exc
        if current is not None:
            known = {rev.revision for rev in script.walk_revisions()}
            if current not in known:
                raise DatabaseError(
                    f"database {self._shown()} has schema revision '{current}', which this "
                    f"ForgePlanner does not know (its newest is '{head}'): it was written by a "
                    "newer ForgePlanner. Upgrade ForgePlanner, or point FORGEPLANNER_DB at "
                    "another database."
                )
        if current == head:
            return
        # Two openers of a fresh database (the GUI's store and a view's worker, or two
        # processes) must not both create the schema: serialise the migration across threads
        # and, for SQLite files, across processes, then re-check under the lock.
        with _MIGRATION_LOCK, _sqlite_file_lock(self.url):
            try:
                if self.current_revision() == head:
                    return
                cfg = _alembic_config()
                with self.engine.begin() as conn:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
            except OperationalError as exc:
                raise self._operational(exc) from exc

    def _shown(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any exception."""
        s = self._sessions()
        try:
            yield s
            s.commit()
        except OperationalError as exc:
            s.rollback()
            raise self._operational(exc) from exc
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    def _operational(self, exc: OperationalError) -> DatabaseError:
        """One line for the user: a busy database (another process's write lock held past
        busy_timeout, e.g. a large import) or a database that cannot be written."""
        text = str(exc.orig)
        if "locked" in text or "busy" in text:
            return DatabaseError(
                f"database {self._shown()} is busy: another ForgePlanner has held its write "
                f"lock for over {BUSY_TIMEOUT_MS // 1000} s (a large import?); nothing was "
                "saved, try again"
            )
        return DatabaseError(f"database {self._shown()}: {' '.join(text.split())}")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str | None = None) -> Store:
    return Store(url)
