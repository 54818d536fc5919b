"""The admin JSON API (`/admin/api/v1`): every action of the console, for automation.

Each handler authenticates the bearer token (`api_actor`), checks the types and sizes of what it was
sent (a 400 `invalid_request`, never a 500), calls exactly one `AdminService` method and renders the
result. Refusals of the service become JSON by the handlers in `admin.auth`; the OpenAPI 3.1 document
(`admin.openapi`) describes the same limits that are enforced here."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from typing import Any, NoReturn
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request

from admin import openapi
from admin.auth import api_actor, api_error
from admin.context import API_PREFIX
from idp.domain.entities import AgentAuthorisation, LegalEntity
from idp.domain.models import Client, Person, SsoSession
from idp.services.admin import AdminGrant, AdminInputError, Page, PersonDetail, kept_metadata
from idp.services.audit import AuditFilter
from idp.web.context import web

bp = Blueprint("admin_api", __name__, url_prefix=API_PREFIX)

MAX_DEPTH = 8


class InvalidRequest(AdminInputError):
    def __init__(self, message: str) -> None:
        super().__init__("invalid_request", message)


def _invalid(message: str) -> NoReturn:
    raise InvalidRequest(message)


@bp.errorhandler(AdminInputError)
def _input_error(error: AdminInputError) -> Response:
    """The service's `not_found` codes (e.g. an unknown authorisation) are a 404 here, like NotFound."""
    if error.code == "not_found":
        return api_error(404, "not_found", error.message)
    return api_error(400, error.code, error.message)


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


# -- input --------------------------------------------------------------------------------------------


