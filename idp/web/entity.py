"""Choosing for whom to act: "myself" or one legal entity (法人) the person is authorised for."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from idp.domain.entities import CannotActForEntity
from idp.services.entities import EntityError
from idp.web.context import SESSION_COOKIE, web
from idp.web.login import display_name, transaction_in_session
from idp.web.transactions import update_transaction

bp = Blueprint("entity", __name__)
log = logging.getLogger(__name__)


@bp.route("/entity/select", methods=["GET"])
def select_form() -> Response | str:
    ctx = web()
    tx, session = transaction_in_session(ctx)
    g.ui_locales = tx.request.ui_locales
    return render_page(tx.id, tx.request.client_id, session.person_id, session.acting, error=None)


@bp.route("/entity/select", methods=["POST"])
def select() -> Response | str:
    ctx = web()
    tx, session = transaction_in_session(ctx)
    acting = request.form.get("acting", "")
    if acting != "self":
        try:
            ctx.services.entities.acting_as(session.person_id, acting[:64])
        except (CannotActForEntity, EntityError) as exc:
            g.ui_locales = tx.request.ui_locales
            page = Response(render_page(tx.id, tx.request.client_id, session.person_id, None, error=str(exc)))
            page.status_code = 400
            return page
    ctx.services.sso.choose_acting(request.cookies.get(SESSION_COOKIE), acting)
    update_transaction(ctx.services, tx, ctx.settings.login_ttl, acting=acting)
    log.info("acting chosen: %s", "self" if acting == "self" else "entity")
    return redirect(url_for("authorize.resume", tx=tx.id))  # type: ignore[return-value]


def render_page(tx_id: str, client_id: str, person_id: str, current: str | None, error: str | None) -> str:
    ctx = web()
    client = ctx.services.clients.get(client_id)
    return render_template(
        "entity_select.html",
        tx=tx_id,
        client_name=client.client_name if client else client_id,
        person_name=display_name(ctx.services.persons.get(person_id)),
        options=ctx.services.entities.acting_options(person_id),
        current=current or "self",
        error=error,
    )
