"""The OpenAPI 3.1 document of the admin API (`GET /admin/api/v1/openapi.json`), built as a dict.

The limits below are the ones `admin.api` enforces before it calls the service, so the document says
exactly what the API accepts; tests compare its paths with the Flask routes so it cannot drift."""

from __future__ import annotations

from typing import Any

from idp.domain.admin import ROLES
from idp.services.clients import (
    AUTH_METHODS,
    GRANT_TYPES,
    ID_TOKEN_ALGS,
    MAX_EXCHANGE_SCOPES,
    MAX_EXCHANGE_TARGETS,
    TOKEN_FORMATS,
)
from idp.services.signing_keys import SUPPORTED_ALGS

# -- limits shared with admin.api -----------------------------------------------------------------------

MAX_ID = 128  # path identifiers (client ids, person ids, entity ids, kids, token ids)
MAX_QUERY = 128  # free-text search
MAX_OFFSET = 1_000_000
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
MAX_TIME_S = MAX_TIME_MS // 1000
MAX_URI = 2000
MAX_URIS = 50
MAX_NAME = 200
MAX_SCOPE = 2000
MAX_POWERS = 50
MAX_POWER = 64
MAX_TTL = 30 * 86400  # the registration service's limits
MAX_USES = 1000
AUDIT_LIMITS = {"event": 40, "actor": 128, "subject": 128, "client_id": 128, "outcome": 16}

JSON = "application/json"


def _string(max_length: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, **extra}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _int(minimum: int, maximum: int, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum, **extra}


_ANY_ID = {"type": "string", "minLength": 1, "maxLength": MAX_ID, "pattern": r"^[^\u0000-\u001f]+$"}


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or _ANY_ID,
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_PAGING = [
    _query("offset", _int(0, MAX_OFFSET, default=0), "How many items to skip."),
    _query("limit", _int(1, MAX_LIMIT, default=DEFAULT_LIMIT), "How many items to return at most."),
]
_SEARCH = _query(
    "q",
    _string(MAX_QUERY, pattern=r"^[^\u0000]*$"),
    "Part of an id or name (exact for ID and phone numbers).",
)
_AUDIT_FILTER = [
    *(
        _query(
            name, _string(limit, pattern=r"^[^\u0000]*$"), f"Exact {name} (event: or a prefix ending in '.')."
        )
        for name, limit in AUDIT_LIMITS.items()
    ),
    _query("since", _int(0, MAX_TIME_MS), "Events at or after this time (epoch milliseconds)."),
    _query("until", _int(0, MAX_TIME_MS), "Events before this time (epoch milliseconds)."),
]


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "Invalid input (the body, a parameter, or a refusal of the service).",
        401: "No, an invalid, expired or revoked bearer token (WWW-Authenticate says why).",
        403: "The token's admin roles do not allow this action (insufficient_scope).",
        404: "There is no such object.",
    }
    return {str(s): _error(texts[s]) for s in (400, 401, 403, *statuses)}


def _ok(schema: dict[str, Any], description: str = "OK", status: int = 200) -> dict[str, Any]:
    return {str(status): {"description": description, "content": {JSON: {"schema": schema}}}}


_NO_CONTENT = {"204": {"description": "Done."}}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


def _op(
    summary: str,
    tag: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    not_found: bool = False,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": [tag],
        "operationId": "",  # filled in by build_document
        "responses": {**responses, **(_errors(404) if not_found else _errors())},
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    return operation


def _page_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "offset", "limit", "has_more"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1},
            "has_more": {"type": "boolean"},
        },
    }


_STR_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_STRINGS = {"type": "array", "items": {"type": "string"}}


def _object(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties) if required is None else required,
        "properties": properties,
        **extra,
    }


_URIS = {"type": "array", "maxItems": MAX_URIS, "items": _string(MAX_URI, minLength=1)}
_SCOPE_LIST = {"type": "array", "minItems": 1, "maxItems": MAX_EXCHANGE_SCOPES, "items": {"type": "string"}}
_TARGET = _object(
    {"audience": _string(MAX_ID, minLength=1), "scopes": _SCOPE_LIST}, additionalProperties=False
)


def _targets(description: str) -> dict[str, Any]:
    return {"type": "array", "maxItems": MAX_EXCHANGE_TARGETS, "items": _TARGET, "description": description}


