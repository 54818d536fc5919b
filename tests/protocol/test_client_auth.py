"""Client authentication at the token endpoint (RFC 6749 §2.3, §5.2; RFC 7523 §2.2, §3; OIDC Core §9)
and how client secrets and tokens are kept (digests only)."""

from __future__ import annotations

import base64
import re
import secrets
import time
from urllib.parse import quote

import pytest
from flows import ISSUER, PERSON, PORTAL, basic, login_for_code, redeem
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from sqlalchemy import select

from idp.services.clients import ClientMetadataError

TOKEN_ENDPOINT = f"{ISSUER}/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SPA = {
    "client_id": "spa",
    "client_name": "Single-page app",
    "redirect_uris": ["https://spa.example/cb"],
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "none",
    "scope": "openid profile email",
    "first_party": True,
}
POSTER = {
    "client_id": "poster",
    "client_secret": "poster-secret-0123456789-0123456789-abcdef",
    "grant_types": ["client_credentials"],
    "token_endpoint_auth_method": "client_secret_post",
    "scope": "catalogue.read",
}


def assert_invalid_client(response, *, challenge: bool = True) -> None:
    body = response.get_json()
    assert response.status_code == 401, (response.status_code, body)
    assert body["error"] == "invalid_client", body
    assert "access_token" not in body
    assert response.mimetype == "application/json"
    if challenge:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def client_credentials(client, headers=None, **form: str):
    return client.post("/token", data={"grant_type": "client_credentials", **form}, headers=headers or {})


# -- client_secret_basic / client_secret_post ------------------------------------------------------


@pytest.fixture
def portal(client, services):
    services.clients.register(PORTAL)
    services.clients.register(POSTER)
    services.persons.upsert(PERSON)
    return client


def test_right_secret_authenticates(portal):
    auth, result = login_for_code(portal)
    assert redeem(portal, result["code"], auth).status_code == 200


def test_wrong_secret_is_401_invalid_client_with_a_basic_challenge(portal):
    auth, result = login_for_code(portal)
    response = redeem(portal, result["code"], auth, client={**PORTAL, "client_secret": "wrong" * 8})
    assert_invalid_client(response)
    # The code was not consumed by an unauthenticated request: the right client still redeems it.
    assert redeem(portal, result["code"], auth).status_code == 200


def test_wrong_secret_with_client_secret_post_is_401(portal):
    response = client_credentials(
        portal, client_id="poster", client_secret="wrong-secret-0123456789-0123456789-abcdef"
    )
    assert_invalid_client(response)
    ok = client_credentials(portal, client_id="poster", client_secret=POSTER["client_secret"])
    assert ok.status_code == 200, ok.get_json()


@pytest.mark.parametrize("how", ["basic", "post"])
def test_unknown_client_is_401(portal, how):
    secret = "some-secret-0123456789-0123456789-abcdef"
    if how == "basic":
        response = client_credentials(portal, basic("nobody", secret))
    else:
        response = client_credentials(portal, client_id="nobody", client_secret=secret)
    assert_invalid_client(response)


def test_no_client_authentication_is_401(portal):
    assert_invalid_client(client_credentials(portal))


def test_a_method_other_than_the_registered_one_is_refused(portal):
    """PORTAL is registered for client_secret_basic: the same secret in the body is refused."""
    auth, result = login_for_code(portal)
    response = portal.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": auth.params["redirect_uri"],
            "code_verifier": auth.verifier,
            "client_id": PORTAL["client_id"],
            "client_secret": PORTAL["client_secret"],
        },
    )
    assert_invalid_client(response)
    # and the other way round: POSTER (client_secret_post) with HTTP Basic
    assert_invalid_client(client_credentials(portal, basic("poster", POSTER["client_secret"])))


def test_a_confidential_client_cannot_authenticate_with_none(portal):
    auth, result = login_for_code(portal)
    response = portal.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": result["code"],
            "redirect_uri": auth.params["redirect_uri"],
            "code_verifier": auth.verifier,
            "client_id": PORTAL["client_id"],
        },
    )
    assert_invalid_client(response)


def test_two_authentication_methods_at_once_are_refused(portal):
    response = client_credentials(
        portal,
        basic("poster", POSTER["client_secret"]),
        client_id="poster",
        client_secret=POSTER["client_secret"],
    )
    assert response.status_code in (400, 401)
    assert response.get_json()["error"] in ("invalid_request", "invalid_client")


def test_basic_credentials_are_form_urlencoded_before_base64(services, client):
    """RFC 6749 §2.3.1: client_id and secret are form-urlencoded inside the Basic header."""
    odd = {**POSTER, "client_id": "odd:id", "token_endpoint_auth_method": "client_secret_basic"}
    odd["client_secret"] = "s3cret:with%special+chars-0123456789-abcdef"
    services.clients.register(odd)
    raw = f"{quote(odd['client_id'], safe='')}:{quote(odd['client_secret'], safe='')}"
    headers = {"Authorization": "Basic " + base64.b64encode(raw.encode()).decode()}
    response = client_credentials(client, headers)
    assert response.status_code == 200, response.get_json()