def _check_text(value: str, where: str, max_length: int) -> str:
    if len(value) > max_length:
        _invalid(f"{where} must be at most {max_length} characters.")
    if "\x00" in value:
        _invalid(f"{where} must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        _invalid(f"{where} must be valid Unicode text.")
    return value


def _ident(value: str, where: str) -> str:
    """A path identifier: 1-128 characters, no control characters."""
    _check_text(value, where, openapi.MAX_ID)
    if not value or any(ord(c) < 0x20 for c in value):
        _invalid(f"{where} is not a valid identifier.")
    return value


def _arg_text(name: str, max_length: int) -> str:
    return _check_text(request.args.get(name, ""), f"The parameter {name}", max_length)


def _arg_int(name: str, default: int | None, minimum: int, maximum: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    raw = raw.strip()
    if not raw or len(raw) > 20 or not raw.lstrip("-").isdigit() or not raw.lstrip("-").isascii():
        _invalid(f"The parameter {name} must be an integer.")
    value = int(raw)
    if not minimum <= value <= maximum:
        _invalid(f"The parameter {name} must be between {minimum} and {maximum}.")
    return value


def _paging() -> tuple[int, int]:
    offset = _arg_int("offset", 0, 0, openapi.MAX_OFFSET)
    limit = _arg_int("limit", openapi.DEFAULT_LIMIT, 1, openapi.MAX_LIMIT)
    assert offset is not None and limit is not None
    return offset, limit


def _reject_constant(name: str) -> NoReturn:
    _invalid(f"The body must be JSON without {name}.")


def _body(required: bool = True) -> dict[str, Any]:
    """The JSON object sent as the request body ({} for an optional, empty body)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            _invalid("Send a JSON object as the request body (Content-Type: application/json).")
        return {}
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        _invalid("The request body must be application/json.")
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        _invalid("The request body is nested too deeply.")
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        _invalid("The request body is not valid JSON.")
    if not isinstance(value, dict):
        _invalid("The request body must be a JSON object.")
    _check_json(value, "The body", 0)
    return value


def _check_json(value: Any, where: str, depth: int) -> None:
    """No NUL characters, lone surrogates or non-finite numbers anywhere; bounded nesting."""
    if depth > MAX_DEPTH:
        _invalid("The request body is nested too deeply.")
    if isinstance(value, str):
        _check_text(value, where, 100_000)
    elif isinstance(value, float) and not math.isfinite(value):
        _invalid(f"{where} must be a finite number.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, "A member name", 200)
            _check_json(item, f"{where}.{key}"[:200], depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, where, depth + 1)


def _text(body: Mapping[str, Any], name: str, max_length: int, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            _invalid(f"{name} is required.")
        return None
    if not isinstance(value, str):
        _invalid(f"{name} must be a string.")
    if required and not value.strip():
        _invalid(f"{name} must not be empty.")
    return _check_text(value, name, max_length)


def _integer(body: Mapping[str, Any], name: str, minimum: int, maximum: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        _invalid(f"{name} must be an integer.")
    if not minimum <= value <= maximum:
        _invalid(f"{name} must be between {minimum} and {maximum}.")
    return value


def _client_metadata(body: dict[str, Any]) -> dict[str, Any]:
    """Types and sizes of the RFC 7591 members we know (the service checks their meaning)."""
    for name, limit in (
        ("client_id", openapi.MAX_ID),
        ("client_name", openapi.MAX_NAME),
        ("token_endpoint_auth_method", 64),
        ("scope", openapi.MAX_SCOPE),
        ("id_token_signed_response_alg", 16),
        ("access_token_format", 16),
        ("minimum_acr", 64),
    ):
        _text(body, name, limit)
    for name in ("redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types"):
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, list) or len(value) > openapi.MAX_URIS:
            _invalid(f"{name} must be a list of at most {openapi.MAX_URIS} strings.")
        for item in value:
            if not isinstance(item, str) or len(item) > openapi.MAX_URI:
                _invalid(f"{name} must be a list of strings of at most {openapi.MAX_URI} characters.")
            if name.endswith("uris"):
                _check_uri(item, name)
    uri = _text(body, "backchannel_logout_uri", openapi.MAX_URI)
    if uri is not None:
        _check_uri(uri, "backchannel_logout_uri")
    for flag in ("first_party", "backchannel_logout_session_required"):
        if flag in body and not isinstance(body[flag], bool):
            _invalid(f"{flag} must be true or false.")
    if body.get("jwks") is not None and not isinstance(body["jwks"], dict):
        _invalid("jwks must be an object.")
    return body


def _check_uri(uri: str, name: str) -> None:
    try:
        parts = urlsplit(uri)
        parts.hostname  # noqa: B018 - parsing the netloc may fail too
        parts.port  # noqa: B018
    except ValueError:
        _invalid(f"{name}: {uri[:100]!r} is not a valid URL.")


# -- output -------------------------------------------------------------------------------------------


def _client(client: Client, secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "client_id": client.client_id,
        "client_name": client.client_name,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": list(client.response_types),
        "scope": " ".join(client.scope),
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "access_token_format": client.access_token_format,
        "first_party": client.first_party,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "minimum_acr": client.minimum_acr,
        "jwks": client.jwks,
        "token_exchange": [],
        "audiences": [],
        **kept_metadata(client),  # the targets, as an update takes them
        "disabled": client.disabled,
    }
    if secret:
        out["client_secret"] = secret
    return out


def _person(person: Person) -> dict[str, Any]:
    return asdict(person)


def _session(session: SsoSession) -> dict[str, Any]:
    return {
        "sid": session.sid,
        "auth_time": session.auth_time,
        "acr": session.acr,
        "amr": list(session.amr),
        "created_at": session.created_at,
    }


def _authorisation(found: AgentAuthorisation) -> dict[str, Any]:
    return {
        "id": found.id,
        "entity_id": found.entity_id,
        "person_id": found.person_id,
        "role": str(found.role.value if hasattr(found.role, "value") else found.role),
        "powers": list(found.powers),
        "valid_from": found.valid_from,
        "valid_until": found.valid_until,
        "granted_by": found.granted_by,
        "revoked_at": found.revoked_at,
    }


def _entity(entity: LegalEntity) -> dict[str, Any]:
    return {
        "id": entity.id,
        "uscc": entity.uscc,
        "name": entity.name,
        "entity_type": entity.entity_type,
        "status": str(entity.status.value if hasattr(entity.status, "value") else entity.status),
        "verified_at": entity.verified_at,
    }


def _person_detail(detail: PersonDetail) -> dict[str, Any]:
    return {
        **_person(detail.person),
        "roles": sorted(detail.roles),
        "sessions": [_session(s) for s in detail.sessions],
        "login_locked": detail.login_locked,
        "authorisations": [_authorisation(a) for a in detail.authorisations],
    }


def _grant(grant: AdminGrant) -> dict[str, Any]:
    return asdict(grant)


def _initial_token(token: Any, value: str | None = None) -> dict[str, Any]:
    out = asdict(token)
    out.pop("digest", None)
    if value is not None:
        out["token"] = value
    return out


def _page(page: Page[Any], render: Callable[[Any], dict[str, Any]]) -> Response:
    return jsonify(
        {
            "items": [render(item) for item in page.items],
            "offset": page.offset,
            "limit": page.limit,
            "has_more": page.has_more,
        }
    )


def _created(payload: dict[str, Any]) -> tuple[Response, int]:
    return jsonify(payload), 201


def _no_content() -> Response:
    return Response(status=204)


def _not_found(what: str) -> NoReturn:
    raise AdminInputError("not_found", f"There is no such {what}.")


def _admin() -> Any:
    return web().services.admin


# -- the document ------------------------------------------------------------------------------------


@bp.route("/openapi.json", methods=["GET"])
def openapi_document() -> Response:
    response = jsonify(openapi.build_document(API_PREFIX))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


# -- clients ------------------------------------------------------------------------------------------


@bp.route("/clients", methods=["GET"])
def list_clients() -> Response:
    actor = api_actor()
    query = _arg_text("q", openapi.MAX_QUERY)
    offset, limit = _paging()
    return _page(_admin().list_clients(actor, query, offset, limit), _client)


@bp.route("/clients", methods=["POST"])
def create_client() -> tuple[Response, int]:
    actor = api_actor()
    metadata = _client_metadata(_body())
    client, secret = _admin().create_client(actor, metadata)
    return _created(_client(client, secret))


@bp.route("/clients/<client_id>", methods=["GET"])
def get_client(client_id: str) -> Response:
    actor = api_actor()
    return jsonify(_client(_admin().get_client(actor, _ident(client_id, "client_id"))))


@bp.route("/clients/<client_id>", methods=["PUT"])
def update_client(client_id: str) -> Response:
    actor = api_actor()
    _ident(client_id, "client_id")
    metadata = _client_metadata(_body())
    if "client_id" in metadata and metadata["client_id"] != client_id:
        _invalid("client_id in the body must match the path (or be left out).")
    client, secret = _admin().update_client(actor, client_id, metadata)
    return jsonify(_client(client, secret))


@bp.route("/clients/<client_id>/disable", methods=["POST"])
def disable_client(client_id: str) -> Response:
    actor = api_actor()
    return jsonify(_client(_admin().set_client_disabled(actor, _ident(client_id, "client_id"), True)))


@bp.route("/clients/<client_id>/enable", methods=["POST"])
def enable_client(client_id: str) -> Response:
    actor = api_actor()
    return jsonify(_client(_admin().set_client_disabled(actor, _ident(client_id, "client_id"), False)))


@bp.route("/clients/<client_id>/secret", methods=["POST"])
def rotate_client_secret(client_id: str) -> Response:
    actor = api_actor()
    secret = _admin().rotate_client_secret(actor, _ident(client_id, "client_id"))
    return jsonify({"client_id": client_id, "client_secret": secret})


# -- initial access tokens (dynamic registration) ----------------------------------------------------


@bp.route("/initial-access-tokens", methods=["GET"])
def list_initial_tokens() -> Response:
    actor = api_actor()
    return jsonify({"items": [_initial_token(t) for t in _admin().list_initial_tokens(actor)]})


@bp.route("/initial-access-tokens", methods=["POST"])
def issue_initial_token() -> tuple[Response, int]:
    actor = api_actor()
    body = _body(required=False)
    label = _text(body, "label", openapi.MAX_NAME) or ""
    ttl = _integer(body, "ttl_seconds", 60, openapi.MAX_TTL)
    uses = _integer(body, "max_uses", 1, openapi.MAX_USES)
    token, value = _admin().issue_initial_token(
        actor, label, 86400 if ttl is None else ttl, 1 if uses is None else uses
    )
    return _created(_initial_token(token, value))


@bp.route("/initial-access-tokens/<token_id>", methods=["DELETE"])
def revoke_initial_token(token_id: str) -> Response:
    actor = api_actor()
    if not _admin().revoke_initial_token(actor, _ident(token_id, "token_id")):
        _not_found("active initial access token")
    return _no_content()


# -- persons ------------------------------------------------------------------------------------------


@bp.route("/persons/search", methods=["POST"])
def search_persons() -> Response:
    """The query travels in the body, never in the URL (access logs would keep names and ID numbers)."""
    actor = api_actor()
    body = _body(required=False)
    query = _text(body, "q", openapi.MAX_QUERY) or ""
    offset = _integer(body, "offset", 0, openapi.MAX_OFFSET)
    limit = _integer(body, "limit", 1, openapi.MAX_LIMIT)
    page = _admin().search_persons(
        actor, query, 0 if offset is None else offset, openapi.DEFAULT_LIMIT if limit is None else limit
    )
    return _page(page, _person)


@bp.route("/persons/<person_id>", methods=["GET"])
def view_person(person_id: str) -> Response:
    actor = api_actor()
    return jsonify(_person_detail(_admin().view_person(actor, _ident(person_id, "person_id"))))


@bp.route("/persons/<person_id>/lock", methods=["POST"])
def lock_person(person_id: str) -> Response:
    actor = api_actor()
    return jsonify(_person(_admin().lock_person(actor, _ident(person_id, "person_id"))))


@bp.route("/persons/<person_id>/unlock", methods=["POST"])
def unlock_person(person_id: str) -> Response:
    actor = api_actor()
    return jsonify(_person(_admin().unlock_person(actor, _ident(person_id, "person_id"))))


@bp.route("/persons/<person_id>/reset-mfa", methods=["POST"])
def reset_mfa(person_id: str) -> Response:
    actor = api_actor()
    return jsonify(_person(_admin().reset_mfa(actor, _ident(person_id, "person_id"))))


@bp.route("/persons/<person_id>/sessions", methods=["DELETE"])
def end_all_sessions(person_id: str) -> Response:
    actor = api_actor()
    return jsonify({"ended": _admin().end_sessions(actor, _ident(person_id, "person_id"))})


@bp.route("/persons/<person_id>/sessions/<sid>", methods=["DELETE"])
def end_session(person_id: str, sid: str) -> Response:
    actor = api_actor()
    _ident(person_id, "person_id")
    return jsonify({"ended": _admin().end_sessions(actor, person_id, _ident(sid, "sid"))})


# -- legal entities -----------------------------------------------------------------------------------


@bp.route("/entities", methods=["GET"])
def list_entities() -> Response:
    actor = api_actor()
    offset, limit = _paging()
    return _page(_admin().list_entities(actor, offset, limit), _entity)


@bp.route("/entities", methods=["POST"])
def create_entity() -> tuple[Response, int]:
    actor = api_actor()
    body = _body()
    uscc = _text(body, "uscc", 64, required=True)
    name = _text(body, "name", openapi.MAX_NAME, required=True)
    entity_type = _text(body, "entity_type", 32) or "enterprise"
    assert uscc is not None and name is not None
    return _created(_entity(_admin().create_entity(actor, uscc, name, entity_type)))


@bp.route("/entities/<entity_id>", methods=["GET"])
def view_entity(entity_id: str) -> Response:
    actor = api_actor()
    detail = _admin().view_entity(actor, _ident(entity_id, "entity_id"))
    return jsonify(
        {**_entity(detail.entity), "authorisations": [_authorisation(a) for a in detail.authorisations]}
    )


@bp.route("/entities/<entity_id>/verify", methods=["POST"])
def verify_entity(entity_id: str) -> Response:
    actor = api_actor()
    return jsonify(_entity(_admin().verify_entity(actor, _ident(entity_id, "entity_id"))))


@bp.route("/entities/<entity_id>/suspend", methods=["POST"])
def suspend_entity(entity_id: str) -> Response:
    actor = api_actor()
    return jsonify(_entity(_admin().suspend_entity(actor, _ident(entity_id, "entity_id"))))


@bp.route("/entities/<entity_id>/reinstate", methods=["POST"])
def reinstate_entity(entity_id: str) -> Response:
    actor = api_actor()
    return jsonify(_entity(_admin().reinstate_entity(actor, _ident(entity_id, "entity_id"))))


@bp.route("/entities/<entity_id>/representative", methods=["PUT"])
def set_representative(entity_id: str) -> Response:
    actor = api_actor()
    _ident(entity_id, "entity_id")
    person = _text(_body(), "person", openapi.MAX_ID, required=True)
    assert person is not None
    return jsonify(_authorisation(_admin().set_representative(actor, entity_id, person)))


@bp.route("/entities/<entity_id>/authorisations", methods=["POST"])
def grant_authorisation(entity_id: str) -> tuple[Response, int]:
    actor = api_actor()
    _ident(entity_id, "entity_id")
    body = _body()
    person = _text(body, "person", openapi.MAX_ID, required=True)
    powers = body.get("powers")
    if isinstance(powers, str):
        _check_text(powers, "powers", openapi.MAX_SCOPE)
    elif isinstance(powers, list):
        if len(powers) > openapi.MAX_POWERS or not all(
            isinstance(p, str) and len(p) <= openapi.MAX_POWER for p in powers
        ):
            _invalid(
                f"powers must be at most {openapi.MAX_POWERS} strings of {openapi.MAX_POWER} characters."
            )
    else:
        _invalid("powers must be a string or a list of strings.")
    valid_until = _integer(body, "valid_until", 0, openapi.MAX_TIME_S)
    role = _text(body, "role", 32) or "agent"
    assert person is not None
    granted = _admin().grant_agent(actor, entity_id, person, powers, valid_until, role)
    return _created(_authorisation(granted))


@bp.route("/authorisations/<authorisation_id>", methods=["DELETE"])
def revoke_authorisation(authorisation_id: str) -> Response:
    actor = api_actor()
    revoked = _admin().revoke_authorisation(actor, _ident(authorisation_id, "authorisation_id"))
    return jsonify(_authorisation(revoked))


# -- signing keys -------------------------------------------------------------------------------------


@bp.route("/keys", methods=["GET"])
def list_keys() -> Response:
    actor = api_actor()
    return jsonify({"items": _admin().list_keys(actor)})


@bp.route("/keys/rotate", methods=["POST"])
def rotate_keys() -> Response:
    actor = api_actor()
    alg = _text(_body(required=False), "alg", 16)
    return jsonify({"kids": _admin().rotate_keys(actor, alg)})


@bp.route("/keys/<kid>/retire", methods=["POST"])
def retire_key(kid: str) -> Response:
    actor = api_actor()
    return jsonify(_admin().retire_key(actor, _ident(kid, "kid")))


# -- admin roles --------------------------------------------------------------------------------------


@bp.route("/admins", methods=["GET"])
def list_admins() -> Response:
    actor = api_actor()
    admins = _admin().list_admins(actor)
    return jsonify(
        {"items": [{"person": _person(p), "roles": [_grant(g) for g in grants]} for p, grants in admins]}
    )


@bp.route("/admins", methods=["POST"])
def grant_role() -> tuple[Response, int]:
    actor = api_actor()
    body = _body()
    person = _text(body, "person", openapi.MAX_ID, required=True)
    role = _text(body, "role", 32, required=True)
    assert person is not None and role is not None
    return _created(_grant(_admin().grant_role(actor, person, role)))


@bp.route("/admins/<person_id>/roles/<role>", methods=["DELETE"])
def revoke_role(person_id: str, role: str) -> Response:
    actor = api_actor()
    _ident(person_id, "person_id")
    if not _admin().revoke_role(actor, person_id, _ident(role, "role")):
        _not_found("role grant")
    return _no_content()


# -- the audit log ------------------------------------------------------------------------------------


def _audit_filter() -> AuditFilter:
    texts = {name: _arg_text(name, limit) or None for name, limit in openapi.AUDIT_LIMITS.items()}
    return AuditFilter(
        **texts,
        since=_arg_int("since", None, 0, openapi.MAX_TIME_MS),
        until=_arg_int("until", None, 0, openapi.MAX_TIME_MS),
    )


@bp.route("/audit", methods=["GET"])
def search_audit() -> Response:
    actor = api_actor()
    where = _audit_filter()
    offset, limit = _paging()
    return _page(_admin().search_audit(actor, where, offset, limit), dict)


EXPORT_TYPES = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


@bp.route("/audit/export", methods=["GET"])
def export_audit() -> Response:
    actor = api_actor()
    fmt = _arg_text("format", 8) or "jsonl"
    if fmt not in EXPORT_TYPES:
        _invalid("The parameter format must be jsonl or csv.")
    lines = _admin().export_audit(actor, _audit_filter(), fmt)

    def stream() -> Iterator[str]:
        for line in lines:
            yield line + "\n"

    response = Response(stream(), content_type=EXPORT_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response
