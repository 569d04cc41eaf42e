"""Engine and session factory, and `transaction()`: the one place that commits.

SQLite runs in WAL mode with foreign keys on and a busy timeout; PostgreSQL
uses pre-ping and connect/statement timeouts so a partition is noticed, not
waited on. Database errors that mean "down or locked" become Unavailable, so
callers answer 503 + Retry-After instead of 500.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from warroom.core.errors import InvalidInput, Unavailable

SQLITE_BUSY_TIMEOUT_MS = 5000


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    """Create an engine for a SQLAlchemy URL. Raises InvalidInput for an unusable URL."""
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
        }
    elif url.startswith("postgresql"):
        kwargs.update(
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=10,
            connect_args={
                "connect_timeout": 5,
                "options": "-c statement_timeout=30000 -c idle_in_transaction_session_timeout=60000",
            },
        )
    else:
        raise InvalidInput(
            f"unsupported database URL scheme in {url.split(':', 1)[0]!r}",
            field="WARROOM_DATABASE_URL",
            hint="use sqlite:///path/warroom.db or postgresql+psycopg://user@host/db",
        )
    try:
        engine = create_engine(url, **kwargs)
    except Exception as exc:
        raise InvalidInput(
            f"cannot use database URL: {exc}", field="WARROOM_DATABASE_URL"
        ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy drive transactions (we issue BEGIN IMMEDIATE ourselves).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the lock up front with IMMEDIATE: no deadlock-prone lock
    # upgrades between concurrent writers, and busy_timeout applies to BEGIN.
    # Readers (Database.read) begin DEFERRED so WAL lets them run beside writers.
    if conn.get_execution_options().get("warroom_read"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """An engine plus its session factory; created by bootstrap, never at import."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on error.

        Raises Unavailable when the database is down, locked or out of disk.
        """
        session = self.sessions()
        try:
            yield session
            session.commit()
        except (OperationalError, DBAPIError) as exc:
            session.rollback()
            raise to_unavailable(exc) from exc
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads; rolled back at the end."""
        session = self.sessions()
        try:
            session.connection(execution_options={"warroom_read": True})
            yield session
        except (OperationalError, DBAPIError) as exc:
            raise to_unavailable(exc) from exc
        finally:
            # detach loaded objects first so callers can still read them after the
            # rollback (a rollback would expire them)
            session.expunge_all()
            session.rollback()
            session.close()

    def ping(self) -> None:
        """Raises Unavailable when the database does not answer."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError) as exc:
            raise to_unavailable(exc) from exc

    def dispose(self) -> None:
        self.engine.dispose()


def to_unavailable(exc: Exception) -> Exception:
    """Map driver errors that mean "try again later" to Unavailable; others pass through."""
    text_ = str(getattr(exc, "orig", exc)).lower()
    if "database or disk is full" in text_ or "no space left" in text_ or "disk full" in text_:
        return Unavailable("database storage is full", retry_after=30, hint="free disk space")
    if isinstance(exc, OperationalError) or getattr(exc, "connection_invalidated", False):
        if "locked" in text_ or "busy" in text_:
            return Unavailable("database is busy", retry_after=1)
        return Unavailable("database is unavailable", retry_after=2)
    return exc
