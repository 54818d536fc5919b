"""Live fixtures: the provider in a real gunicorn process on a free port, and a back-channel receiver.

Each test starts clean: the `services` fixture empties the tables (and drops this test's Redis keys);
the provider is then provisioned in this process through `build_services(live_settings)` and served
by a fresh gunicorn whose issuer matches its port.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from live_helpers import LiveServer, Receiver, free_port, start_gunicorn


@pytest.fixture
def live_port() -> int:
    return free_port()


@pytest.fixture
def live_settings(settings: Any, live_port: int) -> Any:
    return settings.with_overrides(issuer=f"http://127.0.0.1:{live_port}")


@pytest.fixture
def live_services(services: Any, live_settings: Any) -> Iterator[Any]:
    """Services with the live issuer, on tables that `services` has just emptied."""
    from idp.app import build_services

    built = build_services(live_settings)
    built.keys.ensure_keys()  # before the workers start, so they do not race to create keys
    yield built
    built.tokens.engine().dispose()


@pytest.fixture
def gunicorn_workers() -> int:
    return 2


@pytest.fixture
def gunicorn_threads() -> int:
    return 4


@pytest.fixture
def live_server(
    live_settings: Any,
    live_services: Any,
    live_port: int,
    gunicorn_workers: int,
    gunicorn_threads: int,
    tmp_path: Any,
) -> Iterator[LiveServer]:
    server = start_gunicorn(
        live_settings, live_port, tmp_path, workers=gunicorn_workers, threads=gunicorn_threads
    )
    try:
        yield server
    finally:
        server.stop()
        tail = server.log_tail()
        if "Traceback" in tail or "ERROR" in tail:
            print(f"--- gunicorn log ---\n{tail}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    try:
        yield started
    finally:
        started.stop()
