"""Second-factor pages: TOTP verification (at login and for step-up), enrolment, recovery codes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from idp.domain.models import Person
from idp.services.mfa import MfaError
from idp.web.context import SESSION_COOKIE, WebContext, web
from idp.web.login import (
    clear_pending_login,
    complete_login,
    deny,
    display_name,
    expired,
    pending_login,
    take_pending_login,
)
from idp.web.sessions import current_session, set_session_cookie
from idp.web.transactions import Transaction, load_transaction

bp = Blueprint("mfa", __name__)
log = logging.getLogger(__name__)

MAX_CODE = 64


@dataclass(frozen=True)
class Subject:
    """Who the second factor is for: a password login waiting for it, or a live session stepping up."""

    person: Person
    pending_login: bool


class Gone(Exception):
    """The transaction expired or nobody is signing in: answer with `response`."""

    def __init__(self, response: Response) -> None:
        super().__init__("gone")
        self.response = response


@bp.route("/mfa/verify", methods=["GET"])
def verify_form() -> Response | str:
    ctx = web()
    try:
        tx, subject = read_step(ctx, request.args.get("tx"))
    except Gone as gone:
        return gone.response
    if not ctx.services.mfa.is_enabled(subject.person.id):
        return redirect(url_for("mfa.enrol_form", **tx_args(tx)))  # type: ignore[return-value]
    return render_verify(ctx, tx, subject, error=None)


@bp.route("/mfa/verify", methods=["POST"])
def verify() -> Response | str:
    ctx = web()
    try:
        tx, subject = read_step(ctx, request.form.get("tx"))
    except Gone as gone:
        return gone.response
    if request.form.get("cancel"):
        return cancel(ctx, tx)
    method = ctx.services.mfa.verify(subject.person.id, request.form.get("code", "")[:MAX_CODE])
    if method is None:
        log.info("second factor refused")
        error = "locked" if ctx.services.mfa.is_locked(subject.person.id) else "invalid_code"
        ctx.services.audit.record(
            "mfa.failed",
            actor=subject.person.id,
            subject=subject.person.id,
            client_id=tx.request.client_id if tx else None,
            address=request.remote_addr,
            outcome="failure",
            details={"reason": error, "step_up": not subject.pending_login},
        )
        failure = Response(render_verify(ctx, tx, subject, error=error))
        failure.status_code = 401
        return failure
    response, _ = finish_second_factor(ctx, tx, subject, method)
    return response


@bp.route("/mfa/enrol", methods=["GET"])
def enrol_form() -> Response | str:
    ctx = web()
    try:
        tx, subject = read_step(ctx, request.args.get("tx"))
    except Gone as gone:
        return gone.response
    if ctx.services.mfa.is_enabled(subject.person.id):
        return redirect(url_for("mfa.verify_form", **tx_args(tx)))  # type: ignore[return-value]
    return render_enrol(ctx, tx, subject, error=None)


@bp.route("/mfa/enrol", methods=["POST"])
def enrol() -> Response | str:
    ctx = web()
    from_account = request.form.get("from") == "account"
    try:
        tx, subject = read_step(ctx, request.form.get("tx"), allow_pending=not from_account)
    except Gone as gone:
        return gone.response
    if request.form.get("cancel"):
        return cancel(ctx, tx)
    if ctx.services.mfa.is_enabled(subject.person.id):
        return redirect(url_for("mfa.verify_form", **tx_args(tx)))  # type: ignore[return-value]
    try:
        codes = ctx.services.mfa.confirm_enrolment(subject.person.id, request.form.get("code", "")[:MAX_CODE])
    except MfaError as error:
        failure = Response(render_enrol(ctx, tx, subject, error=error.reason, from_account=from_account))
        failure.status_code = 400
        return failure
    log.info("TOTP enrolled")
    # The confirming code proves the new authenticator is in the person's hands: it is their second
    # factor for this sign-in (its time step is spent, so it cannot be replayed on the verify page).
    response, target = finish_second_factor(ctx, tx, subject, "otp")
    if response.status_code not in (301, 302, 303):
        return response
    if from_account and tx is None:
        target = url_for("mfa.account")
    parts = urlsplit(target)
    page = Response(
        render_template(
            "mfa_recovery_codes.html",
            codes=codes,
            continue_action=parts.path,  # a GET form drops the action's query: its fields carry it
            continue_fields=parse_qsl(parts.query),
        )
    )
    for header in response.headers.getlist("Set-Cookie"):  # the session cookie of a finished login
        page.headers.add("Set-Cookie", header)
    page.headers["Cache-Control"] = "no-store"
    return page


@bp.route("/account/mfa", methods=["GET"])
def account() -> Response | str:
    """Two-step verification outside a sign-in: status, or enrolment for a signed-in person."""
    ctx = web()
    session = current_session(ctx)
    person = ctx.services.persons.get(session.person_id) if session else None
    if person is None:
        return redirect(url_for("login.form"))  # type: ignore[return-value]
    subject = Subject(person=person, pending_login=False)
    if ctx.services.mfa.is_enabled(person.id):
        return render_template(
            "mfa_enrol.html",
            enabled=True,
            remaining=ctx.services.mfa.remaining_recovery_codes(person.id),
            person_name=display_name(person),
        )
    return render_enrol(ctx, None, subject, error=None, from_account=True)


def read_step(
    ctx: WebContext, tx_id: str | None, *, allow_pending: bool = True
) -> tuple[Transaction | None, Subject]:
    """The transaction (if any) and the person; a waiting password login comes before a session."""
    tx = load_transaction(ctx.services, tx_id)
    if tx_id and tx is None:
        raise Gone(expired())
    if tx is not None:
        g.ui_locales = tx.request.ui_locales
    person_id = pending_login(ctx) if allow_pending else None
    pending = person_id is not None
    if person_id is None:
        session = current_session(ctx)
        person_id = session.person_id if session else None
    person = ctx.services.persons.get(person_id) if person_id else None
    if person is None or person.disabled:
        raise Gone(redirect(url_for("login.form", **tx_args(tx))))  # type: ignore[arg-type]
    return tx, Subject(person=person, pending_login=pending)


def finish_second_factor(
    ctx: WebContext, tx: Transaction | None, subject: Subject, method: str
) -> tuple[Response, str]:
    """A waiting login completes with pwd + the factor; a live session is raised (same sid).

    Returns the response (a redirect on success) and where it leads ("" when it does not)."""
    added = (method, "mfa")  # RFC 8176: "mfa" marks more than one factor
    if subject.pending_login:
        return complete_pending_login(ctx, tx, subject.person, added)
    return step_up_session(ctx, tx, subject.person, added)


def complete_pending_login(
    ctx: WebContext, tx: Transaction | None, person: Person, added: tuple[str, ...]
) -> tuple[Response, str]:
    if take_pending_login(ctx) != person.id:  # finished by a concurrent request meanwhile
        return expired(), ""
    handle, target = complete_login(ctx, person, ("pwd", *added), tx)
    response: Response = redirect(target)  # type: ignore[assignment]
    set_session_cookie(ctx, response, handle)
    clear_pending_login(ctx, response)
    return response, target


def step_up_session(
    ctx: WebContext, tx: Transaction | None, person: Person, added: tuple[str, ...]
) -> tuple[Response, str]:
    session = current_session(ctx)
    raised = None
    if session is not None and session.person_id == person.id:
        acr = ctx.ladder.acr_for(person.verified, {*session.amr, *added})
        raised = ctx.services.sso.raise_assurance(request.cookies.get(SESSION_COOKIE), acr, added)
    if raised is None:  # signed out meanwhile
        return redirect(url_for("login.form", **tx_args(tx))), ""  # type: ignore[return-value]
    log.info("session stepped up sid=%s acr=%s", raised.sid[:8], raised.acr)
    target = url_for("authorize.resume", tx=tx.id) if tx else url_for("home.index")
    return redirect(target), target  # type: ignore[return-value]


def cancel(ctx: WebContext, tx: Transaction | None) -> Response:
    response = deny(ctx, tx) if tx is not None else redirect(url_for("home.index"))
    clear_pending_login(ctx, response)  # type: ignore[arg-type]
    return response  # type: ignore[return-value]


def render_verify(ctx: WebContext, tx: Transaction | None, subject: Subject, error: str | None) -> str:
    g.lang_next = url_for("mfa.verify_form", **tx_args(tx))
    return render_template(
        "mfa_verify.html",
        tx=tx.id if tx else "",
        client_name=client_name(ctx, tx),
        person_name=display_name(subject.person),
        error=error,
    )


def render_enrol(
    ctx: WebContext,
    tx: Transaction | None,
    subject: Subject,
    error: str | None,
    from_account: bool = False,
) -> str:
    g.lang_next = url_for("mfa.account") if from_account else url_for("mfa.enrol_form", **tx_args(tx))
    mfa = ctx.services.mfa
    enrolment = mfa.pending_enrolment(subject.person.id) or mfa.begin_enrolment(subject.person.id)
    return render_template(
        "mfa_enrol.html",
        enabled=False,
        tx=tx.id if tx else "",
        from_account=from_account,
        required=mfa.requires_mfa(subject.person.id),
        client_name=client_name(ctx, tx),
        person_name=display_name(subject.person),
        qr_data_uri=enrolment.qr_svg_data_uri,
        secret=" ".join(enrolment.secret[i : i + 4] for i in range(0, len(enrolment.secret), 4)),
        error=error,
    )


def client_name(ctx: WebContext, tx: Transaction | None) -> str | None:
    client = ctx.services.clients.get(tx.request.client_id) if tx else None
    return client.client_name if client else None


def tx_args(tx: Transaction | None) -> dict[str, Any]:
    return {"tx": tx.id} if tx else {}
