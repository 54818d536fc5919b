"""Outgoing HTTP to platforms, behind an SSRF guard (no private or loopback targets unless allowed)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import requests


class OutboundRefused(Exception):
    """The target address is not allowed by the SSRF guard."""


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
                import requests

                self._http = requests.Session()
                self._http.trust_env = False  # no proxy from the environment may route around the guard
            return self._http

    def check_target(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboundRefused(f"not an http(s) URL: {url}")
        if self._allow_private:
            return
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise OutboundRefused(f"cannot resolve {parts.hostname}: {exc}") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise OutboundRefused(f"{parts.hostname} resolves to a non-public address {address}")

    def post_form(self, url: str, data: dict[str, str]) -> int:
        """POST a form and return the status code; refuses guarded targets and never follows redirects."""
        self.check_target(url)
        response = self._session.post(url, data=data, timeout=self._timeout, allow_redirects=False)
        return response.status_code
