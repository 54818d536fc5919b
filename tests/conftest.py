"""Shared fixtures: the backend under test (SQLite + SQL store, or PostgreSQL + Redis).

`IDP_TEST_BACKEND=sqlite` (default) or `postgres`. Under `CI=true` a missing PostgreSQL or Redis
is an error, not a skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

BACKEND = os.environ.get("IDP_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("IDP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(what: str, exc: Exception) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but unreachable: {exc}", pytrace=False)
    pytest.skip(f"{what} unreachable: {exc}")


@pytest.fixture(scope="session")
def backend() -> str:
    return BACKEND


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty database for this test session."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("db") / "idp.sqlite3"
        yield f"sqlite:///{path}"
        return
    import sqlalchemy as sa

    name = f"idp_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means the service is missing
        _unavailable("PostgreSQL", exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    """The Redis URL for the postgres backend; None (SQL ephemeral store) for sqlite."""
    if BACKEND == "sqlite":
        return None
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable("Redis", exc)
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to one test, so tests never see each other's Redis keys."""
    return f"idptest:{secrets.token_hex(4)}:"


# -- the provider, on the backend under test ------------------------------------------------------

ISSUER = "http://idp.test"


@pytest.fixture(scope="session")
def migrated_database_url(database_url: str) -> str:
    from idp.store.migrate import upgrade_database

    upgrade_database(database_url)
    return database_url


@pytest.fixture
def settings(migrated_database_url: str, redis_url: str | None, redis_prefix: str, tmp_path_factory):
    from idp.settings import Settings

    key_dir = tmp_path_factory.getbasetemp() / "keys"
    return Settings(
        issuer=ISSUER,
        database_url=migrated_database_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        key_dir=str(key_dir),
        password_time_cost=1,
        password_memory_kib=1024,
        allow_private_network=True,
    )


def _empty_tables(url: str) -> None:
    import sqlalchemy as sa

    from idp.store import models  # noqa: F401
    from idp.store.db import Base

    engine = sa.create_engine(url)
    tables = [t.name for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if url.startswith("postgresql"):
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:
            for name in tables:
                conn.execute(sa.text(f"DELETE FROM {name}"))
    engine.dispose()


@pytest.fixture
def services(settings):
    from idp.app import build_services

    _empty_tables(settings.database_url)
    built = build_services(settings)
    yield built
    built.audit.close()
    built.tokens.dispose()  # each test's pool closed now, not at garbage collection
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(settings.redis_url)
        keys = list(client.scan_iter(f"{settings.redis_prefix}*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def app(settings, services):
    from idp.app import create_app

    application = create_app(settings, services)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def reference_registers() -> Iterator[str]:
    """The reference population and enterprise registers, served over real HTTP on a free port."""
    import threading

    from werkzeug.serving import make_server

    from registers.app import create_app as create_registers

    server = make_server("127.0.0.1", 0, create_registers(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


# -- a provider served over real HTTP (tests/live, tests/browser) ----------------------------------


@pytest.fixture
def live_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def live_settings(settings, live_port: int):
    return settings.with_overrides(issuer=f"http://127.0.0.1:{live_port}")


@pytest.fixture
def live_services(services, live_settings):
    """Services with the live issuer, on tables that `services` has just emptied."""
    from idp.app import build_services

    built = build_services(live_settings)
    built.keys.ensure_keys()  # before the workers start, so they do not race to create keys
    yield built
    built.tokens.dispose()
