"""A do-nothing keep-alive HTTP server (canned 200 for every request) to measure the driver's ceiling."""

from __future__ import annotations

import argparse
import asyncio
import socket

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


class _NullProtocol(asyncio.Protocol):
    """Answers every complete request head, `delay` seconds later; requests with bodies are not supported."""

    def __init__(self, delay: float = 0.0) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.delay = delay

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        count = self.buf.count(b"\r\n\r\n")
        if count and self.transport is not None:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4 :]
            if self.delay > 0:
                asyncio.get_running_loop().call_later(self.delay, self._reply, count)
            else:
                self.transport.write(RESPONSE * count)

    def _reply(self, count: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE * count)


async def serve(sock: socket.socket, delay: float = 0.0) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _NullProtocol(delay), sock=sock, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", help="write the bound port here once listening")
    parser.add_argument(
        "--delay-ms", type=float, default=0.0, help="answer each request this late (a slow server, for tests)"
    )
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(1024)
    port = sock.getsockname()[1]
    print(f"nullserver listening on {args.host}:{port}", flush=True)
    if args.ready_file:
        with open(args.ready_file, "w", encoding="ascii") as fh:
            fh.write(str(port))
    try:
        asyncio.run(serve(sock, args.delay_ms / 1000.0))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