# -- public clients: `none` + PKCE ---------------------------------------------------------------


def public_redeem(client, code: str, redirect_uri: str, verifier: str | None):
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": "spa",
    }
    if verifier is not None:
        form["code_verifier"] = verifier
    return client.post("/token", data=form)


def test_public_client_with_pkce_gets_tokens(client, services):
    services.clients.register(SPA)
    services.persons.upsert(PERSON)
    auth, result = login_for_code(client, SPA)
    response = public_redeem(client, result["code"], auth.params["redirect_uri"], auth.verifier)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["access_token"] and body["id_token"]
    refreshed = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": "spa"},
    )
    assert refreshed.status_code == 200, refreshed.get_json()


def test_public_client_without_code_verifier_gets_nothing(client, services):
    services.clients.register(SPA)
    services.persons.upsert(PERSON)
    auth, result = login_for_code(client, SPA)
    response = public_redeem(client, result["code"], auth.params["redirect_uri"], None)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"] == "invalid_request"
    assert "access_token" not in response.get_json()


def test_public_client_cannot_present_a_secret(client, services):
    services.clients.register(SPA)
    response = client_credentials(client, client_id="spa", client_secret="x" * 43)
    assert_invalid_client(response)


# -- private_key_jwt (RFC 7523) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "k1"})


@pytest.fixture
def signer(services, ec_key):
    services.clients.register(
        {
            "client_id": "signer",
            "client_name": "Signer",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": "catalogue.read",
            "jwks": {"keys": [ec_key.as_dict(private=False)]},
        }
    )
    return ec_key


def assertion(key, alg: str = "ES256", **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": "signer",
        "sub": "signer",
        "aud": TOKEN_ENDPOINT,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": "k1"}, claims, key)


def with_assertion(client, value: str, endpoint: str = "/token", **form: str):
    data = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": value, **form}
    if endpoint == "/token":
        data.setdefault("grant_type", "client_credentials")
    return client.post(endpoint, data=data)


def test_private_key_jwt_authenticates(client, signer):
    response = with_assertion(client, assertion(signer))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["access_token"]


def test_private_key_jwt_with_the_issuer_as_audience(client, signer):
    response = with_assertion(client, assertion(signer, aud=ISSUER))
    assert response.status_code == 200, response.get_json()


def test_private_key_jwt_with_an_rsa_key(client, services):
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    services.clients.register(
        {
            "client_id": "signer",
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": "catalogue.read",
            "jwks": {"keys": [key.as_dict(private=False)]},
        }
    )
    assert with_assertion(client, assertion(key, "RS256")).status_code == 200


def test_a_replayed_assertion_is_refused(client, signer):
    value = assertion(signer)
    assert with_assertion(client, value).status_code == 200
    assert_invalid_client(with_assertion(client, value))


def test_a_replayed_jti_in_a_new_assertion_is_refused(client, signer):
    jti = secrets.token_urlsafe(16)
    assert with_assertion(client, assertion(signer, jti=jti)).status_code == 200
    assert_invalid_client(with_assertion(client, assertion(signer, jti=jti, iat=int(time.time()) - 1)))


def test_an_assertion_signed_by_another_key_is_refused(client, signer):
    stranger = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    assert_invalid_client(with_assertion(client, assertion(stranger)))


def test_an_hs256_assertion_is_refused(client, signer):
    """Even keyed with the public key's bytes (the classic algorithm-confusion attack)."""
    import json

    public = json.dumps(signer.as_dict(private=False), sort_keys=True).encode()
    for key in (OctKey.import_key(public), OctKey.generate_key(256)):
        assert_invalid_client(with_assertion(client, assertion(key, "HS256")))


def test_an_unsigned_assertion_is_refused(client, signer):
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    import json

    now = int(time.time())
    claims = {
        "iss": "signer",
        "sub": "signer",
        "aud": TOKEN_ENDPOINT,
        "iat": now,
        "exp": now + 60,
        "jti": "x1",
    }
    for header in ({"alg": "none"}, {"alg": "None"}, {"alg": "ES256"}):
        token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."
        assert_invalid_client(with_assertion(client, token))


def test_an_expired_assertion_is_refused(client, signer):
    now = int(time.time())
    assert_invalid_client(with_assertion(client, assertion(signer, iat=now - 600, exp=now - 120)))


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "https://elsewhere.example/token"},
        {"aud": None},
        {"iss": "someone-else"},
        {"jti": None},
        {"exp": None},
        {"exp": int(time.time()) + 3600},  # too long-lived to be replay-checked
    ],
    ids=["wrong-aud", "no-aud", "iss-not-sub", "no-jti", "no-exp", "long-lived"],
)
def test_assertions_with_bad_claims_are_refused(client, signer, claims):
    assert_invalid_client(with_assertion(client, assertion(signer, **claims)))


def test_an_assertion_for_an_unknown_client_is_refused(client, signer):
    assert_invalid_client(with_assertion(client, assertion(signer, iss="ghost", sub="ghost")))


