"""Run the reference register service: `python -m registers --port 8100` (REGISTER_TOKEN: optional bearer token)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from werkzeug.serving import make_server

from registers.app import DEFAULT_DATA, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m registers", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8100, help="port to listen on (default 8100)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="register data (JSON)")
    args = parser.parse_args(argv)

    data = json.loads(args.data.read_text(encoding="utf-8"))
    token = os.environ.get("REGISTER_TOKEN") or None
    server = make_server(args.host, args.port, create_app(data, token=token), threaded=True)
    print(
        f"Reference registers on http://{args.host}:{server.server_port} "
        f"({len(data.get('persons', []))} persons, {len(data.get('entities', []))} entities"
        f"{', bearer token required' if token else ''})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
