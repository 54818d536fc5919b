"""`RelyingParty`, the Flask extension: login with PKCE, local sessions, bearer-token guards, logout."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from flask import Flask, current_app, g, jsonify, redirect, request, session
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from adapters.rp_kit.provider import (
    ACCESS_TOKEN_TYPE,
    TOKEN_EXCHANGE,
    Provider,
    ProviderError,
    TokenEndpointError,
    TokenExchangeError,
)
from adapters.rp_kit.sessions import MemorySessionStore, SessionStore
from adapters.rp_kit.tokens import (
    LOGOUT_TOKEN_MAX_AGE,
    InvalidToken,
    verify_access_token,
    verify_id_token,
    verify_logout_token,
)

View = TypeVar("View", bound=Callable[..., Any])
TX_KEY = "rp_kit.login"  # Flask session: the pending login (state, nonce, PKCE verifier, next)
SESSION_KEY = "rp_kit.session"  # Flask session: the opaque local session id, nothing else
AUTH_PARAMS = ("acr_values", "prompt", "ui_locales", "login_hint", "max_age")


class BearerError(Exception):
    """A refused bearer request, rendered per RFC 6750 §3 (and RFC 9470 §3 for a too-weak acr)."""

    def __init__(self, status: int, error: str | None, description: str = "", **params: str) -> None:
        super().__init__(description or error or "unauthorized")
        self.status, self.error, self.description, self.params = status, error, description, params

    def response(self) -> Response:
        challenge = {"error": self.error, "error_description": self.description, **self.params}
        fields = ", ".join(f'{k}="{v.replace(chr(34), chr(39))}"' for k, v in challenge.items() if v)
        body = {k: v for k, v in challenge.items() if v} or {"error": "unauthorized"}
        response = jsonify(body)
        response.status_code = self.status
        response.headers["WWW-Authenticate"] = f"Bearer {fields}".strip()
        response.headers["Cache-Control"] = "no-store"
        return response


class RelyingParty:
    """One OIDC client of the provider, for one Flask app: `RelyingParty(app, issuer=..., client_id=...)`."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None = None,
        redirect_path: str = "/oidc/callback",
        scope: str = "openid profile",
        session_store: SessionStore | None = None,
        base_url: str | None = None,
        id_token_alg: str = "RS256",  # noqa: S107 - an algorithm name, not a secret
        access_token_algs: tuple[str, ...] = ("RS256", "ES256"),
        audience: str | None = None,
        post_logout_redirect_uri: str | None = None,
        session_ttl: int = 8 * 3600,
        fetch_userinfo: bool = True,
        jwks_min_refetch_seconds: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        self.provider = Provider(
            issuer,
            client_id=client_id,
            client_secret=client_secret,
            timeout=timeout,
            jwks_min_refetch_seconds=jwks_min_refetch_seconds,
        )
        self.client_id = client_id
        self.scope = scope
        self.store: SessionStore = session_store or MemorySessionStore()
        self.redirect_path = redirect_path
        self.base_url = base_url.rstrip("/") if base_url else None
        self.id_token_alg = id_token_alg
        self.access_token_algs = access_token_algs
        self.audience = audience or client_id  # RFC 9068 §4: the identifier this resource server answers to
        self.post_logout_redirect_uri = post_logout_redirect_uri
        self.session_ttl = session_ttl
        self.fetch_userinfo = fetch_userinfo
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions["rp_kit"] = self
        app.add_url_rule("/oidc/login", "rp_kit_login", self.login)
        app.add_url_rule(self.redirect_path, "rp_kit_callback", self.callback)
        app.add_url_rule("/oidc/logout", "rp_kit_logout", self.logout, methods=["GET", "POST"])
        app.add_url_rule(
            "/oidc/backchannel-logout", "rp_kit_backchannel_logout", self.backchannel_logout, methods=["POST"]
        )

    # -- login (OIDC Core §3.1, PKCE S256) ---------------------------------------------------------------

    def login(self) -> ResponseReturnValue:
        verifier = secrets.token_urlsafe(48)
        pending = {
            "state": secrets.token_urlsafe(16),
            "nonce": secrets.token_urlsafe(16),
            "verifier": verifier,
            "next": safe_next(request.args.get("next")),
        }
        session[TX_KEY] = pending
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self._redirect_uri(),
            "scope": request.args.get("scope") or self.scope,
            "state": pending["state"],
            "nonce": pending["nonce"],
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        params.update({name: request.args[name] for name in AUTH_PARAMS if request.args.get(name)})
        return redirect(f"{self.provider.metadata['authorization_endpoint']}?{urlencode(params)}")

    def callback(self) -> ResponseReturnValue:
        pending = session.pop(TX_KEY, None)
        args = request.args
        if not pending or not hmac.compare_digest(args.get("state", ""), pending["state"]):
            return sign_in_failed("the state does not match a sign-in started here")
        advertised = self.provider.metadata.get("authorization_response_iss_parameter_supported")
        if args.get("iss", self.provider.issuer if not advertised else None) != self.provider.issuer:
            return sign_in_failed("the response comes from another issuer")  # RFC 9207 §2.4
        if "error" in args or not args.get("code"):
            return sign_in_failed(args.get("error", "no code"), args.get("error_description"))
        try:
            token = self.provider.request_token(
                {
                    "grant_type": "authorization_code",
                    "code": args["code"],
                    "redirect_uri": self._redirect_uri(),
                    "code_verifier": pending["verifier"],
                }
            )
            claims = verify_id_token(
                self.provider,
                str(token.get("id_token", "")),
                alg=self.id_token_alg,
                nonce=pending["nonce"],
                access_token=token["access_token"],
            )
            userinfo = self._userinfo(token["access_token"], claims["sub"])
        except (TokenEndpointError, InvalidToken, ProviderError) as exc:
            return sign_in_failed(str(exc))
        local_id = secrets.token_urlsafe(32)
        now = int(time.time())
        data = {"sub": claims["sub"], "sid": claims.get("sid"), "claims": claims, "userinfo": userinfo}
        data.update(self._token_fields(token, now), created_at=now)
        self.store.save(local_id, data, self.session_ttl)
        if previous := session.get(SESSION_KEY):
            self.store.delete(previous)
        session[SESSION_KEY] = local_id  # a new id per login: no session fixation
        return redirect(pending["next"])

    def _userinfo(self, access_token: str, sub: str) -> dict[str, Any]:
        if not self.fetch_userinfo or "userinfo_endpoint" not in self.provider.metadata:
            return {}
        info = self.provider.userinfo(access_token)
        if info.get("sub") != sub:  # OIDC Core §5.3.2: userinfo for another subject is discarded
            raise InvalidToken("userinfo is about another subject")
        return info

    def _redirect_uri(self) -> str:
        base = self.base_url or request.host_url.rstrip("/")
        return f"{base}{self.redirect_path}"

    @staticmethod
    def _token_fields(token: dict[str, Any], now: int) -> dict[str, Any]:
        fields = {"access_token": token["access_token"], "expires_at": now + int(token.get("expires_in", 0))}
        for name in ("refresh_token", "id_token", "scope"):
            if token.get(name):
                fields[name] = token[name]
        return fields

    # -- the local session --------------------------------------------------------------------------

    def current_session(self) -> dict[str, Any] | None:
        """This browser's login session, or None (never signed in, signed out, or ended by the provider)."""
        if "_rp_kit_session" not in g:
            local_id = session.get(SESSION_KEY)
            data = self.store.load(local_id) if local_id else None
            if local_id and data is None:
                session.pop(SESSION_KEY, None)  # ended elsewhere (back-channel logout) or expired
            g._rp_kit_session = data
        return cast(dict[str, Any] | None, g._rp_kit_session)

    def current_user(self) -> dict[str, Any] | None:
        """The signed-in person: userinfo claims under the ID token's (which win on a clash)."""
        data = self.current_session()
        return {**data.get("userinfo", {}), **data["claims"]} if data else None

    def require_login(self, view: View) -> View:
        """For pages: no login session sends the browser to `/oidc/login?next=<this page>`."""

        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if self.current_session() is None:
                here = request.full_path.rstrip("?") if request.query_string else request.path
                return redirect(f"/oidc/login?{urlencode({'next': here})}")
            return view(*args, **kwargs)

        return cast(View, wrapped)

    def refresh(self) -> dict[str, Any]:
        """Refresh this browser's tokens; the rotated refresh token replaces the old one. An
        invalid_grant (revoked, replayed, session ended) ends the local session and is raised."""
        data = self.current_session()
        local_id = session.get(SESSION_KEY)
        if data is None or not local_id or not data.get("refresh_token"):
            raise LookupError("no login session with a refresh token")
        try:
            token = self.provider.request_token(
                {"grant_type": "refresh_token", "refresh_token": data["refresh_token"]}
            )
        except TokenEndpointError as exc:
            if exc.error == "invalid_grant":
                self.store.delete(local_id)
                session.pop(SESSION_KEY, None)
            raise
        if token.get("id_token"):  # OIDC Core §12.2: same iss, sub, aud; no nonce to check
            claims = verify_id_token(
                self.provider,
                token["id_token"],
                alg=self.id_token_alg,
                nonce=None,
                access_token=token["access_token"],
            )
            if claims["sub"] != data["sub"]:
                raise InvalidToken("the refreshed ID token is about another subject")
        now = int(time.time())
        data.update(self._token_fields(token, now))
        remaining = int(data.get("created_at", now)) + self.session_ttl - now
        self.store.save(local_id, data, max(remaining, 1))
        g._rp_kit_session = data
        return token

    # -- bearer access tokens for APIs (RFC 6750, RFC 9068, RFC 7662) --------------------------------

    def current_token(self) -> dict[str, Any] | None:
        """The claims of the verified bearer token of this request (after a `require_*` guard)."""
        return cast(dict[str, Any] | None, g.get("_rp_kit_token"))

    def verify_bearer(self) -> dict[str, Any]:
        """The request's bearer token, verified: a JWT locally against the JWKS, an opaque one by
        introspection. Raises BearerError."""
        if "_rp_kit_token" in g:
            return cast(dict[str, Any], g._rp_kit_token)
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise BearerError(401, None)  # RFC 6750 §3.1: no credentials, no error code
        try:
            if value.count(".") == 2:
                claims = verify_access_token(
                    self.provider, value, audience=self.audience, algs=self.access_token_algs
                )
            else:
                claims = self._introspect(value)
        except InvalidToken as exc:
            raise BearerError(401, "invalid_token", str(exc)) from None
        except ProviderError as exc:
            raise BearerError(503, "temporarily_unavailable", str(exc)) from None
        g._rp_kit_token = claims
        return claims

    def _introspect(self, value: str) -> dict[str, Any]:
        claims = self.provider.introspect(value)
        if claims.get("active") is not True or claims.get("token_type", "Bearer").lower() != "bearer":
            raise InvalidToken("the access token is not active")
        if claims.get("iss", self.provider.issuer) != self.provider.issuer:
            raise InvalidToken("the token was issued by another issuer")
        aud = claims.get("aud", self.audience)
        if aud != self.audience and not (isinstance(aud, list) and self.audience in aud):
            raise InvalidToken("the token is meant for another audience")
        if int(claims.get("exp", 0)) <= time.time():
            raise InvalidToken("the token has expired")
        return claims

    def _guard(self, check: Callable[[dict[str, Any]], None]) -> Callable[[View], View]:
        def decorator(view: View) -> View:
            @wraps(view)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                try:
                    check(self.verify_bearer())
                except BearerError as exc:
                    return exc.response()
                return view(*args, **kwargs)

            return cast(View, wrapped)

        return decorator

    def require_token(self, view: View) -> View:
        """Any valid bearer access token."""
        return self._guard(lambda claims: None)(view)

    def require_scope(self, *scopes: str) -> Callable[[View], View]:
        def check(claims: dict[str, Any]) -> None:
            missing = set(scopes) - set(str(claims.get("scope", "")).split())
            if missing:
                raise BearerError(
                    403,
                    "insufficient_scope",
                    f"missing scope {' '.join(sorted(missing))}",
                    scope=" ".join(scopes),
                )

        return self._guard(check)

    def require_assurance(self, acr: str) -> Callable[[View], View]:
        """At least level `acr`, compared in the order of the provider's `acr_values_supported`."""

        def check(claims: dict[str, Any]) -> None:
            levels = list(self.provider.metadata.get("acr_values_supported", []))
            if acr not in levels:
                raise RuntimeError(f"the provider does not advertise acr {acr!r}")
            given = claims.get("acr")
            if given not in levels or levels.index(given) < levels.index(acr):
                raise BearerError(
                    401,
                    "insufficient_user_authentication",  # RFC 9470 §3: the client steps the person up
                    f"authentication level {acr} is required",
                    acr_values=acr,
                )

        return self._guard(check)

    def require_entity(self, power: str | None = None) -> Callable[[View], View]:
        """The person acts for a legal entity (法人) — the `entity` claim — holding `power` if given."""

        def check(claims: dict[str, Any]) -> None:
            entity = claims.get("entity")
            if not isinstance(entity, dict) or not entity.get("uscc"):
                raise BearerError(
                    403, "insufficient_scope", "the token does not act for an entity", scope="entity"
                )
            powers = entity.get("powers") or []
            if (
                power is not None and power not in powers and "*" not in powers
            ):  # "*": the legal representative
                raise BearerError(403, "insufficient_scope", f"the entity grants no power {power!r}")

        return self._guard(check)

    # -- logout -------------------------------------------------------------------------------------

    def backchannel_logout(self) -> ResponseReturnValue:
        """Back-Channel Logout 1.0 §2.5-§2.8: verify the logout token, end every matching local session."""
        try:
            claims = verify_logout_token(
                self.provider, request.form.get("logout_token", ""), alg=self.id_token_alg
            )
            if not self.store.remember_once(f"jti:{claims['jti']}", LOGOUT_TOKEN_MAX_AGE + 120):
                raise InvalidToken("the logout token was already used")
        except InvalidToken as exc:
            return json_error(400, "invalid_request", str(exc))
        except ProviderError as exc:
            return json_error(503, "temporarily_unavailable", str(exc))  # the provider retries
        sid = claims.get("sid")
        self.store.end_sessions(sid=sid, sub=None if sid else claims.get("sub"))
        response = Response(status=200)
        response.headers["Cache-Control"] = "no-store"
        return response

    def logout(self) -> ResponseReturnValue:
        """RP-Initiated Logout 1.0 §2: end the local session, then the provider's, with id_token_hint."""
        data = self.current_session()
        local_id = session.pop(SESSION_KEY, None)
        if local_id:
            self.store.delete(local_id)
        g._rp_kit_session = None
        end_session = self.provider.metadata.get("end_session_endpoint")
        if not end_session:
            return redirect(self.post_logout_redirect_uri or "/")
        params = {"client_id": self.client_id}
        if data and data.get("id_token"):
            params["id_token_hint"] = data["id_token"]
        if self.post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = self.post_logout_redirect_uri
        return redirect(f"{end_session}?{urlencode(params)}")

    # -- token exchange (RFC 8693) ------------------------------------------------------------------

    def exchange_token(
        self, subject_token: str, *, audience: str, scope: str | None = None
    ) -> dict[str, Any]:
        """Trade a person's access token for one meant for another service; TokenExchangeError on refusal."""
        form = {
            "grant_type": TOKEN_EXCHANGE,
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "requested_token_type": ACCESS_TOKEN_TYPE,
            "audience": audience,
        }
        if scope:
            form["scope"] = scope
        token = self.provider.request_token(form, TokenExchangeError)
        if token.get("issued_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise TokenExchangeError("invalid_response", f"issued_token_type {token['issued_token_type']}")
        return token


def current_rp() -> RelyingParty:
    return cast(RelyingParty, current_app.extensions["rp_kit"])


def current_user() -> dict[str, Any] | None:
    return current_rp().current_user()


def current_token() -> dict[str, Any] | None:
    return current_rp().current_token()


def safe_next(value: str | None) -> str:
    """Only a local path: never another host (`//evil`, `/\\evil`, `https://...`), never control characters."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc else value


def sign_in_failed(reason: str, description: str | None = None) -> Response:
    text = f"Sign-in failed: {reason}" + (f" ({description})" if description else "")
    return Response(text, status=400, mimetype="text/plain")


def json_error(status: int, error: str, description: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response