@pytest.mark.parametrize("value", ["", "not-a-jwt", "a.b.c", "e30.e30.", "W10.W10.sig"])
def test_garbage_assertions_are_refused(client, signer, value):
    response = with_assertion(client, value)
    assert response.status_code in (400, 401), response.get_data(as_text=True)
    assert response.get_json()["error"] in ("invalid_client", "invalid_request")


def test_a_secret_client_cannot_use_an_assertion(client, services, ec_key):
    services.clients.register({**POSTER, "client_id": "signer"})
    assert_invalid_client(with_assertion(client, assertion(ec_key)))


def test_private_key_jwt_at_introspection(client, signer):
    issued = with_assertion(client, assertion(signer)).get_json()
    response = with_assertion(client, assertion(signer), "/introspect", token=issued["access_token"])
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["active"] is True


# -- secrets and storage -------------------------------------------------------------------------


def test_generated_secrets_carry_256_bits(services):
    seen = set()
    for n in range(3):
        metadata = {k: v for k, v in POSTER.items() if k != "client_secret"}
        _client, secret = services.clients.register({**metadata, "client_id": f"gen{n}"})
        assert secret is not None and len(secret) >= 43
        assert re.fullmatch(r"[A-Za-z0-9_-]+", secret)
        assert len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))) >= 32
        seen.add(secret)
    assert len(seen) == 3
    # Registering again keeps the secret and does not reveal a new one.
    _client, again = services.clients.register({**metadata, "client_id": "gen0"})
    assert again is None


def test_a_generated_secret_authenticates(client, services):
    metadata = {k: v for k, v in POSTER.items() if k != "client_secret"}
    _client, secret = services.clients.register(metadata)
    response = client_credentials(client, client_id="poster", client_secret=secret)
    assert response.status_code == 200, response.get_json()
    assert_invalid_client(client_credentials(client, client_id="poster", client_secret=_altered(secret)))


def _altered(secret: str) -> str:
    return secret[:-1] + ("B" if secret.endswith("A") else "A")


def test_a_rotated_secret_replaces_the_old_one(client, services):
    services.clients.register(POSTER)
    new = services.clients.rotate_secret("poster")
    assert len(new) >= 43
    assert client_credentials(client, client_id="poster", client_secret=new).status_code == 200
    assert_invalid_client(
        client_credentials(client, client_id="poster", client_secret=POSTER["client_secret"])
    )


@pytest.mark.parametrize("secret", ["short", "x" * 31])
def test_short_operator_secrets_are_refused(services, secret):
    with pytest.raises(ClientMetadataError):
        services.clients.register({**POSTER, "client_secret": secret})
    assert services.clients.get("poster") is None


def test_a_32_character_operator_secret_is_accepted(services):
    _client, generated = services.clients.register({**POSTER, "client_secret": "y" * 32})
    assert generated is None


def test_neither_secrets_nor_tokens_are_stored_in_plaintext(client, services, settings):
    from idp.store import models  # noqa: F401 - registers every table on Base.metadata
    from idp.store.db import Base

    metadata = {k: v for k, v in POSTER.items() if k != "client_secret"}
    _c, generated = services.clients.register(metadata)
    services.clients.register(PORTAL)
    services.persons.upsert(PERSON)
    auth, result = login_for_code(client)
    tokens = redeem(client, result["code"], auth).get_json()
    refreshed = client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers=basic(PORTAL["client_id"], PORTAL["client_secret"]),
    ).get_json()
    machine = client_credentials(client, client_id="poster", client_secret=generated).get_json()
    cookie = client.get_cookie("idp_session")
    plaintexts = {
        "portal secret": PORTAL["client_secret"],
        "generated secret": generated,
        "code": result["code"],
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "rotated access token": refreshed["access_token"],
        "rotated refresh token": refreshed["refresh_token"],
        "client_credentials token": machine["access_token"],
        "password": PERSON["password"],
        "id number": PERSON["id_number"],
    }
    if cookie is not None:
        plaintexts["sso handle"] = cookie.value

    dump = []
    with services.tokens.engine().connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                dump.extend(repr(value) for value in row)
        token_rows = conn.execute(select(Base.metadata.tables["tokens"])).all()
        client_rows = conn.execute(select(Base.metadata.tables["clients"])).all()
    assert len(token_rows) >= 5 and len(client_rows) >= 2  # the check below looks at real rows
    if settings.redis_url:
        import redis

        r = redis.Redis.from_url(settings.redis_url, decode_responses=True)
        for key in r.scan_iter(f"{settings.redis_prefix}*"):
            dump.append(key)
            kind = r.type(key)
            dump.append(repr(r.get(key) if kind == "string" else r.smembers(key) if kind == "set" else kind))
    text = "\n".join(dump)
    for what, value in plaintexts.items():
        assert value and value not in text, f"{what} is stored in plaintext"
        # nor in parts: a JWT's signature alone identifies it
        for part in value.split(".")[1:]:
            assert len(part) < 20 or part not in text, f"part of the {what} is stored in plaintext"
