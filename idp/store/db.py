"""Engine, declarative base and session factory for the durable database."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def build_engine(url: str, *, wait_for_flush: bool = True) -> Engine:
    """Create the engine; SQLite gets WAL and a busy timeout so several threads can share it.

    `wait_for_flush=False` (PostgreSQL): its commits return before their WAL reaches the disk
    (synchronous_commit=off). Atomic and consistent still; a crash of PostgreSQL itself (not of a
    node) can lose what was committed in the last ~0.6 s (3 x wal_writer_delay). A small pool of
    its own: only the writes that may be lost that way use it (see TokenService)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    if wait_for_flush:
        return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
    return create_engine(
        url,
        pool_size=4,
        max_overflow=8,
        pool_pre_ping=True,
        connect_args={"options": "-c synchronous_commit=off"},
    )


def build_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


LIKE_ESCAPE = "\\"


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with its own wildcards escaped (use LIKE_ESCAPE)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def autocommit_reader(sessions: sessionmaker[Session]) -> Engine:
    """The sessions' engine in autocommit, for single-statement reads on hot paths: no BEGIN and
    ROLLBACK round trips around a SELECT."""
    return sessions.kw["bind"].execution_options(isolation_level="AUTOCOMMIT")  # type: ignore[no-any-return]
