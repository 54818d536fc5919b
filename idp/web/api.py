"""Token, introspection, revocation and userinfo endpoints: strict input checks, then Authlib."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from idp.protocol.claims import claims_for_scope
from idp.web.context import web
from idp.web.responses import oauth_error

bp = Blueprint("api", __name__)

FORM = "application/x-www-form-urlencoded"


def check_form_request() -> Response | None:
    """RFC 6749 §3.2: form-encoded POST, UTF-8, no repeated parameters."""
    if request.mimetype != FORM:
        return oauth_error("invalid_request", "The request body must be application/x-www-form-urlencoded.")
    try:
        request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError:
        return oauth_error("invalid_request", "The request body is not valid UTF-8.")
    for name, values in request.form.lists():
        if len(values) > 1:
            return oauth_error("invalid_request", f"Parameter '{name}' must not be repeated.")
    auth = request.headers.get("Authorization")
    if auth is not None and not auth.lower().startswith("basic "):
        return oauth_error(
            "invalid_client", "Unsupported Authorization scheme.", 401, {"WWW-Authenticate": "Basic"}
        )
    return None


@bp.route("/token", methods=["POST"])
def token() -> Any:
    return check_form_request() or web().server.create_token_response()


@bp.route("/introspect", methods=["POST"])
def introspect() -> Any:
    return check_form_request() or web().server.create_endpoint_response("introspection")


@bp.route("/revoke", methods=["POST"])
def revoke() -> Any:
    return check_form_request() or web().server.create_endpoint_response("revocation")


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """OIDC Core §5.3 with a bearer header (RFC 6750 §2.1); revocation and logout apply at once."""
    ctx = web()
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return bearer_error("invalid_request", "A bearer token in the Authorization header is required.", 401)
    record = ctx.services.tokens.find(value.strip())
    if (
        record is None
        or record.kind != "access"
        or not record.is_active(time.time())
        or record.person_id is None
        or (record.sid is not None and not ctx.services.sso.is_active(record.sid))
    ):
        return bearer_error("invalid_token", "The access token is invalid, expired or revoked.", 401)
    if "openid" not in record.scope.split():
        return bearer_error("insufficient_scope", "The token lacks the openid scope.", 403)
    person = ctx.services.persons.get(record.person_id)
    if person is None or person.disabled:
        return bearer_error("invalid_token", "The person is no longer active.", 401)
    response = jsonify(claims_for_scope(person, record.scope))
    response.headers["Cache-Control"] = "no-store"
    return response


def bearer_error(error: str, description: str, status: int) -> Response:
    challenge = f'Bearer error="{error}", error_description="{description}"'
    return oauth_error(error, description, status, {"WWW-Authenticate": challenge})