_TOKEN_EXCHANGE = _targets(
    "RFC 8693: the services (client_ids) this confidential client may exchange a person's access token"
    " for, each with the scopes it may ask; empty or absent: no token exchange. Left out of an update,"
    " the client's targets are kept."
)
_AUDIENCES = _targets(
    "Client credentials for another service: the services (client_ids) this client may ask a token for"
    " with the `audience` parameter, each with the resource scopes `<service>:<permission>` it may ask;"
    " needs the client_credentials grant. Left out of an update, the client's audiences are kept."
)

SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {"error": {"type": "string"}, "error_description": {"type": "string"}}, required=["error"]
    ),
    "Client": _object(
        {
            "client_id": {"type": "string"},
            "client_name": {"type": "string"},
            "token_endpoint_auth_method": {"type": "string"},
            "redirect_uris": _STRINGS,
            "post_logout_redirect_uris": _STRINGS,
            "grant_types": _STRINGS,
            "response_types": _STRINGS,
            "scope": {"type": "string", "description": "Space-separated scopes the client may obtain."},
            "id_token_signed_response_alg": {"type": "string"},
            "access_token_format": {"type": "string", "enum": list(TOKEN_FORMATS)},
            "first_party": {"type": "boolean"},
            "backchannel_logout_uri": _STR_OR_NULL,
            "backchannel_logout_session_required": {"type": "boolean"},
            "minimum_acr": _STR_OR_NULL,
            "jwks": {"type": ["object", "null"]},
            "token_exchange": _TOKEN_EXCHANGE,
            "audiences": _AUDIENCES,
            "disabled": {"type": "boolean"},
            "client_secret": {"type": "string", "description": "Only when generated: shown once."},
        },
        required=[
            "client_id",
            "client_name",
            "token_endpoint_auth_method",
            "redirect_uris",
            "grant_types",
            "scope",
            "disabled",
        ],
    ),
    "ClientMetadata": {
        "type": "object",
        "description": "RFC 7591 client metadata (unknown members are ignored; no client_secret).",
        "properties": {
            "client_id": _string(MAX_ID, minLength=1),
            "client_name": _string(MAX_NAME),
            "token_endpoint_auth_method": {"type": "string", "enum": list(AUTH_METHODS)},
            "redirect_uris": _URIS,
            "post_logout_redirect_uris": _URIS,
            "grant_types": {"type": "array", "maxItems": 3, "items": {"enum": list(GRANT_TYPES)}},
            "response_types": {"type": "array", "maxItems": 1, "items": {"enum": ["code"]}},
            "scope": _string(MAX_SCOPE),
            "id_token_signed_response_alg": {"type": "string", "enum": list(ID_TOKEN_ALGS)},
            "access_token_format": {"type": "string", "enum": list(TOKEN_FORMATS)},
            "first_party": {"type": "boolean"},
            "backchannel_logout_uri": _nullable(_string(MAX_URI)),
            "backchannel_logout_session_required": {"type": "boolean"},
            "minimum_acr": _nullable(_string(64)),
            "jwks": _nullable({"type": "object"}),
            "token_exchange": _TOKEN_EXCHANGE,
            "audiences": _AUDIENCES,
        },
    },
    "ClientSecret": _object({"client_id": {"type": "string"}, "client_secret": {"type": "string"}}),
    "InitialAccessToken": _object(
        {
            "id": {"type": "string"},
            "label": {"type": "string"},
            "created_by": {"type": "string"},
            "created_at": {"type": "integer"},
            "expires_at": {"type": "integer"},
            "max_uses": {"type": "integer"},
            "uses": {"type": "integer"},
            "revoked_at": _INT_OR_NULL,
            "token": {"type": "string", "description": "Only when issued: shown once."},
        },
        required=["id", "label", "created_by", "created_at", "expires_at", "max_uses", "uses", "revoked_at"],
    ),
    "InitialAccessTokenRequest": {
        "type": "object",
        "properties": {
            "label": _string(MAX_NAME),
            "ttl_seconds": _int(60, MAX_TTL, default=86400),
            "max_uses": _int(1, MAX_USES, default=1),
        },
    },
    "Person": _object(
        {
            "id": {"type": "string"},
            "username": {"type": "string"},
            "name": _STR_OR_NULL,
            "email": _STR_OR_NULL,
            "email_verified": {"type": "boolean"},
            "phone_number": _STR_OR_NULL,
            "id_number_masked": _STR_OR_NULL,
            "verified": {"type": "boolean"},
            "mfa_enabled": {"type": "boolean"},
            "disabled": {"type": "boolean"},
        },
        required=["id", "username", "disabled"],
    ),
    "Session": _object(
        {
            "sid": {"type": "string"},
            "auth_time": {"type": "integer"},
            "acr": {"type": "string"},
            "amr": _STRINGS,
            "created_at": {"type": "integer"},
        }
    ),
    "Authorisation": _object(
        {
            "id": {"type": "string"},
            "entity_id": {"type": "string"},
            "person_id": {"type": "string"},
            "role": {"type": "string"},
            "powers": _STRINGS,
            "valid_from": {"type": "integer"},
            "valid_until": _INT_OR_NULL,
            "granted_by": {"type": "string"},
            "revoked_at": _INT_OR_NULL,
        }
    ),
    "Entity": _object(
        {
            "id": {"type": "string"},
            "uscc": {"type": "string"},
            "name": {"type": "string"},
            "entity_type": {"type": "string"},
            "status": {"type": "string"},
            "verified_at": _INT_OR_NULL,
        }
    ),
    "PersonSearch": _object(
        {
            "q": _string(
                MAX_QUERY, description="Name, username, mobile number or resident ID number (exact)."
            ),
            "offset": _int(0, MAX_OFFSET, default=0),
            "limit": _int(1, MAX_LIMIT, default=DEFAULT_LIMIT),
        }
    ),
    "EntityRequest": _object(
        {
            "uscc": _string(64, minLength=1),
            "name": _string(MAX_NAME, minLength=1),
            "entity_type": _string(32),
        },
        required=["uscc", "name"],
    ),
    "RepresentativeRequest": _object(
        {"person": _string(MAX_ID, minLength=1, description="Person id, resident ID number or username.")}
    ),
    "AuthorisationRequest": _object(
        {
            "person": _string(MAX_ID, minLength=1, description="Person id, resident ID number or username."),
            "powers": {
                "anyOf": [
                    _string(MAX_SCOPE),
                    {"type": "array", "maxItems": MAX_POWERS, "items": _string(MAX_POWER)},
                ]
            },
            "valid_until": _nullable(_int(0, MAX_TIME_S, description="Epoch seconds; null: until revoked.")),
            "role": {"type": "string", "enum": ["agent", "entity_admin"], "default": "agent"},
        },
        required=["person", "powers"],
    ),
    "Key": _object(
        {
            "kid": {"type": "string"},
            "alg": {"type": "string"},
            "created_at": {"type": "integer"},
            "activates_at": {"type": "integer"},
            "retired_at": _INT_OR_NULL,
            "expires_at": _INT_OR_NULL,
            "state": {"type": "string"},
            "current": {"type": "boolean"},
        },
        required=["kid", "alg", "state", "current"],
    ),
    "RotateRequest": {
        "type": "object",
        "properties": {"alg": _nullable({"type": "string", "enum": list(SUPPORTED_ALGS)})},
    },
    "Grant": _object(
        {
            "person_id": {"type": "string"},
            "role": {"type": "string"},
            "granted_by": {"type": "string"},
            "granted_at": {"type": "integer"},
        }
    ),
    "Admin": _object({"person": _ref("Person"), "roles": {"type": "array", "items": _ref("Grant")}}),
    "GrantRequest": _object(
        {
            "person": _string(MAX_ID, minLength=1, description="Person id, resident ID number or username."),
            "role": {"type": "string", "enum": list(ROLES)},
        }
    ),
    "AuditEvent": _object(
        {
            "id": {"type": "integer"},
            "at": {"type": "integer", "description": "Epoch milliseconds."},
            "event": {"type": "string"},
            "actor": {"type": "string"},
            "subject": _STR_OR_NULL,
            "client_id": _STR_OR_NULL,
            "purpose": _STR_OR_NULL,
            "address": _STR_OR_NULL,
            "outcome": {"type": "string"},
            "details": {"type": ["string", "null"], "description": "Canonical JSON, as hashed."},
            "prev_hash": {"type": "string"},
            "hash": {"type": "string"},
        }
    ),
}

