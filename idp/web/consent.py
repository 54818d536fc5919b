"""The consent page: which platform asks for what; remembered per client and scopes."""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from idp.web.context import web
from idp.web.login import deny, display_name, transaction_in_session
from idp.web.transactions import update_transaction

bp = Blueprint("consent", __name__)


@bp.route("/consent", methods=["GET"])
def form() -> Response | str:
    ctx = web()
    tx, session = transaction_in_session(ctx)
    client = ctx.services.clients.get(tx.request.client_id)
    g.ui_locales = tx.request.ui_locales
    return render_template(
        "consent.html",
        tx=tx.id,
        client_name=client.client_name if client else tx.request.client_id,
        scopes=list(tx.request.scope),
        person_name=display_name(ctx.services.persons.get(session.person_id)),
    )


@bp.route("/consent", methods=["POST"])
def submit() -> Response:
    ctx = web()
    tx, session = transaction_in_session(ctx)
    if request.form.get("decision") != "allow":
        ctx.services.audit.record(
            "consent.denied",
            actor=session.person_id,
            subject=session.person_id,
            client_id=tx.request.client_id,
            purpose=" ".join(tx.request.scope),
            address=request.remote_addr,
            outcome="failure",
        )
        return deny(ctx, tx)
    ctx.services.consent.grant(session.person_id, tx.request.client_id, tx.request.scope)
    ctx.services.audit.record(
        "consent.granted",
        actor=session.person_id,
        subject=session.person_id,
        client_id=tx.request.client_id,
        purpose=" ".join(tx.request.scope),
        address=request.remote_addr,
    )
    update_transaction(ctx.services, tx, ctx.settings.login_ttl, consented=True)
    return redirect(url_for("authorize.resume", tx=tx.id))  # type: ignore[return-value]
