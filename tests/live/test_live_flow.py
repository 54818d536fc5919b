"""Full flows over real HTTP against gunicorn, driven by Authlib's OAuth2 client and a requests browser."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from authlib.common.security import generate_token
from flows import PERSON
from live_helpers import (
    ROOT,
    SECRET_A,
    TIMEOUT,
    browse_to_redirect,
    clients,
    discover,
    fetch_jwks,
    query_of,
    relying_party,
    server_environment,
    verify_id_token,
    verify_logout_token,
)
from sqlalchemy import create_engine, select
from sqlalchemy.orm import sessionmaker

from idp.services.logout import LogoutService
from idp.services.outbound import OutboundHttp
from idp.store.models import LogoutOutboxRow


def sign_in(
    browser: requests.Session, metadata: dict[str, Any], client: dict[str, Any], **extra: str
) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """The authorization code flow with PKCE, state and nonce; returns (rp, token, the sent params)."""
    rp = relying_party(client, scope=extra.pop("scope", "openid profile email"))
    verifier = generate_token(48)
    nonce = secrets.token_urlsafe(12)
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce, **extra
    )
    location = browse_to_redirect(browser, url, client["redirect_uris"][0])
    result = query_of(location)
    assert result.get("iss") == metadata["issuer"], result
    assert result.get("state") == state, result
    assert "code" in result, result
    token = rp.fetch_token(
        metadata["token_endpoint"],
        authorization_response=location,
        code_verifier=verifier,
        timeout=TIMEOUT,
    )
    return rp, token, {"nonce": nonce, "state": state}


def log_in_and_out(live_server: Any, live_services: Any, receiver: Any) -> tuple[dict[str, Any], Any]:
    """One client signs in, then RP-initiated logout; returns (ID token claims, keys)."""
    portal, _ = clients(receiver.url)
    live_services.clients.register(portal)
    live_services.persons.upsert(PERSON)
    metadata = discover(live_server.url)
    browser = requests.Session()
    _, token, sent = sign_in(browser, metadata, portal)
    keys = fetch_jwks(metadata)
    claims = verify_id_token(
        token["id_token"],
        keys,
        issuer=live_server.url,
        client_id="portal",
        nonce=sent["nonce"],
        access_token=token["access_token"],
        alg="RS256",
    )
    response = browser.get(
        metadata["end_session_endpoint"],
        params={"id_token_hint": token["id_token"]},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text[:300]
    return claims, keys


def outbox_rows(settings: Any) -> list[LogoutOutboxRow]:
    engine = create_engine(settings.database_url)
    try:
        with sessionmaker(bind=engine, expire_on_commit=False)() as session:
            return list(session.scalars(select(LogoutOutboxRow).order_by(LogoutOutboxRow.id)))
    finally:
        engine.dispose()


def test_full_flow_sso_refresh_revocation_and_backchannel_logout(
    live_server: Any, live_services: Any, live_settings: Any, receiver: Any
) -> None:
    portal, case_service = clients(receiver.url)
    live_services.clients.register(portal)
    live_services.clients.register(case_service)
    live_services.persons.upsert(PERSON)
    base = live_server.url

    # Discovery: every advertised endpoint exists and does not fail.
    metadata = discover(base)
    for name, url in metadata.items():
        if name.endswith("_endpoint") or name == "jwks_uri":
            assert url.startswith(base + "/"), (name, url)
            answer = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
            assert answer.status_code != 404 and answer.status_code < 500, (name, answer.status_code)
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert metadata["backchannel_logout_supported"] and metadata["backchannel_logout_session_supported"]

    # Sign in to the portal: login form, code, PKCE, client_secret_basic.
    browser = requests.Session()
    rp, token, sent = sign_in(browser, metadata, portal)
    assert token["token_type"].lower() == "bearer"
    assert token.get("refresh_token") and token.get("id_token")
    keys = fetch_jwks(metadata)
    claims = verify_id_token(
        token["id_token"],
        keys,
        issuer=base,
        client_id="portal",
        nonce=sent["nonce"],
        access_token=token["access_token"],
        alg="RS256",
    )
    assert claims["acr"] == "urn:cn:gov:loa:2" and claims["amr"] == ["pwd"]
    assert isinstance(claims["sub"], str) and claims["sid"]
    id_token = token["id_token"]

    # Userinfo with the bearer token.
    info = rp.get(metadata["userinfo_endpoint"], timeout=TIMEOUT)
    assert info.status_code == 200, info.text
    assert info.json()["sub"] == claims["sub"] and info.json()["email"] == PERSON["email"]

    # Refresh: a new refresh token; the old one is refused.
    old_refresh = token["refresh_token"]
    refreshed = rp.refresh_token(metadata["token_endpoint"], refresh_token=old_refresh, timeout=TIMEOUT)
    assert refreshed["refresh_token"] != old_refresh and refreshed["access_token"] != token["access_token"]
    replay = requests.post(
        metadata["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": old_refresh},
        auth=("portal", SECRET_A),
        timeout=TIMEOUT,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"

    # Introspection, revocation (the refresh token takes its grant with it), introspection again.
    active = rp.introspect_token(metadata["introspection_endpoint"], token=refreshed["access_token"])
    assert active.status_code == 200 and active.json()["active"] is True
    assert active.json()["client_id"] == "portal" and active.json()["sub"] == claims["sub"]
    revoked = rp.revoke_token(
        metadata["revocation_endpoint"], token=refreshed["refresh_token"], token_type_hint="refresh_token"
    )
    assert revoked.status_code == 200
    for value in (refreshed["access_token"], refreshed["refresh_token"]):
        inactive = rp.introspect_token(metadata["introspection_endpoint"], token=value)
        assert inactive.status_code == 200 and inactive.json() == {"active": False}

    # SSO into a second client with prompt=none: the code comes back at once, same session.
    _, token_b, sent_b = sign_in(browser, metadata, case_service, prompt="none", scope="openid profile")
    claims_b = verify_id_token(
        token_b["id_token"],
        keys,
        issuer=base,
        client_id="case-service",
        nonce=sent_b["nonce"],
        access_token=token_b["access_token"],
        alg="ES256",
    )
    assert claims_b["sid"] == claims["sid"] and claims_b["sub"] == claims["sub"]

    # RP-initiated logout with id_token_hint, a registered post_logout_redirect_uri and state.
    logout_state = secrets.token_urlsafe(8)
    response = browser.get(
        metadata["end_session_endpoint"],
        params={
            "id_token_hint": id_token,
            "post_logout_redirect_uri": "https://portal.example/bye",
            "state": logout_state,
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert response.status_code in (302, 303), response.text[:500]
    bye = response.headers["Location"]
    assert bye.startswith("https://portal.example/bye") and query_of(bye) == {"state": logout_state}

    # Deliver the back-channel logouts with the operator CLI, as production does.
    delivery = subprocess.run(
        [sys.executable, "-m", "idp", "deliver-logouts"],
        cwd=ROOT,
        env=server_environment(live_settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert delivery.returncode == 0, delivery.stderr[-2000:]
    assert "delivered=2 failed=0" in delivery.stdout, delivery.stdout + delivery.stderr[-2000:]
    assert sorted(path for path, _ in receiver.tokens) == ["/bcl/case-service", "/bcl/portal"]
    seen_jti = set()
    for path, logout_token in receiver.tokens:
        client_id = path.rsplit("/", 1)[1]
        logout = verify_logout_token(logout_token, keys, issuer=base, client_id=client_id)
        assert logout["sid"] == claims["sid"] and logout["sub"] == claims["sub"]
        seen_jti.add(logout["jti"])
    assert len(seen_jti) == 2
    # Delivered once: a second run has nothing to do.
    assert live_services.logout.deliver_due() == (0, 0)
    assert len(receiver.attempts) == 2

    # The session has ended everywhere: prompt=none now answers login_required, with iss.
    rp_again = relying_party(portal)
    url, state = rp_again.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=generate_token(48), nonce="n", prompt="none"
    )
    location = browse_to_redirect(browser, url, portal["redirect_uris"][0])
    result = query_of(location)
    assert result["error"] == "login_required" and result["iss"] == base and result["state"] == state
    assert "code" not in result
    # And tokens of the ended session no longer work.
    assert rp.get(metadata["userinfo_endpoint"], timeout=TIMEOUT).status_code == 401


class HandClock:
    def __init__(self) -> None:
        self.now = float(int(time.time()) + 1)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hand_clocked(live_services: Any, live_settings: Any) -> Iterator[tuple[LogoutService, HandClock]]:
    """A LogoutService on the live database whose clock the test moves by hand."""
    clock = HandClock()
    engine = create_engine(live_settings.database_url)
    logout = LogoutService(
        issuer=live_settings.issuer,
        sessions=sessionmaker(bind=engine, expire_on_commit=False),
        sso=live_services.sso,
        tokens=live_services.tokens,
        clients=live_services.clients,
        keys=live_services.keys,
        outbound=OutboundHttp(allow_private_network=True),
        max_attempts=live_settings.logout_max_attempts,
        clock=clock,
    )
    yield logout, clock
    engine.dispose()


def test_backchannel_logout_is_retried_with_backoff_until_the_platform_returns(
    live_server: Any, live_services: Any, live_settings: Any, receiver: Any, hand_clocked: Any
) -> None:
    receiver.fail_first = 2  # the platform is down, then returns
    claims, keys = log_in_and_out(live_server, live_services, receiver)

    # The clock is moved by hand: the backoff (1 s, 2 s, ...) is checked exactly, without sleeping.
    logout, clock = hand_clocked
    start = clock.now
    steps = [
        (0.0, (0, 1)),  # attempt 1: 503, next in 1 s
        (0.5, (0, 0)),  # not due yet
        (1.0, (0, 1)),  # attempt 2: 503, next in 2 s
        (2.5, (0, 0)),  # not due yet
        (3.0, (1, 0)),  # attempt 3: delivered
        (100.0, (0, 0)),  # never again
    ]
    for offset, expected in steps:
        clock.now = start + offset
        assert logout.deliver_due() == expected, offset

    assert receiver.attempts == ["/bcl/portal"] * 3
    assert len(receiver.tokens) == 1
    logout_claims = verify_logout_token(
        receiver.tokens[0][1], keys, issuer=live_server.url, client_id="portal"
    )
    assert logout_claims["sid"] == claims["sid"]
    (row,) = outbox_rows(live_settings)
    assert row.attempts == 3 and row.delivered_at == int(start + 3.0)
    assert row.last_error is None and row.gave_up_at is None
    assert receiver.tokens[0][1] == row.logout_token  # still fresh: the queued token itself


def test_backchannel_logout_after_a_long_outage_carries_a_token_that_is_still_valid(
    live_server: Any, live_services: Any, live_settings: Any, receiver: Any, hand_clocked: Any
) -> None:
    receiver.fail_first = 1
    claims, keys = log_in_and_out(live_server, live_services, receiver)
    logout, clock = hand_clocked
    start = clock.now
    assert logout.deliver_due() == (0, 1)
    clock.now = start + 600  # the platform comes back ten minutes later (the queued token has expired)
    assert logout.deliver_due() == (1, 0)

    (row,) = outbox_rows(live_settings)
    ((_, delivered),) = receiver.tokens
    assert delivered != row.logout_token
    fresh = verify_logout_token(
        delivered, keys, issuer=live_server.url, client_id="portal", now=int(clock.now)
    )
    queued = verify_logout_token(
        row.logout_token, keys, issuer=live_server.url, client_id="portal", now=int(start)
    )
    assert fresh["sid"] == queued["sid"] == claims["sid"] and fresh["sub"] == queued["sub"]
    assert fresh["exp"] > clock.now and fresh["jti"] != queued["jti"]


def test_backchannel_logout_to_a_private_address_is_refused_by_the_ssrf_guard(
    live_server: Any, live_services: Any, live_settings: Any, receiver: Any
) -> None:
    from idp.app import build_services

    log_in_and_out(live_server, live_services, receiver)
    guarded = build_services(live_settings.with_overrides(allow_private_network=False))
    try:
        assert guarded.logout.deliver_due() == (0, 1)
    finally:
        guarded.tokens.dispose()
    assert receiver.attempts == []
    (row,) = outbox_rows(live_settings)
    assert row.delivered_at is None and row.attempts == 1
    assert row.last_error and row.last_error.startswith("refused:"), row.last_error
    assert "127.0.0.1" in row.last_error
