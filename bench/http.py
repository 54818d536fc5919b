"""Minimal keep-alive HTTP/1.1 client on asyncio protocols, built for a low per-request cost."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

USER_AGENT = "oidc-bench/1"
_MAX_HEAD = 64 * 1024


class ConnectionClosed(ConnectionError):
    """The server closed the connection before a complete response arrived."""

    def __init__(self, got_bytes: bool) -> None:
        super().__init__("connection closed before a complete response" + (" (partial)" if got_bytes else ""))
        self.got_bytes = got_bytes


class ProtocolError(Exception):
    """The server sent something that is not a parsable HTTP/1.x response."""


class Response:
    """A complete response; headers are parsed from the raw head only when asked for."""

    __slots__ = ("status", "body", "_raw_head", "_headers")

    def __init__(self, status: int, raw_head: bytes, body: bytes) -> None:
        self.status = status
        self.body = body
        self._raw_head = raw_head
        self._headers: list[tuple[str, str]] | None = None

    @property
    def headers(self) -> list[tuple[str, str]]:
        """(lower-cased name, value) pairs in order."""
        if self._headers is None:
            pairs = []
            for line in self._raw_head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                pairs.append((name.strip().lower().decode("latin-1"), value.strip().decode("latin-1")))
            self._headers = pairs
        return self._headers

    def header(self, name: str) -> str | None:
        key = name.lower()
        return next((v for k, v in self.headers if k == key), None)

    def header_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self.headers if k == key]

    def json(self) -> Any:
        return json.loads(self.body)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(slots=True)
class _Head:
    status: int
    raw: bytes
    length: int | None
    chunked: bool
    close: bool


def _header_value(low_head: bytes, name: bytes) -> bytes | None:
    """The (lower-cased) value of the first `name` header in a lower-cased response head."""
    i = low_head.find(b"\r\n" + name + b":")
    if i < 0:
        return None
    i += len(name) + 3
    j = low_head.find(b"\r\n", i)
    return low_head[i : j if j >= 0 else None].strip()


def _scan_head(raw: bytes, head_request: bool) -> _Head | None:
    """Framing of one response head (no trailing blank line); None for a 1xx interim response."""
    if not raw.startswith(b"HTTP/1.") or len(raw) < 12:
        raise ProtocolError(f"bad status line {raw[:80]!r}")
    status = int(raw[9:12])
    if 100 <= status < 200:
        return None
    low = raw.lower()
    length_value = _header_value(low, b"content-length")
    length = int(length_value) if length_value is not None else None
    encoding = _header_value(low, b"transfer-encoding")
    chunked = encoding is not None and b"chunked" in encoding
    connection = _header_value(low, b"connection") or b""
    close = b"close" in connection or (raw[7:8] == b"0" and b"keep-alive" not in connection)
    if head_request or status in (204, 304):
        length, chunked = 0, False
    if chunked:
        length = None
    return _Head(status, raw, length, chunked, close)


def _parse_chunked(buf: bytearray) -> tuple[bytes | None, int]:
    """Decode a complete chunked body at the start of buf: (body, bytes consumed) or (None, 0)."""
    out = bytearray()
    pos = 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None, 0
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip(), 16)
        pos = eol + 2
        if size == 0:
            if buf[pos : pos + 2] == b"\r\n":
                return bytes(out), pos + 2
            end = buf.find(b"\r\n\r\n", pos)  # trailers
            if end < 0:
                return None, 0
            return bytes(out), end + 4
        if len(buf) < pos + size + 2:
            return None, 0
        out += buf[pos : pos + size]
        pos += size + 2


class _Proto(asyncio.Protocol):
    """One TCP connection; at most one request in flight (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self.head_request = False
        self.got_bytes = False
        self.deadline = 0.0
        self._head: _Head | None = None
        _live.add(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            self.buf += data
            return
        try:
            if not self.buf and self._head is None and self._fast(waiter, data):
                return
            self.buf += data
            self._parse(waiter)
        except (ProtocolError, ValueError) as exc:  # malformed response: fail it, drop the connection
            self._abort(waiter, exc)

    def _fast(self, waiter: asyncio.Future[Response], data: bytes) -> bool:
        """A whole Content-Length response in one chunk, without buffering; False to fall back."""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = _scan_head(data[:end], self.head_request)
        if head is None or head.length is None:
            return False
        stop = end + 4 + head.length
        if len(data) < stop:
            return False
        if len(data) > stop:
            self.buf += data[stop:]
        self._finish(waiter, head, data[end + 4 : stop])
        return True

    def eof_received(self) -> bool | None:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        head = self._head
        if head is not None and head.length is None and not head.chunked:  # body delimited by close
            self._finish(waiter, head, bytes(self.buf))
            return
        waiter.set_exception(ConnectionClosed(self.got_bytes))

    def _abort(self, waiter: asyncio.Future[Response], exc: Exception) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        if not waiter.done():
            waiter.set_exception(exc)

    def _finish(self, waiter: asyncio.Future[Response], head: _Head, body: bytes) -> None:
        self._head = None
        self.waiter = None
        if head.close:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
        waiter.set_result(Response(head.status, head.raw, body))

    def _parse(self, waiter: asyncio.Future[Response]) -> None:
        buf = self.buf
        head = self._head
        while head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise ProtocolError("response head too large")
                return
            raw = bytes(buf[:end])
            del buf[: end + 4]
            head = self._head = _scan_head(raw, self.head_request)
        if head.chunked:
            body, used = _parse_chunked(buf)
            if body is None:
                return
            del buf[:used]
        elif head.length is not None:
            if len(buf) < head.length:
                return
            body = bytes(buf[: head.length])
            del buf[: head.length]
        else:
            return  # read until the server closes
        self._finish(waiter, head, body)


class Connection:
    """A reconnecting keep-alive connection to one server (host, port)."""

    def __init__(self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls
        self._proto: _Proto | None = None
        self.connects = 0

    async def _connect(self) -> _Proto:
        loop = asyncio.get_running_loop()
        _, proto = await asyncio.wait_for(
            loop.create_connection(_Proto, self.host, self.port, ssl=self.tls), timeout=self.timeout
        )
        self.connects += 1
        self._proto = proto
        return proto

    def close(self) -> None:
        proto = self._proto
        self._proto = None
        if proto is not None and proto.transport is not None:
            proto.transport.close()

    async def send(self, data: bytes, *, head: bool = False) -> Response:
        """Send one pre-built request and wait for its response.

        A reused keep-alive connection that turns out to be closed before any response byte
        arrived (the server dropped an idle connection) is retried once on a fresh connection.
        """
        loop = asyncio.get_running_loop()
        for attempt in (0, 1):
            proto = self._proto
            fresh = proto is None or proto.closed
            if proto is None or proto.closed:
                proto = await self._connect()
            assert proto.transport is not None
            waiter: asyncio.Future[Response] = loop.create_future()
            proto.waiter = waiter
            proto.head_request = head
            proto.got_bytes = False
            proto.deadline = loop.time() + self.timeout
            if loop not in _watchdogs:
                _watchdogs[loop] = loop.create_task(_watchdog())
            proto.transport.write(data)
            if proto.buf:  # bytes that arrived unsolicited: parse them now
                proto.data_received(b"")
            try:
                return await waiter
            except ConnectionClosed as exc:
                self.close()
                if attempt == 0 and not fresh and not exc.got_bytes:
                    continue
                raise
            except BaseException:  # timeout, protocol error, cancellation: never reuse this socket
                self.close()
                raise
        raise AssertionError("unreachable")


# One timer per request costs more than the rest of the client; a per-loop watchdog scans instead.
_WATCH_INTERVAL = 0.25
_live: weakref.WeakSet[_Proto] = weakref.WeakSet()
_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)


async def _watchdog() -> None:
    """Fail requests whose deadline passed (precision: _WATCH_INTERVAL)."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(_WATCH_INTERVAL)
        now = loop.time()
        for proto in list(_live):
            waiter = proto.waiter
            if waiter is not None and not waiter.done() and proto.deadline <= now:
                waiter.set_exception(TimeoutError("no complete response within the timeout"))


def build_request(
    method: str,
    target: str,
    host: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | None = None,
) -> bytes:
    """Serialise one HTTP/1.1 request (keep-alive is the HTTP/1.1 default)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"User-Agent: {USER_AGENT}", "Accept: */*"]
    lines.extend(f"{k}: {v}" for k, v in headers)
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def target_of(url: str) -> str:
    """The request target (path and query) of an absolute or relative URL."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


class CookieJar:
    """Name -> value cookies for a single origin (paths and domains are not tracked)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def update(self, response: Response) -> None:
        for raw in response.header_all("set-cookie"):
            first, *attrs = raw.split(";")
            name, sep, value = first.partition("=")
            if not sep:
                continue
            max_age: int | None = None
            expires: float | None = None
            for attr in attrs:
                key, _, val = attr.strip().partition("=")
                key = key.lower()
                try:
                    if key == "max-age":
                        max_age = int(val)
                    elif key == "expires":
                        expires = parsedate_to_datetime(val).timestamp()
                except (ValueError, TypeError):
                    pass
            expired = max_age <= 0 if max_age is not None else (expires is not None and expires < time.time())
            if expired:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value.strip()

    def header(self) -> list[tuple[str, str]]:
        if not self.cookies:
            return []
        return [("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))]
