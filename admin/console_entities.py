"""Console pages for legal entities (法人; entity_admin, super_admin): list and create, verify, suspend and
reinstate, set the legal representative, grant agents and revoke authorisations."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from admin.auth import console_actor
from admin.console_pages import (
    back_to,
    field,
    local_day,
    page_links,
    paging,
    path_id,
    refuse,
    refuse_input,
    show,
    when,
)
from idp.domain.entities import ENTITY_TYPES
from idp.services.admin import AdminInputError, EntityDetail
from idp.web.context import web

bp = Blueprint("entities", __name__)

NEW_ENTITY = {"uscc": "", "name": "", "entity_type": "enterprise"}
NEW_AGENT = {"person": "", "powers": "", "valid_until": "", "role": "agent"}
AGENT_ROLES = ("agent", "entity_admin")


@bp.route("/entities", methods=["GET"])
def index() -> Response:
    actor = console_actor()
    offset, limit = paging()
    page = web().services.admin.list_entities(actor, offset, limit)
    return show("entities.html", actor, **list_page(page, NEW_ENTITY))


@bp.route("/entities", methods=["POST"])
def create() -> Response:
    actor = console_actor()
    form = {"uscc": field("uscc", 32).upper(), "name": field("name"), "entity_type": field("entity_type", 32)}
    if not form["uscc"] or not form["name"]:
        return refuse("entities.html", actor, "entity_required", **list_page(None, form))
    try:
        entity = web().services.admin.create_entity(actor, form["uscc"], form["name"], form["entity_type"])
    except AdminInputError as error:
        return refuse_input("entities.html", actor, error, **list_page(None, form))
    return back_to("admin_console.entities.view", "created", entity_id=entity.id)


def list_page(page: Any, form: dict[str, str]) -> dict[str, Any]:
    return {
        "page": page,
        "links": page_links(page) if page is not None else {},
        "form": form,
        "type_choices": ENTITY_TYPES,
    }


@bp.route("/entities/<entity_id>", methods=["GET"])
def view(entity_id: str) -> Response:
    actor = console_actor()
    detail = web().services.admin.view_entity(actor, path_id(entity_id))
    return show("entity.html", actor, **entity_page(detail, NEW_AGENT, path_id(entity_id)))


def entity_page(detail: EntityDetail | None, agent: dict[str, str], entity_id: str) -> dict[str, Any]:
    return {
        "entity_id": entity_id,
        "entity": detail.entity if detail else None,
        "verified": when(detail.entity.verified_at) if detail and detail.entity.verified_at else None,
        "authorisations": [
            {
                "a": a,
                "from": when(a.valid_from),
                "until": when(a.valid_until) if a.valid_until else None,
                "revoked": when(a.revoked_at) if a.revoked_at else None,
            }
            for a in (detail.authorisations if detail else [])
        ],
        "agent": agent,
        "agent_roles": AGENT_ROLES,
    }


def _transition(entity_id: str, change: str) -> Response:
    actor = console_actor()
    admin = web().services.admin
    action = {
        "verified": admin.verify_entity,
        "suspended": admin.suspend_entity,
        "reinstated": admin.reinstate_entity,
    }[change]
    try:
        action(actor, path_id(entity_id))
    except AdminInputError as error:
        if error.code == "not_found":
            raise
        return refuse(
            "entity.html", actor, error.code, error.message, **entity_page(None, NEW_AGENT, entity_id)
        )
    return back_to("admin_console.entities.view", change, entity_id=path_id(entity_id))


@bp.route("/entities/<entity_id>/verify", methods=["POST"])
def verify(entity_id: str) -> Response:
    """Check the entity against the enterprise register."""
    return _transition(entity_id, "verified")


@bp.route("/entities/<entity_id>/suspend", methods=["POST"])
def suspend(entity_id: str) -> Response:
    return _transition(entity_id, "suspended")


@bp.route("/entities/<entity_id>/reinstate", methods=["POST"])
def reinstate(entity_id: str) -> Response:
    return _transition(entity_id, "reinstated")


@bp.route("/entities/<entity_id>/representative", methods=["POST"])
def set_representative(entity_id: str) -> Response:
    """The legal representative (法定代表人), by resident ID number or username."""
    actor = console_actor()
    entity_id = path_id(entity_id)
    person = field("person", 128)
    if not person:
        return refuse("entity.html", actor, "person_required", **entity_page(None, NEW_AGENT, entity_id))
    try:
        web().services.admin.set_representative(actor, entity_id, person)
    except AdminInputError as error:
        return refuse_input("entity.html", actor, error, **entity_page(None, NEW_AGENT, entity_id))
    return back_to("admin_console.entities.view", "representative_set", entity_id=entity_id)


@bp.route("/entities/<entity_id>/agents", methods=["POST"])
def grant_agent(entity_id: str) -> Response:
    """An agent (经办人) or entity administrator, with explicit powers, until a date (optional)."""
    actor = console_actor()
    entity_id = path_id(entity_id)
    form = {
        "person": field("person", 128),
        "powers": field("powers", 1024),
        "valid_until": field("valid_until", 32),
        "role": field("role", 32),
    }
    if not form["person"]:
        return refuse("entity.html", actor, "person_required", **entity_page(None, form, entity_id))
    try:
        until = local_day(form["valid_until"], end=True)
    except ValueError:
        return refuse("entity.html", actor, "bad_date", **entity_page(None, form, entity_id))
    powers = form["powers"].replace(",", " ").replace("，", " ").split()
    try:
        web().services.admin.grant_agent(
            actor, entity_id, form["person"], powers, until // 1000 if until else None, form["role"]
        )
    except AdminInputError as error:
        return refuse_input("entity.html", actor, error, **entity_page(None, form, entity_id))
    return back_to("admin_console.entities.view", "agent_granted", entity_id=entity_id)


@bp.route("/entities/<entity_id>/authorisations/revoke", methods=["POST"])
def revoke_authorisation(entity_id: str) -> Response:
    actor = console_actor()
    web().services.admin.revoke_authorisation(actor, field("authorisation_id", 64))
    return back_to("admin_console.entities.view", "revoked", entity_id=path_id(entity_id))
