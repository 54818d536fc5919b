"""The provider's own landing page: who is signed in here."""

from __future__ import annotations

from flask import Blueprint, render_template

from idp.web.context import web
from idp.web.sessions import current_session

bp = Blueprint("home", __name__)


@bp.route("/", methods=["GET"])
def index() -> str:
    ctx = web()
    session = current_session(ctx)
    person = ctx.services.persons.get(session.person_id) if session else None
    return render_template("home.html", person=person)
