"""Console pages for persons (super_admin): search, a person's record (each view is audited as a read
of their data), lock and unlock, reset the second factor, end sessions, grant and revoke admin roles."""

from __future__ import annotations

from flask import Blueprint, Response, request

from admin.auth import console_actor
from admin.console_pages import (
    MAX_OFFSET,
    MAX_QUERY,
    back_to,
    bounded_int,
    field,
    paging,
    path_id,
    show,
    when,
)
from idp.domain.admin import ROLES
from idp.web.context import web

bp = Blueprint("persons", __name__)


@bp.route("/persons", methods=["GET", "POST"])
def index() -> Response:
    """Search by name, username, mobile number or resident ID number; ID numbers are shown masked.

    The query is posted, never put in a URL: names and ID numbers would otherwise land in access
    logs, browser history and the language-switch link. Paging posts the query again."""
    actor = console_actor()
    query = field("q", MAX_QUERY) if request.method == "POST" else ""
    offset = bounded_int(field("offset", 16), 0, 0, MAX_OFFSET) if request.method == "POST" else 0
    _, limit = paging()
    page = web().services.admin.search_persons(actor, query, offset, limit)
    pages = {
        "previous": max(0, page.offset - page.limit) if page.offset > 0 else None,
        "next": page.offset + page.limit if page.has_more else None,
    }
    return show("persons.html", actor, page=page, pages=pages, query=query)


@bp.route("/persons/<person_id>", methods=["GET"])
def view(person_id: str) -> Response:
    actor = console_actor()
    detail = web().services.admin.view_person(actor, path_id(person_id))
    return show(
        "person.html",
        actor,
        detail=detail,
        person=detail.person,
        sessions=[
            {
                "sid": s.sid,
                "signed_in": when(s.auth_time),
                "started": when(s.created_at),
                "acr": s.acr,
                "amr": " ".join(s.amr),
            }
            for s in detail.sessions
        ],
        authorisations=[
            {"a": a, "from": when(a.valid_from), "until": when(a.valid_until) if a.valid_until else None}
            for a in detail.authorisations
        ],
        role_choices=[r for r in ROLES if r not in detail.roles],
        is_self=detail.person.id == actor.id,
    )


def _person_id(person_id: str) -> str:
    return path_id(person_id, 64)


@bp.route("/persons/<person_id>/lock", methods=["POST"])
def lock(person_id: str) -> Response:
    actor = console_actor()
    web().services.admin.lock_person(actor, _person_id(person_id))
    return back_to("admin_console.persons.view", "locked", person_id=_person_id(person_id))


@bp.route("/persons/<person_id>/unlock", methods=["POST"])
def unlock(person_id: str) -> Response:
    actor = console_actor()
    web().services.admin.unlock_person(actor, _person_id(person_id))
    return back_to("admin_console.persons.view", "unlocked", person_id=_person_id(person_id))


@bp.route("/persons/<person_id>/reset-mfa", methods=["POST"])
def reset_mfa(person_id: str) -> Response:
    actor = console_actor()
    web().services.admin.reset_mfa(actor, _person_id(person_id))
    return back_to("admin_console.persons.view", "mfa_reset", person_id=_person_id(person_id))


@bp.route("/persons/<person_id>/end-sessions", methods=["POST"])
def end_sessions(person_id: str) -> Response:
    """One session (field `sid`) or, without it, every session of the person."""
    actor = console_actor()
    sid = field("sid", 128) or None
    web().services.admin.end_sessions(actor, _person_id(person_id), sid)
    return back_to("admin_console.persons.view", "ended", person_id=_person_id(person_id))


@bp.route("/persons/<person_id>/roles/grant", methods=["POST"])
def grant_role(person_id: str) -> Response:
    """A sensitive action: an authentication older than 15 minutes is sent to re-authenticate."""
    actor = console_actor()
    web().services.admin.grant_role(actor, _person_id(person_id), field("role", 32))
    return back_to("admin_console.persons.view", "role_granted", person_id=_person_id(person_id))


@bp.route("/persons/<person_id>/roles/revoke", methods=["POST"])
def revoke_role(person_id: str) -> Response:
    actor = console_actor()
    web().services.admin.revoke_role(actor, _person_id(person_id), field("role", 32))
    return back_to("admin_console.persons.view", "role_revoked", person_id=_person_id(person_id))
