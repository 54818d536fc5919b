"""Source fixtures: a real slapd on a free loopback port, and the reference register service over HTTP.

slapd comes from the Debian package (`scripts/install-system-packages.sh`). When it is missing the LDAP
tests are skipped, and under `CI=true` they fail instead.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from source_servers import (
    READER_DN,
    READER_PASSWORD,
    SUFFIX,
    HttpServer,
    Slapd,
    make_slapd,
    serve_wsgi,
)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    """The directory shared by the LDAP tests; started once, stopped at the end of the session."""
    server = make_slapd(tmp_path_factory.mktemp("slapd")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_slapd(tmp_path: Path) -> Iterator[Slapd]:
    """A directory of this test's own, which the test may stop."""
    server = make_slapd(tmp_path / "slapd").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["ldaps", "starttls"])
def tls_slapd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Slapd]:
    """A directory of this test's own with a certificate from a throwaway test CA: ldaps://, or StartTLS."""
    server = make_slapd(tmp_path / "slapd", tls=request.param).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ldap_source_factory(slapd: Slapd) -> Callable[..., Any]:
    """Build an LdapSource on the shared slapd, with the service account; keywords override."""
    from idp.sources.ldap import LdapSource

    def build(**overrides: Any) -> LdapSource:
        kwargs: dict[str, Any] = {
            "url": slapd.url,
            "base_dn": SUFFIX,
            "bind_dn": READER_DN,
            "bind_password": READER_PASSWORD,
            "timeout": 2.0,
        }
        kwargs.update(overrides)
        return LdapSource(**kwargs)

    return build


# -- TCP and HTTP servers -------------------------------------------------------------------------


@pytest.fixture
def silent_tcp_server() -> Iterator[int]:
    """A port that accepts TCP connections and never answers a byte; its port number."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        listener.close()


@pytest.fixture(scope="session")
def register_url() -> Iterator[str]:
    """The reference register service (registers/data.json), as a real HTTP server."""
    from registers.app import create_app

    served = serve_wsgi(create_app())
    try:
        yield served.url
    finally:
        served.stop()


@pytest.fixture
def wsgi_server() -> Iterator[Callable[[Any], str]]:
    """Serve any WSGI app for this test; returns its base URL."""
    started: list[HttpServer] = []

    def serve(app: Any) -> str:
        served = serve_wsgi(app)
        started.append(served)
        return served.url

    yield serve
    for served in started:
        served.stop()
