"""Who is calling: console admins (the provider's own SSO session) and API callers (bearer tokens).

The console is a first-party OIDC client of the provider (`admin-console`, public, PKCE S256, minimum
level of assurance = the strongest). Signing in, stepping up to the second factor and re-authenticating
for sensitive actions all go through the provider's own /authorize, so the same login rules, throttles
and audit apply; the callback redeems the code (single use) and checks state and PKCE, and from then
on every console request is judged on this browser's SSO session: an admin role, the strongest level
with a second factor, and for sensitive actions an authentication less than 15 minutes old.

The API takes `Authorization: Bearer <access token>` (RFC 6750) issued by the provider, normally by
client credentials to a service account whose allowed scopes include `admin:<role>`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, abort, jsonify, redirect, request, session, url_for

from admin.context import API_PREFIX, CONSOLE_CLIENT_ID, CONSOLE_PREFIX, console_redirect_uri
from idp.domain.admin import REAUTH_SECONDS, Actor
from idp.domain.assurance import has_second_factor
from idp.services.admin import AdminDenied, AdminInputError, NotFound, ReauthRequired
from idp.services.authorization_codes import CodeReused
from idp.web.context import web
from idp.web.responses import error_page
from idp.web.sessions import current_session

bp = Blueprint("admin_auth", __name__, url_prefix=CONSOLE_PREFIX)
log = logging.getLogger(__name__)

LOGIN_KEY = "admin_login"  # in Flask's signed session cookie: state, PKCE verifier, where to return


# -- the console's sign-in ----------------------------------------------------------------------------


@bp.route("/login", methods=["GET"])
def login() -> Response:
    """Start an authorization request for the console (reauth=1: a fresh password and second factor)."""
    ctx = web()
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    session[LOGIN_KEY] = {"state": state, "verifier": verifier, "next": safe_next(request.args.get("next"))}
    params = {
        "client_id": CONSOLE_CLIENT_ID,
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": console_redirect_uri(ctx.settings.issuer),
        "state": state,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        "acr_values": ctx.ladder.levels[-1],
    }
    if request.args.get("reauth"):
        params["prompt"] = "login"
    if request.args.get("ui_locales"):
        params["ui_locales"] = request.args.get("ui_locales", "")[:64]
    return redirect(f"{url_for('authorize.authorize')}?{urlencode(params)}")  # type: ignore[return-value]


@bp.route("/callback", methods=["GET"])
def callback() -> Response:
    """The authorization response: check state, redeem the code (single use), check PKCE and that the
    code belongs to this browser's session, then return to the page that asked for the sign-in."""
    ctx = web()
    pending = session.pop(LOGIN_KEY, None)
    state = request.args.get("state", "")
    if not isinstance(pending, dict) or not hmac.compare_digest(str(pending.get("state", "")), state):
        return error_page(
            400, "invalid_request", "This sign-in is unknown or expired. Open the console again."
        )
    if request.args.get("error"):
        description = request.args.get("error_description", "")[:300]
        return error_page(403, request.args.get("error", "access_denied")[:64], description)
    try:
        grant = ctx.services.codes.redeem(request.args.get("code", "")[:512])
    except (KeyError, CodeReused):
        return error_page(400, "invalid_grant", "This sign-in was already used or has expired.")
    current = current_session(ctx)
    if (
        grant.client_id != CONSOLE_CLIENT_ID
        or grant.redirect_uri != console_redirect_uri(ctx.settings.issuer)
        or not hmac.compare_digest(grant.code_challenge, s256(str(pending.get("verifier", ""))))
        or current is None
        or grant.context.sid != current.sid
    ):
        return error_page(400, "invalid_grant", "This sign-in does not belong to this browser.")
    return redirect(safe_next(pending.get("next")))  # type: ignore[return-value]


