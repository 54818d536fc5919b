"""A do-nothing keep-alive HTTP server (canned 200 for every request) to measure the driver's ceiling."""

from __future__ import annotations

import argparse
import asyncio
import socket

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


class _NullProtocol(asyncio.Protocol):
    """Answers every complete request head; requests with bodies are not supported."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        count = self.buf.count(b"\r\n\r\n")
        if count and self.transport is not None:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * count)


async def serve(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_NullProtocol, sock=sock, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", help="write the bound port here once listening")
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
        asyncio.run(serve(sock))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
