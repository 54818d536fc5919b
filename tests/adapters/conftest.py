"""Fixtures for the kit's tests: fresh keys, and the fake provider served over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kit_platform import FakeProvider, make_key
from werkzeug.serving import make_server


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, Any]:
    return {"rsa": make_key(), "rsa2": make_key(), "ec": make_key("EC"), "stranger": make_key()}


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProvider]:
    fake = FakeProvider()
    server = make_server("127.0.0.1", 0, fake.app(), threaded=True)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield fake
    server.shutdown()


@pytest.fixture
def fake_provider(fake_provider_server: FakeProvider, signing_keys: dict[str, Any]) -> FakeProvider:
    """The session's fake provider, reset: publishing the RSA and EC keys, nothing requested yet."""
    fresh = FakeProvider(url=fake_provider_server.url, published=[signing_keys["rsa"], signing_keys["ec"]])
    fake_provider_server.__dict__.update(fresh.__dict__)
    return fake_provider_server
