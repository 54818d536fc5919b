"""How new tokens reach the database, and how pooled connections survive a database restart."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from idp.domain.models import AuthContext
from idp.services.tokens import TOKENS, digest_token
from idp.store.db import build_engine, ping_when_idle


def _stored(services, *tokens: str) -> set[str]:
    digests = {digest_token(t): t for t in tokens}
    with services.tokens.engine().connect() as conn:
        found = conn.execute(sa.select(TOKENS.c.digest).where(TOKENS.c.digest.in_(digests))).scalars()
        return {digests[d] for d in found}


def _save(services, access: str, refresh: str | None) -> None:
    services.tokens.save(
        client_id="c1",
        scope="openid",
        context=AuthContext("p1", "grant-1"),
        access_token=access,
        access_expires_at=2_000_000_000,
        refresh_token=refresh,
        refresh_expires_at=2_000_000_000 if refresh else None,
    )


def test_a_pair_is_stored_whole_or_not_at_all(services):
    _save(services, "access-1", "refresh-1")
    assert _stored(services, "access-1", "refresh-1") == {"access-1", "refresh-1"}
    # the second row of this pair collides with a stored digest: its access token must not stay
    with pytest.raises(sa.exc.IntegrityError):
        _save(services, "access-2", "refresh-1")
    assert _stored(services, "access-2") == set()


def test_a_single_access_token_is_stored(services):
    _save(services, "access-3", None)
    assert _stored(services, "access-3") == {"access-3"}
    record = services.tokens.find("access-3")
    assert record is not None and record.kind == "access" and record.person_id == "p1"


@pytest.fixture
def postgres_url(backend, settings):
    if backend != "postgres":
        pytest.skip("SQLite has no server to restart")
    return settings.database_url


def _kill_other_backends(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = 'idle-ping-test'"
                )
            ).all()
        )


def _engine(url: str, idle_seconds: float, pool_size: int = 1) -> sa.Engine:
    engine = sa.create_engine(
        url, pool_size=pool_size, max_overflow=0, connect_args={"application_name": "idle-ping-test"}
    )
    ping_when_idle(engine, idle_seconds)
    return engine


def _select_one(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT 1")).scalar_one())


def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(postgres_url):
    engine = _engine(postgres_url, idle_seconds=0.0)  # every checkout counts as idle
    admin = build_engine(postgres_url)
    try:
        assert _select_one(engine) == 1
        assert _kill_other_backends(admin) == 1
        assert _select_one(engine) == 1  # the ping found the dead connection; the pool made a new one
    finally:
        engine.dispose()
        admin.dispose()


def test_a_busy_connection_is_not_pinged_and_a_kill_fails_one_use_only(postgres_url):
    """The trade for no round trip per checkout: a connection used within the idle window is
    trusted, so the first use after the server dropped it fails; the pool then discards it."""
    engine = _engine(postgres_url, idle_seconds=3600.0)
    admin = build_engine(postgres_url)
    try:
        assert _select_one(engine) == 1
        assert _kill_other_backends(admin) == 1
        with pytest.raises(sa.exc.OperationalError):
            _select_one(engine)
        assert _select_one(engine) == 1
    finally:
        engine.dispose()
        admin.dispose()


def test_one_failure_discards_every_older_pooled_connection(postgres_url):
    engine = _engine(postgres_url, idle_seconds=3600.0, pool_size=3)
    admin = build_engine(postgres_url)
    try:
        held = [engine.connect() for _ in range(3)]  # three pooled connections
        for conn in held:
            conn.execute(sa.text("SELECT 1"))
            conn.close()
        assert _kill_other_backends(admin) == 3  # e.g. a database restart
        with pytest.raises(sa.exc.OperationalError):
            _select_one(engine)
        # the two other dead connections are not handed out again: each use gets a fresh one
        assert [_select_one(engine) for _ in range(3)] == [1, 1, 1]
    finally:
        engine.dispose()
        admin.dispose()
