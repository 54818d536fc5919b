"""Outgoing HTTP to platforms, behind an SSRF guard (no private or loopback targets unless allowed).

The guard runs where the connection is made, on the addresses the socket then connects to: a name is
resolved once per connection, every address it gives must be public, and the connection goes to one
of exactly those addresses. Checking a name first and letting the HTTP library resolve it again
would leave a DNS-rebinding window (a short-TTL name that answers a public address to the check
and 127.0.0.1 to the connect)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import requests


class OutboundRefused(Exception):
    """The target address is not allowed by the SSRF guard."""


def is_public(address: str) -> bool:
    return ipaddress.ip_address(address).is_global


def public_addresses(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, in resolver order, if every one is public; else refused."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise OutboundRefused(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        if not is_public(address):
            raise OutboundRefused(f"{host} resolves to a non-public address {address}")
    if not addresses:
        raise OutboundRefused(f"cannot resolve {host}: no address")
    return addresses


def guarded_session() -> requests.Session:
    """A requests session whose every new connection goes only to a public address that the guard
    itself resolved (`public_addresses`). No proxy from the environment: it would route around it."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
    from urllib3.util import connection

    class GuardedConnect(HTTPConnection):
        """Replaces urllib3's `_new_conn`, which would resolve the name itself."""

        def _new_conn(self) -> socket.socket:
            error: Exception | None = None
            for address in public_addresses(self.host, self.port):
                try:
                    return connection.create_connection(
                        (address, self.port),
                        self.timeout,
                        source_address=self.source_address,
                        socket_options=self.socket_options,
                    )
                except TimeoutError as exc:
                    error = ConnectTimeoutError(
                        self, f"Connection to {self.host} ({address}) timed out: {exc}"
                    )
                except OSError as exc:
                    error = NewConnectionError(self, f"Failed to connect to {self.host} ({address}): {exc}")
            assert error is not None  # public_addresses returns at least one address
            raise error

    class GuardedHTTPSConnection(GuardedConnect, HTTPSConnection):
        pass  # TLS still names and verifies the host: only the socket's address is chosen here

    class GuardedHTTPPool(HTTPConnectionPool):
        ConnectionCls = GuardedConnect

    class GuardedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}

    session = requests.Session()
    session.trust_env = False
    session.mount("http://", GuardedAdapter())
    session.mount("https://", GuardedAdapter())
    return session


class OutboundHttp:
    def __init__(self, *, allow_private_network: bool, timeout: float = 5.0) -> None:
        self._allow_private = allow_private_network
        self._timeout = timeout
        self._session_lock = threading.Lock()
        self._http: requests.Session | None = None

    @property
    def _session(self) -> requests.Session:
        """Made at the first delivery: requests (5 MiB a worker) is loaded only where logouts are sent."""
        with self._session_lock:
            if self._http is None:
                if self._allow_private:
                    import requests

                    self._http = requests.Session()
                    self._http.trust_env = False
                else:
                    self._http = guarded_session()
            return self._http

    def check_target(self, url: str) -> None:
        """Refuse what is not an http(s) URL with a host (the addresses are checked at connect)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboundRefused(f"not an http(s) URL: {url}")

    def post_form(self, url: str, data: dict[str, str]) -> int:
        """POST a form and return the status code; refuses guarded targets and never follows redirects."""
        self.check_target(url)
        response = self._session.post(url, data=data, timeout=self._timeout, allow_redirects=False)
        return response.status_code
