"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2-§3) and the confirmation page."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, redirect, render_template, request
from joserfc import jwt
from joserfc.errors import JoseError

from idp.domain.models import Client
from idp.web.context import WebContext, web
from idp.web.responses import error_page
from idp.web.sessions import clear_session_cookie, current_session

bp = Blueprint("logout", __name__)

PARAMS = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id", "ui_locales", "logout_hint")


class LogoutRequestError(Exception):
    pass


@bp.route("/logout", methods=["GET", "POST"])
def end_session() -> Response | str:
    ctx = web()
    try:
        params = read_logout_parameters()
        hint = validate_id_token_hint(ctx, params.get("id_token_hint"))
        client = find_logout_client(ctx, params, hint)
        redirect_uri = check_post_logout_redirect_uri(params, client)
    except LogoutRequestError as exc:
        return error_page(400, "invalid_request", str(exc))
    session = current_session(ctx)
    g.ui_locales = params.get("ui_locales")
    # §2: without a valid id_token_hint for this session the person must confirm (CSRF-protected POST).
    hint_matches = hint is not None and (session is None or hint.get("sub") == session.person_id)
    if session is not None and not hint_matches:
        return render_template(
            "logout_confirm.html",
            client_name=client.client_name if client else None,
            client_id=client.client_id if client else "",
            state=params.get("state", ""),
            post_logout_redirect_uri=redirect_uri or "",
            id_token_hint="",
        )
    return finish_logout(ctx, redirect_uri, params.get("state"))


@bp.route("/logout/confirm", methods=["POST"])
def confirm() -> Response | str:
    ctx = web()
    params = {
        name: request.form.get(name) or "" for name in ("client_id", "post_logout_redirect_uri", "state")
    }
    client = ctx.services.clients.get(params["client_id"]) if params["client_id"] else None
    try:
        redirect_uri = check_post_logout_redirect_uri(params, client)
    except LogoutRequestError as exc:
        return error_page(400, "invalid_request", str(exc))
    if request.form.get("decision") != "logout":
        return redirect("/")  # type: ignore[return-value]
    return finish_logout(ctx, redirect_uri, params.get("state"))


def read_logout_parameters() -> dict[str, str]:
    values: dict[str, str] = {}
    for name in PARAMS:
        given = request.values.getlist(name)
        if len(given) > 1:
            raise LogoutRequestError(f"Parameter '{name}' must not be repeated.")
        if given:
            if len(given[0]) > 8192:
                raise LogoutRequestError(f"Parameter '{name}' is too long.")
            values[name] = given[0]
    return values


def validate_id_token_hint(ctx: WebContext, hint: str | None) -> dict[str, Any] | None:
    """An ID token we issued (signature and iss); an expired one is still a valid hint (§2)."""
    if not hint:
        return None
    try:
        token = jwt.decode(hint, ctx.services.keys.verification_key_set(), algorithms=["RS256", "ES256"])
    except (JoseError, ValueError):
        raise LogoutRequestError("The id_token_hint is not a valid ID token from this provider.") from None
    if token.claims.get("iss") != ctx.settings.issuer:
        raise LogoutRequestError("The id_token_hint was not issued by this provider.")
    return dict(token.claims)


def find_logout_client(ctx: WebContext, params: dict[str, str], hint: dict[str, Any] | None) -> Client | None:
    client_id = params.get("client_id")
    aud = hint.get("aud") if hint else None
    if isinstance(aud, list):
        aud = aud[0] if len(aud) == 1 else None
    if client_id and aud and client_id != aud:
        raise LogoutRequestError("client_id does not match the id_token_hint.")
    client_id = client_id or aud
    if not client_id:
        return None
    client = ctx.services.clients.get(client_id)
    if client is None:
        raise LogoutRequestError("The client is unknown.")
    return client


def check_post_logout_redirect_uri(params: dict[str, str], client: Client | None) -> str | None:
    uri = params.get("post_logout_redirect_uri")
    if not uri:
        return None
    if client is None or uri not in client.post_logout_redirect_uris:
        raise LogoutRequestError("The post_logout_redirect_uri is not registered for this client.")
    return uri


def finish_logout(ctx: WebContext, redirect_uri: str | None, state: str | None) -> Response:
    session = current_session(ctx)
    if session is not None:
        ctx.services.logout.end_session(session.sid, session.person_id)
    if redirect_uri:
        query = urlencode({"state": state}) if state else ""
        separator = "&" if "?" in redirect_uri else "?"
        response = redirect(f"{redirect_uri}{separator}{query}" if query else redirect_uri)
    else:
        response = Response(render_template("logged_out.html"))
    clear_session_cookie(ctx, response)  # type: ignore[arg-type]
    return response  # type: ignore[return-value]
