"""The administration console: server-rendered pages under /admin, in Chinese and English, no JavaScript.

Each section is a child blueprint in its own module (admin/console_<section>.py). Every handler asks
`console_actor()` who is signed in, then makes one AdminService call: the service checks the role
matrix and, for sensitive actions, the age of the authentication; the error handlers in admin.auth turn
its refusals into a 403 page or a redirect to re-authentication."""

from __future__ import annotations

from flask import Blueprint, Response

from admin.auth import console_actor
from admin.console_audit import bp as audit_section
from admin.console_clients import bp as clients_section
from admin.console_entities import bp as entities_section
from admin.console_keys import bp as keys_section
from admin.console_pages import show
from admin.console_persons import bp as persons_section
from admin.context import CONSOLE_PREFIX
from idp.web.context import web

bp = Blueprint("admin_console", __name__, url_prefix=CONSOLE_PREFIX)
for section in (clients_section, persons_section, entities_section, keys_section, audit_section):
    bp.register_blueprint(section)


@bp.route("/", methods=["GET"])
def dashboard() -> Response:
    """What this admin's roles allow, and who is signed in."""
    actor = console_actor()
    person = web().services.persons.get(actor.id)
    return show("dashboard.html", actor, person=person, roles=sorted(actor.roles))