SCHEMAS["PersonDetail"] = {
    **SCHEMAS["Person"],
    "required": [*SCHEMAS["Person"]["required"], "roles", "sessions", "login_locked", "authorisations"],
    "properties": {
        **SCHEMAS["Person"]["properties"],
        "roles": {"type": "array", "items": {"type": "string", "enum": list(ROLES)}},
        "sessions": {"type": "array", "items": _ref("Session")},
        "login_locked": {"type": "boolean"},
        "authorisations": {"type": "array", "items": _ref("Authorisation")},
    },
}
SCHEMAS["EntityDetail"] = {
    **SCHEMAS["Entity"],
    "required": [*SCHEMAS["Entity"]["required"], "authorisations"],
    "properties": {
        **SCHEMAS["Entity"]["properties"],
        "authorisations": {"type": "array", "items": _ref("Authorisation")},
    },
}


def _paths() -> dict[str, dict[str, Any]]:
    client_id = _path("client_id", "The client's client_id.")
    person_id = _path("person_id", "The person's id.")
    entity_id = _path("entity_id", "The legal entity's id.")
    ended = _object({"ended": {"type": "integer", "minimum": 0}})
    return {
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "tags": ["meta"],
                "operationId": "",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {}}}}},
            }
        },
        "/clients": {
            "get": _op("Search clients", "clients", _ok(_page_of("Client")), parameters=[_SEARCH, *_PAGING]),
            "post": _op(
                "Register a client",
                "clients",
                _ok(_ref("Client"), "Registered (client_secret once, if generated).", 201),
                body=_body(_ref("ClientMetadata")),
            ),
        },
        "/clients/{client_id}": {
            "get": _op("A client", "clients", _ok(_ref("Client")), parameters=[client_id], not_found=True),
            "put": _op(
                "Replace a client's metadata",
                "clients",
                _ok(_ref("Client")),
                parameters=[client_id],
                body=_body(_ref("ClientMetadata")),
                not_found=True,
            ),
        },
        "/clients/{client_id}/disable": {
            "post": _op(
                "Disable a client (its tokens are revoked)",
                "clients",
                _ok(_ref("Client")),
                parameters=[client_id],
                not_found=True,
            )
        },
        "/clients/{client_id}/enable": {
            "post": _op(
                "Enable a client", "clients", _ok(_ref("Client")), parameters=[client_id], not_found=True
            )
        },
        "/clients/{client_id}/secret": {
            "post": _op(
                "Rotate a client's secret (returned once)",
                "clients",
                _ok(_ref("ClientSecret")),
                parameters=[client_id],
                not_found=True,
            )
        },
        "/initial-access-tokens": {
            "get": _op(
                "Active initial access tokens",
                "registration",
                _ok(_object({"items": {"type": "array", "items": _ref("InitialAccessToken")}})),
            ),
            "post": _op(
                "Issue an initial access token (its value is returned once)",
                "registration",
                _ok(_ref("InitialAccessToken"), "Issued.", 201),
                body=_body(_ref("InitialAccessTokenRequest"), required=False),
            ),
        },
        "/initial-access-tokens/{token_id}": {
            "delete": _op(
                "Revoke an initial access token",
                "registration",
                _NO_CONTENT,
                parameters=[_path("token_id", "The token's id.")],
                not_found=True,
            )
        },
        "/persons/search": {
            "post": _op(
                "Search persons (the query is sent in the body, never in a URL)",
                "persons",
                _ok(_page_of("Person")),
                body=_body(_ref("PersonSearch"), required=False),
            )
        },
        "/persons/{person_id}": {
            "get": _op(
                "A person (a recorded read of their data)",
                "persons",
                _ok(_ref("PersonDetail")),
                parameters=[person_id],
                not_found=True,
            )
        },
        **{
            f"/persons/{{person_id}}/{verb}": {
                "post": _op(summary, "persons", _ok(_ref("Person")), parameters=[person_id], not_found=True)
            }
            for verb, summary in (
                ("lock", "Lock an account (its sessions end)"),
                ("unlock", "Unlock an account"),
                ("reset-mfa", "Remove the second factor"),
            )
        },
        "/persons/{person_id}/sessions": {
            "delete": _op(
                "End every session of a person", "persons", _ok(ended), parameters=[person_id], not_found=True
            )
        },
        "/persons/{person_id}/sessions/{sid}": {
            "delete": _op(
                "End one session",
                "persons",
                _ok(ended),
                parameters=[person_id, _path("sid", "The session id.")],
                not_found=True,
            )
        },
        "/entities": {
            "get": _op("Legal entities", "entities", _ok(_page_of("Entity")), parameters=_PAGING),
            "post": _op(
                "Record a legal entity (pending verification)",
                "entities",
                _ok(_ref("Entity"), "Recorded.", 201),
                body=_body(_ref("EntityRequest")),
            ),
        },
        "/entities/{entity_id}": {
            "get": _op(
                "A legal entity and its authorisations",
                "entities",
                _ok(_ref("EntityDetail")),
                parameters=[entity_id],
                not_found=True,
            )
        },
        **{
            f"/entities/{{entity_id}}/{verb}": {
                "post": _op(summary, "entities", _ok(_ref("Entity")), parameters=[entity_id], not_found=True)
            }
            for verb, summary in (
                ("verify", "Verify against the enterprise register"),
                ("suspend", "Suspend"),
                ("reinstate", "Reinstate"),
            )
        },
        "/entities/{entity_id}/representative": {
            "put": _op(
                "Set the legal representative",
                "entities",
                _ok(_ref("Authorisation")),
                parameters=[entity_id],
                body=_body(_ref("RepresentativeRequest")),
                not_found=True,
            )
        },
        "/entities/{entity_id}/authorisations": {
            "post": _op(
                "Grant an agent or entity admin authority",
                "entities",
                _ok(_ref("Authorisation"), "Granted.", 201),
                parameters=[entity_id],
                body=_body(_ref("AuthorisationRequest")),
                not_found=True,
            )
        },
        "/authorisations/{authorisation_id}": {
            "delete": _op(
                "Revoke an authorisation",
                "entities",
                _ok(_ref("Authorisation")),
                parameters=[_path("authorisation_id", "The authorisation's id.")],
                not_found=True,
            )
        },
        "/keys": {
            "get": _op(
                "Signing keys", "keys", _ok(_object({"items": {"type": "array", "items": _ref("Key")}}))
            )
        },
        "/keys/rotate": {
            "post": _op(
                "Rotate signing keys (one algorithm or all)",
                "keys",
                _ok(_object({"kids": _STRINGS})),
                body=_body(_ref("RotateRequest"), required=False),
            )
        },
        "/keys/{kid}/retire": {
            "post": _op(
                "Retire a signing key",
                "keys",
                _ok(_ref("Key")),
                parameters=[_path("kid", "The key id.")],
                not_found=True,
            )
        },
        "/admins": {
            "get": _op(
                "Admins and their roles",
                "admins",
                _ok(_object({"items": {"type": "array", "items": _ref("Admin")}})),
            ),
            "post": _op(
                "Grant an admin role",
                "admins",
                _ok(_ref("Grant"), "Granted.", 201),
                body=_body(_ref("GrantRequest")),
                not_found=True,
            ),
        },
        "/admins/{person_id}/roles/{role}": {
            "delete": _op(
                "Revoke an admin role",
                "admins",
                _NO_CONTENT,
                parameters=[person_id, _path("role", "The role.", {"type": "string", "enum": list(ROLES)})],
                not_found=True,
            )
        },
        "/audit": {
            "get": _op(
                "Search the audit log (newest first)",
                "audit",
                _ok(_page_of("AuditEvent")),
                parameters=[*_AUDIT_FILTER, *_PAGING],
            )
        },
        "/audit/export": {
            "get": _op(
                "Export the audit log in chain order",
                "audit",
                {
                    "200": {
                        "description": "JSON Lines or CSV, as an attachment.",
                        "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
                        "content": {
                            "application/x-ndjson": {"schema": {"type": "string"}},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    }
                },
                parameters=[
                    _query(
                        "format", {"type": "string", "enum": ["jsonl", "csv"], "default": "jsonl"}, "Format."
                    ),
                    *_AUDIT_FILTER,
                ],
            )
        },
    }


def build_document(server_url: str = "/admin/api/v1") -> dict[str, Any]:
    paths = _paths()
    for path, operations in paths.items():
        for method, operation in operations.items():
            operation["operationId"] = _operation_id(method, path)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Identity provider administration API",
            "version": "1.0.0",
            "description": (
                "Every action of the administration console, for automation. Authenticate with a bearer "
                "access token (RFC 6750) of a service account whose scopes name its admin roles "
                f"({', '.join(f'admin:{r}' for r in ROLES)}). Errors are JSON objects with `error` and "
                "`error_description`; every action, refusals included, is recorded in the audit log."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An access token issued by this provider (client credentials).",
                }
            },
            "schemas": SCHEMAS,
        },
    }


def _operation_id(method: str, path: str) -> str:
    words = [p.strip("{}").replace("-", "_").replace(".", "_") for p in path.split("/") if p]
    return "_".join([method, *words])
