"""`make run`: the provider on :5000, the demo portal on :8001 and the reference registers on :8100."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from werkzeug.serving import make_server, run_simple

from demo.portal import create_portal
from idp.app import create_app
from idp.settings import Settings
from registers.app import create_app as create_registers


def main() -> None:
    seed = json.loads((Path(__file__).with_name("seed.json")).read_text(encoding="utf-8"))
    portal_client = next(c for c in seed["clients"] if c["client_id"] == "demo-portal")
    portal = make_server(
        "127.0.0.1",
        8001,
        create_portal(portal_client["client_id"], portal_client["client_secret"]),
        threaded=True,
    )
    threading.Thread(target=portal.serve_forever, name="demo-portal", daemon=True).start()
    registers = make_server("127.0.0.1", 8100, create_registers(), threaded=True)
    threading.Thread(target=registers.serve_forever, name="registers", daemon=True).start()
    register_url = "http://127.0.0.1:8100"
    settings = Settings.from_env()
    settings = settings.with_overrides(
        population_register_url=settings.population_register_url or register_url,
        enterprise_register_url=settings.enterprise_register_url or register_url,
    )
    run_simple("127.0.0.1", 5000, create_app(settings), threaded=True)


if __name__ == "__main__":
    main()
