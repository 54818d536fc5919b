"""The HTML pages (Chinese, no JavaScript): what the service is, my licences, checking a licence."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from adapters.certificates.access import READ_POWER
from adapters.certificates.database import Database
from adapters.certificates.licences import (
    LICENCE_TYPES,
    issuer_names,
    licence_json,
    licences_of,
    verify,
)
from adapters.rp_kit import RelyingParty, current_user


def pages_blueprint(rp: RelyingParty, db: Database) -> Blueprint:
    bp = Blueprint("pages", __name__)

    @bp.app_context_processor
    def signed_in_user() -> dict[str, object]:
        return {"user": current_user()}

    @bp.get("/")
    def index() -> ResponseReturnValue:
        return render_template("index.html", types=LICENCE_TYPES.values())

    @bp.get("/my")
    @rp.require_login
    def my_licences() -> ResponseReturnValue:
        user = current_user() or {}
        entity = user.get("entity") if isinstance(user.get("entity"), dict) else None
        may_read_entity = bool(entity and ({READ_POWER, "*"} & set(entity.get("powers") or [])))
        with db.transaction() as session:
            names = issuer_names(session)
            own = [
                licence_json(r, names.get(r.issuer_code)) for r in licences_of(session, "person", user["sub"])
            ]
            held_by_entity = (
                [
                    licence_json(r, names.get(r.issuer_code))
                    for r in licences_of(session, "entity", entity["uscc"])
                ]
                if entity and may_read_entity
                else []
            )
        return render_template(
            "my.html",
            own=own,
            entity=entity,
            may_read_entity=may_read_entity,
            entity_licences=held_by_entity,
        )

    @bp.get("/verify")
    def verify_form() -> ResponseReturnValue:
        licence_id = request.args.get("id", "").strip()
        if licence_id:
            return redirect(url_for("pages.verify_page", licence_id=licence_id))
        return redirect(url_for("pages.index"))

    @bp.get("/verify/<licence_id>")
    def verify_page(licence_id: str) -> ResponseReturnValue:
        with db.transaction() as session:
            result = verify(session, licence_id=licence_id[:64])
            name = issuer_names(session).get(result.licence.issuer_code) if result.licence else None
            view = result.as_json(name)
        return render_template("verify.html", result=view), 200 if result.licence else 404

    return bp
