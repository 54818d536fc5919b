"""The JSON API: holders read their own licences, departments issue and revoke, anyone verifies."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from adapters.certificates.access import (
    ISSUE_SCOPE,
    READ_SCOPE,
    actor_of,
    department_of,
    holder_of,
)
from adapters.certificates.database import Database
from adapters.certificates.licences import (
    LicenceError,
    find_licence,
    invalid,
    issue_licence,
    issuer_names,
    licence_json,
    licences_of,
    revoke_licence,
    verify,
)
from adapters.certificates.signing import public_jwks
from adapters.rp_kit import RelyingParty, current_token

log = logging.getLogger(__name__)
MAX_DOCUMENT = 8192


def api_blueprint(rp: RelyingParty, db: Database, issuer_clients: Mapping[str, str]) -> Blueprint:
    bp = Blueprint("api", __name__)

    @bp.get("/api/licences")
    @rp.require_scope(READ_SCOPE)
    def list_licences() -> ResponseReturnValue:
        claims = token()
        holder_type, holder_id = holder_of(claims)
        log_read(claims, holder_type, holder_id, "list")
        with db.transaction() as session:
            names = issuer_names(session)
            found = licences_of(session, holder_type, holder_id)
            return {"licences": [licence_json(row, names.get(row.issuer_code)) for row in found]}

    @bp.get("/api/licences/<licence_id>")
    @rp.require_scope(READ_SCOPE)
    def read_licence(licence_id: str) -> ResponseReturnValue:
        claims = token()
        holder_type, holder_id = holder_of(claims)
        with db.transaction() as session:
            licence = find_licence(session, licence_id)
            if licence is None or (licence.holder_type, licence.holder_id) != (holder_type, holder_id):
                raise LicenceError(404, "not_found", "no such licence")  # never reveal another holder's
            log_read(claims, holder_type, holder_id, licence.id)
            return licence_json(licence, issuer_names(session).get(licence.issuer_code))

    @bp.post("/api/licences")
    @rp.require_scope(ISSUE_SCOPE)
    def issue() -> ResponseReturnValue:
        department = department_of(token(), issuer_clients)
        with db.transaction() as session:
            licence = issue_licence(session, department, request.get_json(silent=True))
            body = licence_json(licence, issuer_names(session).get(department))
        log.info("licence issued: %s %s by %s", licence.licence_type, licence.id, department)
        return body, 201, {"Location": f"/api/licences/{licence.id}"}

    @bp.post("/api/licences/<licence_id>/revoke")
    @rp.require_scope(ISSUE_SCOPE)
    def revoke(licence_id: str) -> ResponseReturnValue:
        department = department_of(token(), issuer_clients)
        with db.transaction() as session:
            licence = revoke_licence(session, department, licence_id, request.get_json(silent=True))
            body = licence_json(licence, issuer_names(session).get(department))
        log.info("licence revoked: %s by %s", licence.id, department)
        return body

    @bp.post("/api/verify")
    def verify_licence() -> ResponseReturnValue:
        """Public: a licence JWS (`licence`) or a licence id (`id`)."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or len({"licence", "id"} & body.keys()) != 1:
            raise invalid("send a JSON object with either licence (the signed licence) or id")
        value = body.get("licence", body.get("id"))
        if not isinstance(value, str) or not value or len(value) > MAX_DOCUMENT:
            raise invalid("licence or id must be a non-empty string")
        with db.transaction() as session:
            if "id" in body:
                result = verify(session, licence_id=value)
            else:
                result = verify(session, document=value)
            name = issuer_names(session).get(result.licence.issuer_code) if result.licence else None
            return result.as_json(name)

    @bp.get("/.well-known/jwks.json")
    def jwks() -> ResponseReturnValue:
        with db.transaction() as session:
            response = jsonify(public_jwks(session))
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    return bp


def token() -> dict[str, Any]:
    claims = current_token()
    if claims is None:  # the guards run first; this cannot happen behind them
        raise LicenceError(401, "invalid_token", "no verified access token")
    return claims


def log_read(claims: Mapping[str, Any], holder_type: str, holder_id: str, what: str) -> None:
    """Art. 7, Art. 14: every read of personal data is logged, with the service acting, if any."""
    log.info(
        "licences read: holder=%s:%s what=%s client=%s actor=%s",
        holder_type,
        holder_id,
        what,
        claims.get("client_id"),
        actor_of(claims) or "-",
    )