def s256(verifier: str) -> str:
    """RFC 7636 §4.2 code challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def safe_next(value: object) -> str:
    """Only a path inside the console: never an absolute or scheme-relative URL (open redirect)."""
    text = value if isinstance(value, str) else ""
    if not text.startswith(f"{CONSOLE_PREFIX}/") or text.startswith("//") or "\\" in text or len(text) > 512:
        return f"{CONSOLE_PREFIX}/"
    if any(ord(c) < 0x20 for c in text):
        return f"{CONSOLE_PREFIX}/"
    return text


def login_url(next_path: str, *, reauth: bool = False) -> str:
    args: dict[str, Any] = {"next": next_path}
    if reauth:
        args["reauth"] = "1"
    return url_for("admin_auth.login", **args)


# -- guards --------------------------------------------------------------------------------------------


def console_actor() -> Actor:
    """The admin behind this browser, or the request ends: to the sign-in (no session, or one
    without the strongest level and a second factor) or with a 403 page (not an admin)."""
    ctx = web()
    here = request.full_path.rstrip("?") if request.method == "GET" else back_path()
    sso = current_session(ctx)
    if sso is None:
        abort(redirect(login_url(here)))
    person = ctx.services.persons.get(sso.person_id)
    if person is None or person.disabled:
        abort(redirect(login_url(here)))
    actor = ctx.services.admin.actor_for_person(
        person.id, auth_time=sso.auth_time, acr=sso.acr, address=request.remote_addr
    )
    if not actor.roles:
        abort(error_page(403, "access_denied", "This account has no administrator role."))
    if sso.acr != ctx.ladder.levels[-1] or not has_second_factor(sso.amr):
        abort(redirect(login_url(here)))
    return actor


def back_path() -> str:
    """Where to return after re-authenticating for a form: its page (hidden field `back`)."""
    return safe_next(request.form.get("back") or request.path)


def api_actor() -> Actor:
    """The caller of the admin API, from its bearer token (RFC 6750 §2.1), or a 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 4096:
        abort(bearer_error(401, "invalid_request", "Send an access token: Authorization: Bearer <token>."))
    actor = web().services.admin.actor_for_token(token.strip(), request.remote_addr)
    if actor is None:
        abort(bearer_error(401, "invalid_token", "The access token is unknown, expired or revoked."))
    return actor


def bearer_error(status: int, error: str, description: str, **params: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    challenge = ", ".join([f'error="{error}"', *(f'{k}="{v}"' for k, v in params.items())])
    response.headers["WWW-Authenticate"] = f'Bearer realm="admin", {challenge}'
    response.headers["Cache-Control"] = "no-store"
    return response


def api_error(status: int, error: str, description: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def is_api() -> bool:
    return request.path.startswith(f"{API_PREFIX}/") or request.path == API_PREFIX


def install_error_handlers(app: Flask) -> None:
    """The service layer's refusals become 403 / re-authentication / 400 / 404 for both halves."""

    @app.errorhandler(AdminDenied)
    def denied(error: AdminDenied) -> Response:
        if is_api():  # RFC 6750 §3.1
            return bearer_error(403, "insufficient_scope", f"This token may not {error.action}.")
        return error_page(403, "access_denied", "Your administrator roles do not allow this action.")

    @app.errorhandler(ReauthRequired)
    def reauth(error: ReauthRequired) -> Response:
        if is_api():  # RFC 9470 §3: step-up with max_age
            return bearer_error(
                401,
                "insufficient_user_authentication",
                "Authenticate again: this action needs a recent sign-in.",
                max_age=str(REAUTH_SECONDS),
            )
        return redirect(login_url(back_path(), reauth=True))  # type: ignore[return-value]

    @app.errorhandler(NotFound)
    def not_found(error: NotFound) -> Response:
        if is_api():
            return api_error(404, "not_found", error.message)
        return error_page(404, "not_found", error.message)

    @app.errorhandler(AdminInputError)
    def bad_input(error: AdminInputError) -> Response:
        if is_api():
            return api_error(400, error.code, error.message)
        return error_page(400, error.code, error.message)
