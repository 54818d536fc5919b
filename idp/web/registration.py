"""Dynamic client registration (RFC 7591) and the client configuration endpoint (RFC 7592).

POST /connect/register with an initial access token an admin issued; GET, PUT and DELETE
/connect/register/<client_id> with the registration access token the registration returned. The path
is not /register, which is the page where a person creates an account."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from idp.domain.models import Client
from idp.services.registration import MAX_TOKEN_LENGTH, REGISTRATION_PATH, Registration, RegistrationError
from idp.web.context import web
from idp.web.responses import oauth_error

bp = Blueprint("registration", __name__)

JSON = "application/json"
CHALLENGE = 'Bearer error="invalid_token"'


class DuplicateMember(ValueError):
    pass


def bearer_token() -> str | None:
    """The bearer token of the Authorization header (RFC 6750 §2.1), or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_TOKEN_LENGTH:
        return None
    return value


def invalid_token(description: str) -> Response:
    return oauth_error("invalid_token", description, 401, {"WWW-Authenticate": CHALLENGE})


def registration_error(error: RegistrationError) -> Response:
    if error.code == "invalid_token":
        return invalid_token(error.message)
    return oauth_error(error.code, error.message)


def json_object() -> dict[str, Any] | Response:
    """The request body as a JSON object (RFC 7591 §3.1), or the error to answer."""
    if request.mimetype != JSON:
        return oauth_error(
            "invalid_request", "The request body must be a JSON object sent as application/json."
        )
    try:
        document = json.loads(
            request.get_data(cache=False),
            object_pairs_hook=_unique_members,
            parse_constant=_no_constant,
        )
    except DuplicateMember as exc:
        return oauth_error("invalid_client_metadata", f"The member {exc} appears more than once.")
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        return oauth_error("invalid_client_metadata", "The request body is not valid JSON.")
    if not isinstance(document, dict):
        return oauth_error("invalid_client_metadata", "The request body must be a JSON object.")
    return document


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise DuplicateMember(json.dumps(name))
        document[name] = value
    return document


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def client_information(registration: Registration, status: int = 200) -> Response:
    response = jsonify(registration.response())
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.route(REGISTRATION_PATH, methods=["POST"])
def register() -> Response:
    """RFC 7591 §3: the initial access token is checked first, spent only once the metadata is
    known to be good (a rejected request does not use it up), then the client is created."""
    ctx = web()
    service = ctx.services.registration
    value = bearer_token()
    if value is None or service.find_initial_token(value) is None:
        return invalid_token("A valid initial access token is required to register a client.")
    metadata = json_object()
    if isinstance(metadata, Response):
        return metadata
    try:
        service.validate(metadata)
        token = service.consume_initial_token(value)
        if token is None:  # used up, revoked or expired meanwhile
            return invalid_token("A valid initial access token is required to register a client.")
        registration = service.register(metadata, token.id)
    except RegistrationError as error:
        return registration_error(error)
    client = registration.client
    ctx.services.audit.record(
        "client.registered",
        actor=f"dcr:{token.id}",
        client_id=client.client_id,
        purpose=" ".join(client.scope),
        address=request.remote_addr,
        details={
            "initial_token": token.id,
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
            "grant_types": list(client.grant_types),
        },
    )
    return client_information(registration, 201)


def authenticated(client_id: str) -> tuple[Client, str] | Response:
    """The client and the registration access token presented for it. A wrong token, another
    client's token and an unknown client_id get the same answer (RFC 7592 §2)."""
    value = bearer_token()
    client = web().services.registration.client_for_registration_token(client_id, value) if value else None
    if client is None or value is None:
        return invalid_token("The registration access token is not valid for this client.")
    return client, value


@bp.route(f"{REGISTRATION_PATH}/<client_id>", methods=["GET"])
def read(client_id: str) -> Response:
    found = authenticated(client_id)
    if isinstance(found, Response):
        return found
    client, value = found
    return client_information(web().services.registration.read(client, registration_access_token=value))


@bp.route(f"{REGISTRATION_PATH}/<client_id>", methods=["PUT"])
def replace(client_id: str) -> Response:
    ctx = web()
    found = authenticated(client_id)
    if isinstance(found, Response):
        return found
    _, value = found
    metadata = json_object()
    if isinstance(metadata, Response):
        return metadata
    try:
        registration = ctx.services.registration.update(client_id, metadata, registration_access_token=value)
    except RegistrationError as error:
        return registration_error(error)
    client = registration.client
    ctx.services.audit.record(
        "client.updated",
        actor=client_id,
        client_id=client_id,
        purpose=" ".join(client.scope),
        address=request.remote_addr,
        details={
            "token_endpoint_auth_method": client.token_endpoint_auth_method,
            "grant_types": list(client.grant_types),
            "secret_issued": registration.client_secret is not None,
        },
    )
    return client_information(registration)


@bp.route(f"{REGISTRATION_PATH}/<client_id>", methods=["DELETE"])
def delete(client_id: str) -> Response:
    ctx = web()
    found = authenticated(client_id)
    if isinstance(found, Response):
        return found
    if not ctx.services.registration.delete(client_id):  # deleted meanwhile by a concurrent request
        return invalid_token("The registration access token is not valid for this client.")
    ctx.services.audit.record(
        "client.deleted", actor=client_id, client_id=client_id, address=request.remote_addr
    )
    return Response(status=204, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
