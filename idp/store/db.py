"""Engine, declarative base and session factory for the durable database."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, exc
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
    its own: only the writes that may be lost that way use it (see TokenService). Its connections are
    in autocommit: every statement is its own transaction, and `begin()` starts none."""
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
        engine = create_engine(url, pool_size=10, max_overflow=20)
    else:
        engine = create_engine(
            url,
            pool_size=4,
            max_overflow=8,
            connect_args={"options": "-c synchronous_commit=off"},
            isolation_level="AUTOCOMMIT",  # single statements only; no switching per use
        )
    ping_when_idle(engine, IDLE_PING_SECONDS)
    return engine


# A pooled connection unused for longer than this is pinged before use. Not every checkout (the
# pool's pre_ping): that round trip cost ~60 us of CPU on each hot request (profile, 2026-12-03).
IDLE_PING_SECONDS = 5.0


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection at checkout only if it sat idle for more than `idle_seconds`; a dead
    one is replaced before use. So a restart of the database is not seen by a request after a quiet
    spell; under load, the requests in flight at the restart fail (server_error) and the first
    failure discards every older pooled connection (SQLAlchemy invalidates the pool on a disconnect)."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as error:  # noqa: BLE001 - any failure means the connection is unusable
            # the pool discards this connection and checks out another (SQLAlchemy's documented recipe)
            raise exc.DisconnectionError() from error


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
