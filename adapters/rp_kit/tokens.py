"""Verifying what the provider signs: ID tokens, RFC 9068 access tokens, back-channel logout tokens."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Collection
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from adapters.rp_kit.provider import Provider

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LEEWAY = 60  # seconds of clock skew tolerated on exp / iat
LOGOUT_TOKEN_MAX_AGE = 600  # older logout tokens are refused, so remembering jtis this long stops replays


class InvalidToken(Exception):
    """The token is refused; the message says why (safe to show to the token's presenter)."""


def verify_id_token(
    provider: Provider,
    value: str,
    *,
    alg: str,
    nonce: str | None,
    access_token: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """OIDC Core §3.1.3.7: signature with the client's alg, iss, aud, azp, exp, iat, nonce, at_hash."""
    header, claims = decode_signed(provider, value, algs=(alg,), typs=("JWT",), typ_required=False)
    check_issuer_and_audience(provider, claims, provider.client_id)
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != provider.client_id:
        raise InvalidToken("the ID token's azp is not this client")
    check_times(claims, now, require_exp=True)
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidToken("the ID token has no sub")
    if nonce is not None and claims.get("nonce") != nonce:
        raise InvalidToken("the ID token's nonce does not match the one sent")
    if (
        access_token
        and "at_hash" in claims
        and claims["at_hash"] != left_half_hash(access_token, header["alg"])
    ):
        raise InvalidToken("the ID token's at_hash does not match the access token")
    return claims


def verify_access_token(
    provider: Provider, value: str, *, audience: str, algs: Collection[str], now: float | None = None
) -> dict[str, Any]:
    """RFC 9068 §4: typ at+jwt, an accepted alg (never none), iss, aud holds this resource, exp."""
    _, claims = decode_signed(provider, value, algs=algs, typs=("at+jwt", "application/at+jwt"))
    check_issuer_and_audience(provider, claims, audience)
    check_times(claims, now, require_exp=True)
    if not claims.get("client_id") or not claims.get("sub"):
        raise InvalidToken("the access token lacks client_id or sub (RFC 9068 §2.2)")
    return claims


def verify_logout_token(
    provider: Provider, value: str, *, alg: str, now: float | None = None
) -> dict[str, Any]:
    """Back-Channel Logout 1.0 §2.6 steps 3-6 (the jti replay check needs the session store)."""
    _, claims = decode_signed(provider, value, algs=(alg,), typs=("logout+jwt",), typ_required=False)
    check_issuer_and_audience(provider, claims, provider.client_id)
    check_times(claims, now, require_exp=False)
    if claims["iat"] < (time.time() if now is None else now) - LOGOUT_TOKEN_MAX_AGE:
        raise InvalidToken("the logout token is too old")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise InvalidToken("the logout token has no back-channel logout event")
    if not claims.get("sid") and not claims.get("sub"):
        raise InvalidToken("the logout token names neither sid nor sub")
    if "nonce" in claims:  # §2.4: forbidden, so that an ID token can never pass as a logout token
        raise InvalidToken("a logout token must not contain a nonce")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise InvalidToken("the logout token has no jti")
    return claims


def decode_signed(
    provider: Provider, value: str, *, algs: Collection[str], typs: Collection[str], typ_required: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the header (alg allowed, typ, kid known) before verifying the signature with that key."""
    try:
        header = dict(jws.extract_compact(value.encode()).headers())
    except (JoseError, ValueError, UnicodeError):
        raise InvalidToken("the token is not a signed JWT") from None
    alg = header.get("alg")
    if alg not in algs or alg == "none":
        raise InvalidToken(f"the token's alg {alg!r} is not accepted")
    typ = header.get("typ")
    if (typ is not None or typ_required) and str(typ).lower() not in {t.lower() for t in typs}:
        raise InvalidToken(f"the token's typ {typ!r} is not accepted here")
    kid = header.get("kid")
    key = provider.key_for(kid) if isinstance(kid, str) else None
    if key is None:
        raise InvalidToken("the token is signed with a key the provider does not publish")
    try:
        token = jwt.decode(value, key, algorithms=[str(alg)])
    except (JoseError, ValueError):
        raise InvalidToken("the token's signature is invalid") from None
    return header, dict(token.claims)


def check_issuer_and_audience(provider: Provider, claims: dict[str, Any], audience: str) -> None:
    if claims.get("iss") != provider.issuer:
        raise InvalidToken("the token was issued by another issuer")
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise InvalidToken("the token is meant for another audience")


def check_times(claims: dict[str, Any], now: float | None, *, require_exp: bool) -> None:
    now = time.time() if now is None else now
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(iat, int | float) or iat > now + LEEWAY:
        raise InvalidToken("the token's iat is missing or in the future")
    if exp is None and not require_exp:
        return
    if not isinstance(exp, int | float) or exp + LEEWAY <= now:
        raise InvalidToken("the token has expired")


def left_half_hash(value: str, alg: str) -> str:
    """at_hash (OIDC Core §3.1.3.6): the left half of the alg's SHA-2 hash, base64url."""
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]](
        value.encode("ascii")
    ).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
