"""The four servers of the end-to-end story, each a werkzeug server in a thread of this process: the
provider (`create_app(live_settings, live_services)` on live_port, so a test can rotate keys, revoke
authority and deliver the logout outbox on the very same services), and the catalogue, certificate and
case services on free ports with SQLite databases in tmp_path, registered at the provider as clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import (
    COMPANY,
    FOOD_PERMIT,
    LISI,
    MARKET,
    OFFICERS,
    USCC,
    ZHANGSAN,
    World,
    free_port,
    serve,
)
from flask import Flask

from adapters.rp_kit import RelyingParty

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def live_settings(live_settings: Any, reference_registers: str) -> Any:
    """The enterprise register for entity verification; a rotated key signs 2 s after publication and
    nodes read keys uncached, so the key-rotation test is quick."""
    return live_settings.with_overrides(
        enterprise_register_url=reference_registers, key_rotation_overlap=2, key_cache_seconds=0
    )


def secret(name: str) -> str:
    return f"{name}-secret-0123456789-0123456789-0123"


def web_client(client_id: str, url: str, scope: str, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_name": client_id,
        "client_secret": secret(client_id),
        "redirect_uris": [f"{url}/oidc/callback"],
        "post_logout_redirect_uris": [f"{url}/"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": scope,
        "first_party": True,
        "backchannel_logout_uri": f"{url}/oidc/backchannel-logout",
        **extra,
    }


def service_account(client_id: str, scope: str, audience: str) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_name": client_id,
        "client_secret": secret(client_id),
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": scope,
        # client credentials with `audience=<client_id>`: a token for another service (aud = it)
        "audiences": [{"audience": audience, "scopes": scope.split()}],
    }


def food_permit_item() -> dict[str, Any]:
    """The demo catalogue's food-operation permit, asking for the applicant's business licence (an
    e-certificate) and the application form."""
    demo = json.loads((ROOT / "adapters/catalogue/demo_items.json").read_text(encoding="utf-8"))
    item = next(i for i in demo["items"] if i["code"] == FOOD_PERMIT)
    licence = next(m for m in item["materials"] if m.get("licence_type") == "business_licence")
    item = {k: v for k, v in item.items() if k != "implementations"}
    item["materials"] = [{"name": "食品经营许可申请书", "required": True}, licence]
    return item


@pytest.fixture
def world(
    live_settings: Any, live_services: Any, live_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    from adapters.cases import create_app as cases_app
    from adapters.catalogue import create_app as catalogue_app
    from adapters.catalogue import seed as seed_catalogue
    from adapters.certificates import create_app as certificates_app
    from adapters.certificates import seed as seed_certificates
    from idp.app import create_app as provider_app

    servers = []
    provider, server = serve(provider_app(live_settings, live_services), live_port)
    servers.append(server)
    assert provider == live_settings.issuer

    ports = {name: free_port() for name in ("catalogue", "certificates", "cases")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    clients = {
        "catalogue": web_client("catalogue", urls["catalogue"], "openid profile catalogue:write"),
        "certificates": web_client(
            "certificates", urls["certificates"], "openid profile entity certificates:read"
        ),
        "cases": web_client(
            "cases",
            urls["cases"],
            "openid profile entity certificates:read",
            token_exchange=[{"audience": "certificates", "scopes": ["certificates:read"]}],
        ),
        MARKET: service_account(MARKET, "certificates:issue", "certificates"),
        OFFICERS: service_account(OFFICERS, "cases:handle", "cases"),
    }
    for metadata in clients.values():
        live_services.clients.register(metadata)

    # Persons, verified (an operator's upsert with the identity number), and the company.
    zhangsan = live_services.persons.upsert(ZHANGSAN)
    lisi = live_services.persons.upsert(LISI)
    entities = live_services.entities
    company = entities.create_entity(USCC, COMPANY)
    company = entities.verify_entity(company.id)  # the register names 张三 as legal representative
    assert company.status.value == "verified"
    [represents] = entities.acting_options(zhangsan.id)
    assert represents.entity_id == company.id and represents.role.value == "legal_representative"
    agent = entities.grant_agent(company.id, lisi.id, ["cases:apply", "certificates:read"], None, zhangsan.id)

    # The services re-read the provider's JWKS at most once a second (not the kit's 30 s), so that a key
    # rotation is picked up within the test; the adapters do not expose the setting.
    monkeypatch.setitem(RelyingParty.__init__.__kwdefaults__, "jwks_min_refetch_seconds", 1.0)
    apps: dict[str, Flask] = {}
    apps["catalogue"] = catalogue_app(
        {
            "CATALOGUE_DATABASE_URL": f"sqlite:///{tmp_path / 'catalogue.sqlite3'}",
            "CATALOGUE_ISSUER": provider,
            "CATALOGUE_CLIENT_ID": "catalogue",
            "CATALOGUE_CLIENT_SECRET": secret("catalogue"),
            "CATALOGUE_BASE_URL": urls["catalogue"],
            "CATALOGUE_SECRET_KEY": "e2e-catalogue",
        }
    )
    add_session_probe(apps["catalogue"])
    seed_catalogue(apps["catalogue"], {"items": [food_permit_item()]})
    apps["certificates"] = certificates_app(
        {
            "CERTS_DATABASE_URL": f"sqlite:///{tmp_path / 'certificates.sqlite3'}",
            "CERTS_ISSUER": provider,
            "CERTS_CLIENT_ID": "certificates",
            "CERTS_CLIENT_SECRET": secret("certificates"),
            "CERTS_BASE_URL": urls["certificates"],
            "CERTS_SECRET_KEY": "e2e-certificates",
            "CERTS_ISSUER_CLIENTS": f"{MARKET}=SAMR-FZ",
            "CERTS_KEY_DIR": str(tmp_path / "certificates-keys"),
        }
    )
    seed_certificates(
        apps["certificates"], {"issuers": [{"code": "SAMR-FZ", "name": "福州市市场监督管理局"}]}
    )
    apps["cases"] = cases_app(
        {
            "CASES_DATABASE_URL": f"sqlite:///{tmp_path / 'cases.sqlite3'}",
            "CASES_ISSUER": provider,
            "CASES_CLIENT_ID": "cases",
            "CASES_CLIENT_SECRET": secret("cases"),
            "CASES_BASE_URL": urls["cases"],
            "CASES_SECRET_KEY": "e2e-cases",
            "CASES_CATALOGUE_URL": urls["catalogue"],
            "CASES_CERTIFICATES_URL": urls["certificates"],
            "CASES_CERTIFICATES_CLIENT_ID": "certificates",
        }
    )
    for name, app in apps.items():
        servers.append(serve(app, ports[name])[1])

    yield World(
        provider=provider,
        services=live_services,
        catalogue=urls["catalogue"],
        certificates=urls["certificates"],
        cases=urls["cases"],
        apps=apps,
        clients=clients,
        entity_id=company.id,
        zhangsan_id=zhangsan.id,
        lisi_id=lisi.id,
        agent_authorisation_id=agent.id,
    )
    for server in reversed(servers):
        server.shutdown()
        server.server_close()


def add_session_probe(app: Flask) -> None:
    """The catalogue's pages are all public, so it has no page behind login; this test-only page is
    one, to see whether the catalogue still holds the person's login session."""
    rp: RelyingParty = app.extensions["rp_kit"]

    @rp.require_login
    def probe() -> Any:
        user = rp.current_user() or {}
        return {"sub": user.get("sub"), "name": user.get("name")}

    app.add_url_rule("/e2e/session", "e2e_session", probe)
