"""The login page and the account chooser: identifier + password, one generic message on failure."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from idp.domain.assurance import LOA1, LOA2
from idp.domain.models import Person
from idp.protocol.authorization_request import AuthorizeError
from idp.web.authorize import answer_error
from idp.web.context import WebContext, web
from idp.web.sessions import current_session, set_session_cookie
from idp.web.transactions import Transaction, finish_transaction, load_transaction, update_transaction

bp = Blueprint("login", __name__)
log = logging.getLogger(__name__)

MAX_FIELD = 256


@bp.route("/login", methods=["GET"])
def form() -> Response | str:
    ctx = web()
    tx = load_transaction(ctx.services, request.args.get("tx"))
    if request.args.get("tx") and tx is None:
        return expired()
    return render_login(ctx, tx, error=None)


@bp.route("/login", methods=["POST"])
def submit() -> Response | str:
    ctx = web()
    tx = load_transaction(ctx.services, request.form.get("tx"))
    if request.form.get("tx") and tx is None:
        return expired()
    if request.form.get("cancel") and tx is not None:
        return deny(ctx, tx)
    identifier = request.form.get("identifier", "")[:MAX_FIELD]
    password = request.form.get("password", "")[:MAX_FIELD]
    person = ctx.services.persons.authenticate(identifier, password) if identifier and password else None
    if person is None:
        log.info("login failed")
        failure = Response(render_login(ctx, tx, error="invalid_credentials", identifier=identifier))
        failure.status_code = 401
        return failure
    handle, session = ctx.services.sso.start(
        person.id, acr_for(person), ("pwd",), request.cookies.get("idp_session")
    )
    log.info("login succeeded sid=%s", session.sid[:8])
    if tx is not None:
        update_transaction(ctx.services, tx, ctx.settings.login_ttl, login_sid=session.sid)
        target = url_for("authorize.resume", tx=tx.id)
    else:
        target = url_for("home.index")
    response = redirect(target)
    set_session_cookie(ctx, response, handle)  # type: ignore[arg-type]  # a new session id at every login
    return response  # type: ignore[return-value]


@bp.route("/select-account", methods=["GET"])
def select_account_form() -> Response | str:
    ctx = web()
    tx = load_transaction(ctx.services, request.args.get("tx"))
    session = current_session(ctx)
    if tx is None:
        return expired()
    if session is None:
        return redirect(url_for("login.form", tx=tx.id))  # type: ignore[return-value]
    person = ctx.services.persons.get(session.person_id)
    client = ctx.services.clients.get(tx.request.client_id)
    g.ui_locales = tx.request.ui_locales
    return render_template(
        "select_account.html",
        tx=tx.id,
        client_name=client.client_name if client else None,
        person_name=display_name(person),
    )


@bp.route("/select-account", methods=["POST"])
def select_account() -> Response:
    ctx = web()
    tx = load_transaction(ctx.services, request.form.get("tx"))
    if tx is None:
        return expired()
    if request.form.get("choice") == "continue":
        update_transaction(ctx.services, tx, ctx.settings.login_ttl, account_chosen=True)
        return redirect(url_for("authorize.resume", tx=tx.id))  # type: ignore[return-value]
    update_transaction(ctx.services, tx, ctx.settings.login_ttl, account_chosen=True, force_login=True)
    return redirect(url_for("login.form", tx=tx.id))  # type: ignore[return-value]


def acr_for(person: Person) -> str:
    """Password login: level 2 once the person's real name is verified, else level 1."""
    return LOA2 if person.verified else LOA1


def render_login(
    ctx: WebContext, tx: Transaction | None, error: str | None, identifier: str | None = None
) -> str:
    client_name = None
    login_hint = identifier
    current = None
    if tx is not None:
        g.ui_locales = tx.request.ui_locales
        g.lang_next = url_for("login.form", tx=tx.id)
        client = ctx.services.clients.get(tx.request.client_id)
        client_name = client.client_name if client else None
        login_hint = login_hint or tx.request.login_hint
        session = current_session(ctx)
        if session is not None:
            current = ctx.services.persons.get(session.person_id)
    return render_template(
        "login.html",
        tx=tx.id if tx else "",
        client_name=client_name,
        login_hint=login_hint or "",
        error=error,
        current_person=current,
    )


def deny(ctx: WebContext, tx: Transaction) -> Response:
    finish_transaction(ctx.services, tx)
    return answer_error(
        ctx,
        AuthorizeError(
            "access_denied",
            "The person cancelled the sign-in.",
            redirect_uri=tx.request.redirect_uri,
            state=tx.request.state,
        ),
    )


def expired() -> Response:
    from idp.web.responses import error_page

    return error_page(
        400, "invalid_request", "This sign-in has expired. Return to the service and start again."
    )


def display_name(person: Person | None) -> str:
    if person is None:
        return ""
    return person.name or person.username
