"""The login page and the account chooser: identifier + password, one generic message on failure."""

from __future__ import annotations

import hashlib
import logging
import secrets

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from idp.domain.errors import SourceUnavailable
from idp.domain.models import Person, SsoSession
from idp.protocol.authorization_request import AuthorizeError
from idp.web.authorize import answer_error
from idp.web.context import SESSION_COOKIE, WebContext, web
from idp.web.responses import error_page
from idp.web.sessions import current_session, set_session_cookie
from idp.web.transactions import Transaction, finish_transaction, load_transaction, update_transaction

bp = Blueprint("login", __name__)
log = logging.getLogger(__name__)

MAX_FIELD = 256
PENDING_LOGIN_COOKIE = "idp_pending_login"
PENDING_LOGIN_PATH = "/mfa"  # only the second-factor pages read it


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
    address = request.remote_addr or ""
    verdict = ctx.services.throttle.check(identifier, address)
    try:
        person = ctx.services.persons.authenticate(identifier, password) if identifier and password else None
    except SourceUnavailable as exc:
        log.error("identity source unavailable: %s", exc)
        unavailable = Response(render_login(ctx, tx, error="source_unavailable", identifier=identifier))
        unavailable.status_code = 503
        return unavailable
    if not verdict.allowed:
        person = None  # locked or too early: answered exactly like a wrong password (the hash still ran)
    ctx.services.throttle.record(identifier, address, succeeded=person is not None)
    if person is None:
        log.info("login failed")
        ctx.services.audit.record(
            "login.failed",
            actor="anonymous",
            client_id=tx.request.client_id if tx else None,
            address=address,
            outcome="failure",
            details={"identifier": ctx.services.audit.pseudonym(identifier), "locked": not verdict.allowed},
        )
        failure = Response(render_login(ctx, tx, error="invalid_credentials", identifier=identifier))
        failure.status_code = 401
        return failure
    if person.mfa_enabled:  # read with the password check, no second query
        return hold_for_second_factor(ctx, person, tx, "mfa.verify_form")
    if ctx.services.mfa.requires_mfa(person.id):
        return hold_for_second_factor(ctx, person, tx, "mfa.enrol_form")
    handle, target = complete_login(ctx, person, ("pwd",), tx)
    response = redirect(target)
    set_session_cookie(ctx, response, handle)  # type: ignore[arg-type]  # a new session id at every login
    clear_pending_login(ctx, response)  # type: ignore[arg-type]
    return response  # type: ignore[return-value]


def complete_login(
    ctx: WebContext, person: Person, amr: tuple[str, ...], tx: Transaction | None
) -> tuple[str, str]:
    """Start the SSO session of a finished login; returns its handle (for the cookie) and where to go."""
    previous = current_session(ctx)
    if previous is not None and previous.person_id != person.id:
        # another person signs in in this browser: the previous person's session ends everywhere
        ctx.services.logout.end_session(previous.sid, previous.person_id)
    handle, session = ctx.services.sso.start(
        person.id, ctx.ladder.acr_for(person.verified, amr), amr, request.cookies.get(SESSION_COOKIE)
    )
    log.info("login succeeded sid=%s amr=%s", session.sid[:8], " ".join(amr))
    ctx.services.audit.record(
        "login.succeeded",
        actor=person.id,
        subject=person.id,
        client_id=tx.request.client_id if tx else None,
        address=request.remote_addr,
        details={"amr": " ".join(amr), "acr": session.acr},
    )
    if tx is None:
        return handle, url_for("home.index")
    update_transaction(ctx.services, tx, ctx.settings.login_ttl, login_sid=session.sid)
    return handle, url_for("authorize.resume", tx=tx.id)


# A password login of a person with a second factor (or who must enrol one) waits, bound to this
# browser by a cookie, until the second factor is done: no SSO session exists before that.


def hold_for_second_factor(
    ctx: WebContext, person: Person, tx: Transaction | None, endpoint: str
) -> Response:
    handle = secrets.token_urlsafe(32)
    ctx.services.ephemeral.set(_pending_key(handle), person.id, ctx.settings.login_ttl)
    log.info("password accepted, second factor pending")
    response = redirect(url_for(endpoint, tx=tx.id) if tx else url_for(endpoint))
    response.set_cookie(
        PENDING_LOGIN_COOKIE,
        handle,
        max_age=ctx.settings.login_ttl,
        httponly=True,
        samesite="Lax",
        secure=ctx.settings.secure_cookies,
        path=PENDING_LOGIN_PATH,
    )
    return response  # type: ignore[return-value]


def pending_login(ctx: WebContext) -> str | None:
    """The person whose password was accepted in this browser and whose second factor is awaited."""
    handle = request.cookies.get(PENDING_LOGIN_COOKIE)
    if not handle or len(handle) > 100:
        return None
    return ctx.services.ephemeral.get(_pending_key(handle))


def take_pending_login(ctx: WebContext) -> str | None:
    """Single use: of two concurrent completions exactly one gets the person id."""
    handle = request.cookies.get(PENDING_LOGIN_COOKIE)
    if not handle or len(handle) > 100:
        return None
    return ctx.services.ephemeral.take(_pending_key(handle))


def clear_pending_login(ctx: WebContext, response: Response) -> None:
    """Forget a waiting login (the cookie is only sent to /mfa; elsewhere the entry just expires)."""
    handle = request.cookies.get(PENDING_LOGIN_COOKIE)
    if handle and len(handle) <= 100:
        ctx.services.ephemeral.delete(_pending_key(handle))
    response.delete_cookie(
        PENDING_LOGIN_COOKIE,
        path=PENDING_LOGIN_PATH,
        httponly=True,
        samesite="Lax",
        secure=ctx.settings.secure_cookies,
    )


def _pending_key(handle: str) -> str:
    return f"login-pending:{hashlib.sha256(handle.encode()).hexdigest()}"


@bp.route("/select-account", methods=["GET"])
def select_account_form() -> Response | str:
    ctx = web()
    tx, session = transaction_in_session(ctx)
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
    return error_page(
        400, "invalid_request", "This sign-in has expired. Return to the service and start again."
    )


def transaction_in_session(ctx: WebContext) -> tuple[Transaction, SsoSession]:
    """The sign-in a page belongs to (`tx` in the query or the form) and this browser's session. An
    unknown or expired sign-in ends with the expired page; without a session the browser logs in first."""
    tx = load_transaction(ctx.services, request.values.get("tx"))
    if tx is None:
        abort(expired())
    session = current_session(ctx)
    if session is None:
        abort(redirect(url_for("login.form", tx=tx.id)))
    return tx, session


def display_name(person: Person | None) -> str:
    if person is None:
        return ""
    return person.name or person.username
