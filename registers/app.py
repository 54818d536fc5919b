"""The reference register service's HTTP API: verify a person's real name, look up a legal entity.

    POST /v1/persons/verify     {"name", "id_number"}  -> 200 {"match": true|false}
    GET  /v1/entities/<uscc>                           -> 200 {uscc, name, entity_type, status,
                                                               legal_representative: {name, id_number}}
                                                          404 when the register has no such entity
    GET  /healthz                                      -> 200 {"status": "ok"} (no token needed)

Errors are JSON `{"error", "error_description"}`: 400 for bad input, 401 for a missing or wrong bearer
token (when the service has one), 404, 405, 413.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from registers.identifiers import normalise_resident_id, normalise_uscc

DEFAULT_DATA = Path(__file__).resolve().parent / "data.json"
ENTITY_STATUSES = frozenset({"active", "suspended", "deregistered"})
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class Registers:
    """The data both registers serve: name by resident ID number; entity record by USCC."""

    names_by_id_number: Mapping[str, str]
    entities_by_uscc: Mapping[str, Mapping[str, Any]]


class InvalidInput(Exception):
    """A request the registers cannot answer; becomes a 400 JSON error."""


def load_registers(data: Mapping[str, Any]) -> Registers:
    """Check the register data (identifiers, fields) and index it; ValueError says what is wrong."""
    names: dict[str, str] = {}
    for person in data.get("persons", []):
        id_number = normalise_resident_id(str(person.get("id_number", "")))
        if id_number is None or not person.get("name"):
            raise ValueError(f"register data: invalid person {person.get('name')!r}")
        names[id_number] = str(person["name"])
    entities: dict[str, Mapping[str, Any]] = {}
    for entity in data.get("entities", []):
        uscc = normalise_uscc(str(entity.get("uscc", "")))
        representative = entity.get("legal_representative") or {}
        representative_id = normalise_resident_id(str(representative.get("id_number", "")))
        if uscc is None or representative_id is None or not representative.get("name"):
            raise ValueError(f"register data: invalid entity {entity.get('uscc')!r}")
        if entity.get("status") not in ENTITY_STATUSES or not entity.get("name"):
            raise ValueError(
                f"register data: entity {uscc} needs a name and a status in {sorted(ENTITY_STATUSES)}"
            )
        entities[uscc] = {
            "uscc": uscc,
            "name": str(entity["name"]),
            "entity_type": str(entity.get("entity_type", "enterprise")),
            "status": str(entity["status"]),
            "legal_representative": {"name": str(representative["name"]), "id_number": representative_id},
        }
    return Registers(names_by_id_number=names, entities_by_uscc=entities)


def create_app(data: Mapping[str, Any] | None = None, *, token: str | None = None) -> Flask:
    """The register service over `data` (default: registers/data.json); `token` requires a bearer token."""
    if data is None:
        data = json.loads(DEFAULT_DATA.read_text(encoding="utf-8"))
    registers = load_registers(data)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 16 * 1024
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]

    @app.before_request
    def require_token() -> tuple[Response, int] | None:
        if token is None or request.path == "/healthz":
            return None
        presented = request.headers.get("Authorization", "")
        if hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            return None
        response, status = error("invalid_token", "a valid bearer token is required", 401)
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'  # RFC 6750 §3
        return response, status

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.post("/v1/persons/verify")
    def verify_person() -> Response:
        body = json_object()
        name = text_field(body, "name")
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidInput(f"name must be at most {MAX_NAME_LENGTH} characters")
        id_number = normalise_resident_id(text_field(body, "id_number"))
        if id_number is None:
            raise InvalidInput("id_number is not a valid resident identity number (GB 11643-1999)")
        return jsonify(match=registers.names_by_id_number.get(id_number) == name)

    @app.get("/v1/entities/<path:code>")
    def lookup_entity(code: str) -> Response | tuple[Response, int]:
        uscc = normalise_uscc(code)
        if uscc is None:
            raise InvalidInput("not a valid unified social credit code (GB 32100-2015)")
        entity = registers.entities_by_uscc.get(uscc)
        if entity is None:
            return error("not_found", "the register holds no entity with this code", 404)
        return jsonify(entity)

    @app.errorhandler(InvalidInput)
    def invalid_input(exc: InvalidInput) -> tuple[Response, int]:
        return error("invalid_request", str(exc), 400)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        return error(exc.name.lower().replace(" ", "_"), exc.description or exc.name, code)

    return app


def error(code: str, description: str, status: int) -> tuple[Response, int]:
    return jsonify(error=code, error_description=description), status


def json_object() -> Mapping[str, Any]:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


def text_field(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string")
    return value.strip()
