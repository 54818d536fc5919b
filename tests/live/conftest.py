"""Live fixtures: the provider in a real gunicorn process on a free port, and a back-channel receiver.

Each test starts clean: the `services` fixture empties the tables (and drops this test's Redis keys);
the provider is then provisioned in this process through `build_services(live_settings)` and served
by a fresh gunicorn whose issuer matches its port.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from live_helpers import LiveServer, Receiver, start_gunicorn


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
