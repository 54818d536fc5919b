"""`make run`: the provider on :5000 and, around it, everything it serves in the demo.

    :8001  the demo portal (demo/portal.py)
    :8100  the reference population and enterprise registers (registers/)
    :8200  the item catalogue (adapters/catalogue), :8300 the e-certificates (adapters/certificates),
    :8400  the case service (adapters/cases): relying parties with their own SQLite files under var/

The seed (demo/seed.json) is provisioned here, once the registers answer, so the demo company is
verified against the enterprise register. The services fetch the provider's discovery document on
their first sign-in, so they are built before the provider, which starts last (run_simple blocks).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import click
from flask import Flask
from werkzeug.serving import make_server, run_simple

from adapters.cases import create_app as create_cases
from adapters.catalogue.app import create_app as create_catalogue
from adapters.catalogue.app import load_demo_items
from adapters.catalogue.app import seed as seed_catalogue
from adapters.certificates import create_app as create_certificates
from adapters.certificates import seed as seed_certificates
from demo.portal import create_portal
from idp.app import build_services, create_app
from idp.cli import provision_document
from idp.services.provider import ProviderServices
from idp.settings import Settings
from registers.app import create_app as create_registers

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var"
ISSUER = "http://127.0.0.1:5000"
REGISTERS = "http://127.0.0.1:8100"
CATALOGUE, CERTIFICATES, CASES = "http://127.0.0.1:8200", "http://127.0.0.1:8300", "http://127.0.0.1:8400"
MARKET_BUREAU = "fz-amr"  # the department code the certificate service signs market-bureau's licences with


def serve(app: Flask, port: int, name: str) -> None:
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()


def secret_of(seed: dict[str, Any], client_id: str) -> str:
    return str(next(c for c in seed["clients"] if c["client_id"] == client_id)["client_secret"])


def demo_licences(company: dict[str, Any], zhangsan_sub: str) -> dict[str, Any]:
    """The company's business licence and a personal licence for 张三 (held by his provider `sub`)."""
    return {
        "issuers": [
            {"code": MARKET_BUREAU, "name": "福州市市场监督管理局"},
            {"code": "fz-traffic", "name": "福州市公安局交通警察支队"},
        ],
        "licences": [
            {
                "issuer": MARKET_BUREAU,
                "licence_type": "business_licence",
                "number": company["uscc"],  # a business licence is numbered by the USCC
                "holder_type": "entity",
                "holder_id": company["uscc"],
                "holder_name": company["name"],
                "valid_from": "2019-03-01",
                "valid_until": None,  # 长期
            },
            {
                "issuer": "fz-traffic",
                "licence_type": "driving_licence",
                "number": "350100201000123",
                "holder_type": "person",
                "holder_id": zhangsan_sub,
                "holder_name": "张三",
                "valid_from": "2020-06-01",
                "valid_until": "2030-06-01",
            },
        ],
    }


def person_id(services: ProviderServices, username: str) -> str:
    return next(p.id for p in services.persons.search(username) if p.username == username)


def main() -> None:
    seed = json.loads((Path(__file__).with_name("seed.json")).read_text(encoding="utf-8"))
    serve(create_portal("demo-portal", secret_of(seed, "demo-portal")), 8001, "demo-portal")
    serve(create_registers(), 8100, "registers")

    settings = Settings.from_env()
    settings = settings.with_overrides(
        population_register_url=settings.population_register_url or REGISTERS,
        enterprise_register_url=settings.enterprise_register_url or REGISTERS,
    )
    services = build_services(settings)
    try:
        for line in provision_document(services, seed):
            print(f"  provisioned {line}")
    except click.ClickException as exc:
        sys.exit(f"demo/seed.json: {exc.message}")

    VAR.mkdir(exist_ok=True)
    catalogue = create_catalogue(
        {
            "CATALOGUE_DATABASE_URL": f"sqlite:///{VAR / 'catalogue.sqlite3'}",
            "CATALOGUE_ISSUER": ISSUER,
            "CATALOGUE_CLIENT_ID": "catalogue",
            "CATALOGUE_CLIENT_SECRET": secret_of(seed, "catalogue"),
            "CATALOGUE_BASE_URL": CATALOGUE,
        }
    )
    seed_catalogue(catalogue, load_demo_items())
    certificates = create_certificates(
        {
            "CERTS_DATABASE_URL": f"sqlite:///{VAR / 'certificates.sqlite3'}",
            "CERTS_ISSUER": ISSUER,
            "CERTS_CLIENT_ID": "certificates",
            "CERTS_CLIENT_SECRET": secret_of(seed, "certificates"),
            "CERTS_BASE_URL": CERTIFICATES,
            "CERTS_ISSUER_CLIENTS": {"market-bureau": MARKET_BUREAU},
            "CERTS_KEY_DIR": str(ROOT / "keys" / "certificates"),
        }
    )
    company = seed["legal_entities"][0]
    seed_certificates(certificates, demo_licences(company, person_id(services, "zhangsan")))
    cases = create_cases(
        {
            "CASES_DATABASE_URL": f"sqlite:///{VAR / 'cases.sqlite3'}",
            "CASES_ISSUER": ISSUER,
            "CASES_CLIENT_ID": "cases",
            "CASES_CLIENT_SECRET": secret_of(seed, "cases"),
            "CASES_BASE_URL": CASES,
            "CASES_CATALOGUE_URL": CATALOGUE,
            "CASES_CERTIFICATES_URL": CERTIFICATES,
            "CASES_CERTIFICATES_CLIENT_ID": "certificates",  # the token-exchange audience
        }
    )
    serve(catalogue, 8200, "catalogue")
    serve(certificates, 8300, "certificates")
    serve(cases, 8400, "cases")
    run_simple("127.0.0.1", 5000, create_app(settings, services), threaded=True)


if __name__ == "__main__":
    main()
