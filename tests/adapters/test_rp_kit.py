"""The kit at protocol level against a fake provider over HTTP: what it refuses, and why."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kit_platform import CLIENT_ID, CLIENT_SECRET, LEVELS, FakeProvider, platform_app

from adapters.rp_kit import (
    InvalidToken,
    MemorySessionStore,
    Provider,
    RedisSessionStore,
    RelyingParty,
    TokenExchangeError,
    safe_next,
    verify_id_token,
)

EVENT = {"http://schemas.openid.net/event/backchannel-logout": {}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider(fake_provider: FakeProvider) -> Provider:
    return Provider(fake_provider.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def rp(fake_provider: FakeProvider) -> RelyingParty:
    return RelyingParty(issuer=fake_provider.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture
def client(rp: RelyingParty) -> Any:
    return platform_app(rp).test_client()


# -- ID tokens ----------------------------------------------------------------------------------------


def test_a_good_id_token_is_accepted(fake_provider: FakeProvider, provider: Provider) -> None:
    value = fake_provider.sign(fake_provider.claims(nonce="n1", azp=CLIENT_ID), typ="JWT")
    claims = verify_id_token(provider, value, alg="RS256", nonce="n1")
    assert claims["sub"] == "person-1"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"iss": "https://other.example"}, "another issuer"),
        ({"aud": "someone-else"}, "another audience"),
        ({"aud": [CLIENT_ID, "other"]}, "azp"),  # several audiences need azp = this client
        ({"azp": "other"}, "azp"),
        ({"nonce": "replayed"}, "nonce"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"iat": int(time.time()) + 3600}, "iat"),
        ({"sub": ""}, "no sub"),
    ],
)
def test_id_token_claims_are_checked(
    fake_provider: FakeProvider, provider: Provider, change: dict[str, Any], reason: str
) -> None:
    value = fake_provider.sign(fake_provider.claims(**{"nonce": "n1", **change}))
    with pytest.raises(InvalidToken, match=reason):
        verify_id_token(provider, value, alg="RS256", nonce="n1")


def test_id_token_alg_must_be_the_clients(
    fake_provider: FakeProvider, signing_keys: Any, provider: Provider
) -> None:
    es256 = fake_provider.sign(fake_provider.claims(), key=signing_keys["ec"])
    with pytest.raises(InvalidToken, match="alg 'ES256'"):
        verify_id_token(provider, es256, alg="RS256", nonce=None)
    header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"x"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(str(fake_provider.claims()).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="alg 'none'"):
        verify_id_token(provider, f"{header}.{payload}.", alg="none", nonce=None)


def test_a_forged_signature_is_refused(
    fake_provider: FakeProvider, signing_keys: Any, provider: Provider
) -> None:
    # signed by a key nobody published, under the kid of a published one
    forged = fake_provider.sign(fake_provider.claims(), key=signing_keys["stranger"])
    head, payload, signature = forged.split(".")
    real_kid = signing_keys["rsa"].kid
    header = base64.urlsafe_b64encode(f'{{"alg":"RS256","kid":"{real_kid}"}}'.encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="signature"):
        verify_id_token(provider, f"{header}.{payload}.{signature}", alg="RS256", nonce=None)
    with pytest.raises(InvalidToken, match="not a signed JWT"):
        verify_id_token(provider, "not-a-token", alg="RS256", nonce=None)


def test_unknown_kid_refetches_the_jwks_once_then_refuses(
    fake_provider: FakeProvider, signing_keys: Any
) -> None:
    clock = Clock()
    provider = Provider(fake_provider.url, client_id=CLIENT_ID, jwks_min_refetch_seconds=30, clock=clock)
    verify_id_token(provider, fake_provider.sign(fake_provider.claims()), alg="RS256", nonce=None)
    assert fake_provider.jwks_requests == 1
    for _ in range(5):  # forged kids: one refetch at most per 30 s, no fetch storm
        clock.now += 1
        forged = fake_provider.sign(fake_provider.claims(), key=signing_keys["stranger"])
        with pytest.raises(InvalidToken, match="does not publish"):
            verify_id_token(provider, forged, alg="RS256", nonce=None)
    assert fake_provider.jwks_requests == 1
    # The provider rotates: the new key is found by the refetch once the interval has passed.
    fake_provider.published.append(signing_keys["rsa2"])
    clock.now += 30
    rotated = fake_provider.sign(fake_provider.claims(), key=signing_keys["rsa2"])
    assert verify_id_token(provider, rotated, alg="RS256", nonce=None)["sub"] == "person-1"
    assert fake_provider.jwks_requests == 2


# -- access tokens on APIs ------------------------------------------------------------------------


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def access_token(fake: FakeProvider, **extra: Any) -> str:
    claims = fake.claims(client_id=CLIENT_ID, scope="openid profile", acr=LEVELS[1], jti="j1")
    return fake.sign({**claims, **extra}, typ="at+jwt")


def test_a_good_access_token_passes(fake_provider: FakeProvider, client: Any) -> None:
    response = client.get("/api/profile", headers=bearer(access_token(fake_provider)))
    assert response.status_code == 200 and response.json == {"sub": "person-1"}


def test_no_token_is_a_bare_challenge(client: Any) -> None:
    response = client.get("/api/profile")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("token_kind", "reason"),
    [
        ("id_token_typ", "typ 'JWT'"),
        ("logout_typ", "typ 'logout+jwt'"),
        ("expired", "expired"),
        ("wrong_audience", "another audience"),
        ("wrong_issuer", "another issuer"),
        ("no_client_id", "client_id"),
    ],
)
def test_access_token_refusals_are_invalid_token(
    fake_provider: FakeProvider, client: Any, token_kind: str, reason: str
) -> None:
    now = int(time.time())
    tokens = {
        "id_token_typ": fake_provider.sign(fake_provider.claims(client_id=CLIENT_ID), typ="JWT"),
        "logout_typ": logout_token(fake_provider),
        "expired": access_token(fake_provider, exp=now - 3600, iat=now - 4000),
        "wrong_audience": access_token(fake_provider, aud="another-api"),
        "wrong_issuer": access_token(fake_provider, iss="https://evil.example"),
        "no_client_id": access_token(fake_provider, client_id=None),
    }
    response = client.get("/api/profile", headers=bearer(tokens[token_kind]))
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token" and reason in response.json["error_description"]
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_missing_scope_is_403_insufficient_scope(fake_provider: FakeProvider, client: Any) -> None:
    response = client.get("/api/profile", headers=bearer(access_token(fake_provider, scope="openid")))
    assert response.status_code == 403 and response.json["error"] == "insufficient_scope"
    assert 'scope="profile"' in response.headers["WWW-Authenticate"]


def test_assurance_levels_follow_the_advertised_order(fake_provider: FakeProvider, client: Any) -> None:
    weak = client.get("/api/strong", headers=bearer(access_token(fake_provider)))
    assert weak.status_code == 401 and weak.json["error"] == "insufficient_user_authentication"
    assert f'acr_values="{LEVELS[2]}"' in weak.headers["WWW-Authenticate"]  # RFC 9470 §3
    unknown = client.get("/api/strong", headers=bearer(access_token(fake_provider, acr="urn:other")))
    assert unknown.status_code == 401
    strong = client.get("/api/strong", headers=bearer(access_token(fake_provider, acr=LEVELS[2])))
    assert strong.status_code == 200


def test_entity_and_its_powers(fake_provider: FakeProvider, client: Any) -> None:
    entity = {"uscc": "91350100M000100Y43", "name": "福州某公司", "role": "agent", "powers": ["apply"]}
    missing = client.get("/api/entity", headers=bearer(access_token(fake_provider)))
    assert missing.status_code == 403 and 'scope="entity"' in missing.headers["WWW-Authenticate"]
    acting = bearer(access_token(fake_provider, entity=entity))
    assert client.get("/api/entity", headers=acting).json == {"uscc": entity["uscc"]}
    no_power = client.get("/api/entity-sign", headers=acting)
    assert no_power.status_code == 403 and "sign" in no_power.json["error_description"]
    signer = bearer(access_token(fake_provider, entity={**entity, "powers": ["apply", "sign"]}))
    assert client.get("/api/entity-sign", headers=signer).status_code == 200
    representative = {**entity, "role": "legal_representative", "powers": ["*"]}  # 法定代表人: every power
    assert (
        client.get(
            "/api/entity-sign", headers=bearer(access_token(fake_provider, entity=representative))
        ).status_code
        == 200
    )


def test_opaque_tokens_are_introspected(fake_provider: FakeProvider, client: Any) -> None:
    now = int(time.time())
    fake_provider.introspection["opaque-live"] = {
        "active": True,
        "iss": fake_provider.url,
        "aud": CLIENT_ID,
        "client_id": CLIENT_ID,
        "sub": "person-2",
        "scope": "openid profile",
        "exp": now + 60,
    }
    assert client.get("/api/profile", headers=bearer("opaque-live")).json == {"sub": "person-2"}
    refused = client.get("/api/profile", headers=bearer("opaque-revoked"))
    assert refused.status_code == 401 and "not active" in refused.json["error_description"]


# -- login ----------------------------------------------------------------------------------------


def test_login_sends_pkce_state_and_nonce_and_keeps_next_local(
    client: Any, fake_provider: FakeProvider
) -> None:
    response = client.get("/oidc/login?next=//evil.example/x&acr_values=urn:cn:gov:loa:3&prompt=login")
    assert response.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
    assert response.headers["Location"].startswith(f"{fake_provider.url}/authorize?")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert (
        query["state"] and query["nonce"] and query["acr_values"] == LEVELS[2] and query["prompt"] == "login"
    )
    with client.session_transaction() as session:
        pending = session["rp_kit.login"]
    assert pending["next"] == "/" and pending["state"] == query["state"]
    expected = base64.urlsafe_b64encode(hashlib.sha256(pending["verifier"].encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == expected.decode()


def test_callback_refuses_a_foreign_state_or_issuer(client: Any, fake_provider: FakeProvider) -> None:
    assert client.get("/oidc/callback?state=forged&code=c").status_code == 400
    client.get("/oidc/login")
    with client.session_transaction() as session:
        state = session["rp_kit.login"]["state"]
    mixed_up = client.get(f"/oidc/callback?state={state}&code=c&iss=https://evil.example")
    assert mixed_up.status_code == 400 and b"another issuer" in mixed_up.data
    assert fake_provider.token_requests == []  # no code was ever redeemed


def test_pages_redirect_to_login(client: Any) -> None:
    response = client.get("/?tab=cases")
    assert (
        response.status_code == 302 and response.headers["Location"] == "/oidc/login?next=%2F%3Ftab%3Dcases"
    )


@pytest.mark.parametrize(
    ("given", "kept"),
    [("/cases?id=1", "/cases?id=1"), ("//evil.example", "/"), ("/\\evil.example", "/"),
     ("https://evil.example/", "/"), ("/a\r\nSet-Cookie: x", "/"), (None, "/"), ("cases", "/")],
)  # fmt: skip
def test_safe_next(given: str | None, kept: str) -> None:
    assert safe_next(given) == kept


# -- back-channel logout ------------------------------------------------------------------------------


def logout_token(fake: FakeProvider, **change: Any) -> str:
    claims = {**fake.claims(sid="sso-1", jti=f"jti-{time.time_ns()}", events=EVENT), **change}
    return fake.sign({k: v for k, v in claims.items() if v is not None}, typ="logout+jwt")


def test_backchannel_logout_ends_every_local_session_of_the_sid(
    fake_provider: FakeProvider, rp: RelyingParty, client: Any
) -> None:
    for local_id, sid in (("a", "sso-1"), ("b", "sso-1"), ("c", "sso-2")):
        rp.store.save(local_id, {"sid": sid, "sub": "person-1"}, 60)
    token = logout_token(fake_provider)
    response = client.post("/oidc/backchannel-logout", data={"logout_token": token})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert rp.store.load("a") is None and rp.store.load("b") is None and rp.store.load("c") is not None
    replay = client.post("/oidc/backchannel-logout", data={"logout_token": token})
    assert replay.status_code == 400 and "already used" in replay.json["error_description"]
    by_sub = client.post(
        "/oidc/backchannel-logout", data={"logout_token": logout_token(fake_provider, sid=None)}
    )
    assert by_sub.status_code == 200 and rp.store.load("c") is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"nonce": "n"}, "nonce"),
        ({"events": None}, "event"),
        ({"events": {"http://example.com/other": {}}}, "event"),
        ({"sid": None, "sub": None}, "neither sid nor sub"),
        ({"jti": None}, "jti"),
        ({"aud": "another-client"}, "audience"),
        ({"iat": -3600, "exp": 60}, "too old"),  # seconds from now, taken when the test runs
    ],
)
def test_logout_token_refusals(
    fake_provider: FakeProvider, client: Any, change: dict[str, Any], reason: str
) -> None:
    now = int(time.time())
    change = {name: now + value if name in ("iat", "exp") else value for name, value in change.items()}
    response = client.post(
        "/oidc/backchannel-logout", data={"logout_token": logout_token(fake_provider, **change)}
    )
    assert response.status_code == 400 and response.json["error"] == "invalid_request"
    assert reason in response.json["error_description"]


def test_logout_token_signature_and_type(fake_provider: FakeProvider, signing_keys: Any, client: Any) -> None:
    forged = logout_token(fake_provider).split(".")
    forged[2] = forged[2][::-1]
    bad = client.post("/oidc/backchannel-logout", data={"logout_token": ".".join(forged)})
    assert bad.status_code == 400 and "signature" in bad.json["error_description"]
    id_token = fake_provider.sign(fake_provider.claims(sid="sso-1", jti="j", events=EVENT), typ="JWT")
    typed = client.post("/oidc/backchannel-logout", data={"logout_token": id_token})
    assert typed.status_code == 400 and "typ" in typed.json["error_description"]
    assert client.post("/oidc/backchannel-logout").status_code == 400


def test_rp_initiated_logout_sends_the_id_token_hint(fake_provider: FakeProvider, signing_keys: Any) -> None:
    rp = RelyingParty(
        issuer=fake_provider.url, client_id=CLIENT_ID, post_logout_redirect_uri="https://kit.example/bye"
    )
    client = platform_app(rp).test_client()
    rp.store.save("local-1", {"sid": "s", "sub": "p", "claims": {"sub": "p"}, "id_token": "ID.TOKEN.X"}, 60)
    with client.session_transaction() as session:
        session["rp_kit.session"] = "local-1"
    response = client.post("/oidc/logout")
    query = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
    assert response.headers["Location"].startswith(f"{fake_provider.url}/logout?")
    assert query == {
        "client_id": CLIENT_ID,
        "id_token_hint": "ID.TOKEN.X",
        "post_logout_redirect_uri": "https://kit.example/bye",
    }
    assert rp.store.load("local-1") is None


# -- token exchange (RFC 8693) against the fake token endpoint: the provider side is not built yet ------


def test_exchange_token_sends_an_rfc8693_request(fake_provider: FakeProvider, rp: RelyingParty) -> None:
    fake_provider.token_response = (
        200,
        {
            "access_token": "for-certificates",
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "token_type": "Bearer",
            "expires_in": 60,
        },
    )
    token = rp.exchange_token("subject-at", audience="e-certificates", scope="certificates.read")
    assert token["access_token"] == "for-certificates"
    sent = fake_provider.token_requests[-1]
    assert sent["form"] == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": "subject-at",
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "e-certificates",
        "scope": "certificates.read",
    }
    assert sent["auth"].username == CLIENT_ID and sent["auth"].password == CLIENT_SECRET


def test_exchange_token_refusal_is_a_clear_error(fake_provider: FakeProvider, rp: RelyingParty) -> None:
    fake_provider.token_response = (400, {"error": "invalid_target", "error_description": "unknown audience"})
    with pytest.raises(TokenExchangeError) as raised:
        rp.exchange_token("subject-at", audience="nowhere", scope="x")
    assert raised.value.error == "invalid_target" and raised.value.description == "unknown audience"


# -- session stores -------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, redis_url: str | None, redis_prefix: str) -> Any:
    if request.param == "memory":
        yield MemorySessionStore()
        return
    if redis_url is None:
        pytest.skip("the Redis store is tested on the postgres backend (IDP_TEST_BACKEND=postgres)")
    import redis

    client = redis.Redis.from_url(redis_url)
    yield RedisSessionStore(client, prefix=redis_prefix)
    keys = list(client.scan_iter(f"{redis_prefix}*"))
    if keys:
        client.delete(*keys)


def test_session_store_contract(store: Any) -> None:
    store.save("a", {"sid": "s1", "sub": "p1", "n": 1}, 60)
    store.save("b", {"sid": "s1", "sub": "p1"}, 60)
    store.save("c", {"sid": "s2", "sub": "p1"}, 60)
    store.save("d", {"sid": "s3", "sub": "p2"}, 60)
    assert store.load("a") == {"sid": "s1", "sub": "p1", "n": 1} and store.load("zz") is None
    assert store.end_sessions(sid="s1") == 2 and store.load("a") is None and store.load("c") is not None
    assert store.end_sessions(sub="p1") == 1 and store.load("c") is None and store.load("d") is not None
    assert store.end_sessions() == 0
    store.delete("d")
    assert store.load("d") is None
    assert store.remember_once("jti:1", 60) is True and store.remember_once("jti:1", 60) is False
    store.save("short", {"sid": "s9"}, 1)
    time.sleep(1.1)
    assert store.load("short") is None
