"""Token, introspection, revocation and userinfo endpoints: strict input checks, then Authlib."""

from __future__ import annotations

import base64
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from idp.domain.entities import CannotActForEntity
from idp.protocol.claims import claims_for_scope
from idp.services.entities import EntityError
from idp.web.context import web
from idp.web.responses import oauth_error

bp = Blueprint("api", __name__)

FORM = "application/x-www-form-urlencoded"
BASIC_CHALLENGE = 'Basic realm="token endpoint", charset="UTF-8"'
MAX_BASIC_CREDENTIALS = 4096


def check_form_request() -> Response | None:
    """RFC 6749 §3.2, §2.3: form-encoded POST body, UTF-8, no repeated parameters, nothing in the URL
    (Authlib reads URL and body together), well-formed Basic credentials, one authentication method."""
    if request.mimetype != FORM:
        return oauth_error("invalid_request", "The request body must be application/x-www-form-urlencoded.")
    try:
        request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError:
        return oauth_error("invalid_request", "The request body is not valid UTF-8.")
    if request.args:
        return oauth_error("invalid_request", "Parameters must be sent in the request body, not in the URL.")
    for name, values in request.form.lists():
        if len(values) > 1:
            return oauth_error("invalid_request", f"Parameter '{name}' must not be repeated.")
    auth = request.headers.get("Authorization")
    if auth is not None:
        problem = basic_credentials_problem(auth)
        if problem:
            return invalid_client(problem)
        if request.form.get("client_secret") or request.form.get("client_assertion"):
            return oauth_error("invalid_request", "Use only one client authentication method.")
    return None


def basic_credentials_problem(header: str) -> str | None:
    """Why an Authorization header is not usable HTTP Basic client credentials (RFC 7617), or None.

    Checked here because Authlib decodes the credentials without catching non-UTF-8 bytes."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return "Unsupported Authorization scheme."
    credentials = credentials.strip()
    if not credentials or len(credentials) > MAX_BASIC_CREDENTIALS:
        return "Malformed Basic credentials."
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII input
        return "Malformed Basic credentials."
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id or not secret:
        return "Malformed Basic credentials."
    return None


def invalid_client(description: str) -> Response:
    return oauth_error("invalid_client", description, 401, {"WWW-Authenticate": BASIC_CHALLENGE})


def client_auth_as_401(response: Response) -> Response:
    """RFC 6749 §5.2: answer every failed client authentication with 401 and a Basic challenge
    (Authlib answers 400 for an unknown client_id in the body or a bad client assertion)."""
    if response.status_code == 400 and response.is_json:
        body = response.get_json(silent=True)
        if isinstance(body, dict) and body.get("error") == "invalid_client":
            response.status_code = 401
            response.headers["WWW-Authenticate"] = BASIC_CHALLENGE
    return response


@bp.route("/token", methods=["POST"])
def token() -> Any:
    problem = check_form_request()
    if problem is not None:
        return problem
    if not request.form.get("grant_type"):
        return oauth_error("invalid_request", "Missing 'grant_type' parameter.")
    return client_auth_as_401(web().server.create_token_response())


@bp.route("/introspect", methods=["POST"])
def introspect() -> Any:
    return check_form_request() or client_auth_as_401(web().server.create_endpoint_response("introspection"))


@bp.route("/revoke", methods=["POST"])
def revoke() -> Any:
    return check_form_request() or client_auth_as_401(web().server.create_endpoint_response("revocation"))


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> Response:
    """OIDC Core §5.3 with a bearer header (RFC 6750 §2.1); revocation and logout apply at once."""
    ctx = web()
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        # RFC 6750 §3.1: no credentials (or another scheme): a bare challenge, no error code.
        return oauth_error(
            "invalid_request",
            "A bearer token in the Authorization header is required.",
            401,
            {"WWW-Authenticate": 'Bearer realm="userinfo"'},
        )
    if not value.strip():
        return bearer_error("invalid_token", "The bearer token is missing.", 401)
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
    claims = claims_for_scope(person, record.scope)
    if record.entity_id:
        try:
            claims["entity"] = ctx.services.entities.acting_as(person.id, record.entity_id).to_claim()
        except (CannotActForEntity, EntityError):
            return bearer_error("invalid_token", "The authority to act for the legal entity has ended.", 401)
    ctx.services.audit.record(
        "data.read",
        actor=record.client_id,
        subject=person.id,
        client_id=record.client_id,
        purpose=record.scope,
        address=request.remote_addr,
        details={"endpoint": "userinfo", "claims": sorted(claims)},
    )
    response = jsonify(claims)
    response.headers["Cache-Control"] = "no-store"
    return response


def bearer_error(error: str, description: str, status: int) -> Response:
    challenge = f'Bearer error="{error}", error_description="{description}"'
    return oauth_error(error, description, status, {"WWW-Authenticate": challenge})
