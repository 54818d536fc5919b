"""The kit against the real provider over HTTP: a platform app on its own port signs a person in,
serves an API, survives a key rotation, refreshes, and is signed out by a back-channel logout.

Both servers are werkzeug servers in threads of this process (the provider via `create_app` on the
`live_services`), so the test can rotate keys and deliver the logout outbox on the very same services.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from flows import PERSON
from joserfc import jws
from kit_platform import LEVELS, platform_app
from werkzeug.serving import make_server

from adapters.rp_kit import MemorySessionStore, RedisSessionStore, RelyingParty

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_helpers import TIMEOUT, browse_to_redirect, free_port  # noqa: E402

SECRET = "kit-live-secret-0123456789-0123456789-01"


@pytest.fixture
def live_settings(live_settings: Any) -> Any:
    """A rotated key signs 2 s after publication, and nodes read keys uncached, so the test is quick."""
    return live_settings.with_overrides(key_rotation_overlap=2, key_cache_seconds=0)


def serve(app: Any, port: int) -> Any:
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def provider_url(live_settings: Any, live_services: Any, live_port: int) -> Iterator[str]:
    from idp.app import create_app

    server = serve(create_app(live_settings, live_services), live_port)
    yield live_settings.issuer
    server.shutdown()


@pytest.fixture
def kit(provider_url: str, live_services: Any, redis_url: str | None, redis_prefix: str) -> Iterator[Any]:
    """The platform: registered at the provider, using the Redis session store on the postgres backend."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    live_services.clients.register(
        {
            "client_id": "kit-platform",
            "client_name": "Kit platform",
            "client_secret": SECRET,
            "redirect_uris": [f"{url}/oidc/callback"],
            "post_logout_redirect_uris": [f"{url}/"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid profile email",
            "first_party": True,
            "backchannel_logout_uri": f"{url}/oidc/backchannel-logout",
        }
    )
    live_services.persons.upsert(PERSON)
    if redis_url:
        import redis

        store: Any = RedisSessionStore(redis.Redis.from_url(redis_url), prefix=f"{redis_prefix}rp:")
    else:
        store = MemorySessionStore()
    rp = RelyingParty(
        issuer=provider_url,
        client_id="kit-platform",
        client_secret=SECRET,
        base_url=url,
        post_logout_redirect_uri=f"{url}/",
        session_store=store,
        jwks_min_refetch_seconds=1,
    )
    server = serve(platform_app(rp), port)
    yield rp, url
    server.shutdown()


def sign_in(browser: requests.Session, kit_url: str, page: str = "/?tab=cases") -> dict[str, Any]:
    """Open a protected page, sign in at the provider, land back on the page; returns its JSON."""
    to_login = browser.get(kit_url + page, allow_redirects=False, timeout=TIMEOUT)
    assert to_login.status_code == 302
    to_provider = browser.get(urljoin(kit_url, to_login.headers["Location"]), allow_redirects=False)
    callback = browse_to_redirect(browser, to_provider.headers["Location"], f"{kit_url}/oidc/callback")
    back = browser.get(callback, allow_redirects=False, timeout=TIMEOUT)
    assert back.status_code == 302 and back.headers["Location"] == page, back.text
    home = browser.get(kit_url + page, allow_redirects=False, timeout=TIMEOUT)
    assert home.status_code == 200, home.text
    return dict(home.json())


def call(kit_url: str, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(kit_url + path, headers=headers, timeout=TIMEOUT)


def kid_of(token: str) -> str:
    return str(jws.extract_compact(token.encode()).headers()["kid"])


def test_login_api_rotation_refresh_and_backchannel_logout(kit: Any, live_services: Any) -> None:
    rp, kit_url = kit
    browser = requests.Session()

    # Login: PKCE, state, nonce; the ID token validated; userinfo adds the name.
    home = sign_in(browser, kit_url)
    user = home["user"]
    assert user["name"] == PERSON["name"] and user["acr"] == LEVELS[1] and user["sid"]
    assert user["aud"] == "kit-platform" and isinstance(user["sub"], str)

    # A protected API with the access token (RFC 9068 JWT, verified locally).
    token = home["access_token"]
    assert call(kit_url, "/api/profile", token).json() == {"sub": user["sub"]}
    assert call(kit_url, "/api/profile", None).status_code == 401
    weak = call(kit_url, "/api/strong", token)
    assert weak.status_code == 401 and weak.json()["error"] == "insufficient_user_authentication"
    fetches = rp.provider.jwks_fetches

    # Key rotation at the provider: once the new key signs, refreshed tokens carry its kid and verify.
    new_kid = live_services.keys.rotate("RS256")[0]
    time.sleep(2.2)  # key_rotation_overlap
    refreshed = browser.post(kit_url + "/refresh", timeout=TIMEOUT)
    assert refreshed.status_code == 200, refreshed.text
    new_token = refreshed.json()["access_token"]
    assert kid_of(new_token) == new_kid != kid_of(token)
    assert call(kit_url, "/api/profile", new_token).status_code == 200
    assert rp.provider.jwks_fetches == fetches + 1  # the unknown kid fetched the JWKS once
    # The rotated refresh token was stored: refreshing again works.
    again = browser.post(kit_url + "/refresh", timeout=TIMEOUT)
    assert again.status_code == 200 and again.json()["access_token"] != new_token

    # Logout at the provider (as if from another platform): the back-channel logout ends our session.
    ended = browser.get(
        f"{rp.provider.issuer}/logout", params={"id_token_hint": home["id_token"]}, timeout=TIMEOUT
    )
    assert ended.status_code == 200
    assert live_services.logout.deliver_due() == (1, 0)
    after = browser.get(kit_url + "/", allow_redirects=False, timeout=TIMEOUT)
    assert after.status_code == 302 and after.headers["Location"].startswith("/oidc/login")


def test_rp_initiated_logout_ends_both_sessions(kit: Any, live_services: Any) -> None:
    rp, kit_url = kit
    browser = requests.Session()
    sign_in(browser, kit_url, "/")
    out = browser.get(kit_url + "/oidc/logout", allow_redirects=False, timeout=TIMEOUT)
    assert out.headers["Location"].startswith(rp.provider.metadata["end_session_endpoint"])
    at_provider = browser.get(out.headers["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert at_provider.status_code in (302, 303) and at_provider.headers["Location"] == f"{kit_url}/"
    assert live_services.logout.deliver_due() == (1, 0)  # nothing left to end, still acknowledged
    assert browser.get(kit_url + "/", allow_redirects=False, timeout=TIMEOUT).status_code == 302
