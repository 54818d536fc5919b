"""A person's own pages: profile, password, real-name verification, sessions, authorised platforms;
and the pages reached without a session: self-registration and password reset by one-time link."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for
from flask_babel import format_datetime, gettext

from idp.domain.models import Person, SsoSession
from idp.services.accounts import AccountError
from idp.web.context import WebContext, web
from idp.web.sessions import clear_session_cookie, current_session

bp = Blueprint("account", __name__)
log = logging.getLogger(__name__)

MAX_FIELD = 256
DONE_NOTICES = ("verified", "ended", "revoked")


# -- guard -----------------------------------------------------------------------------------------


def signed_in(ctx: WebContext) -> tuple[SsoSession, Person]:
    """The session and person of this browser; without one, the browser is sent to sign in."""
    session = current_session(ctx)
    person = ctx.services.persons.get(session.person_id) if session is not None else None
    if session is None or person is None or person.disabled:
        abort(redirect(url_for("login.form")))
    return session, person


def field(name: str) -> str:
    return request.form.get(name, "")[:MAX_FIELD]


def back_to(endpoint: str, **values: Any) -> Response:
    """Redirect after a POST, keeping the page's `ui_locales` (carried in a hidden field)."""
    ui_locales = request.values.get("ui_locales", "")[:64]
    if ui_locales:
        values["ui_locales"] = ui_locales
    return redirect(url_for(endpoint, **values))  # type: ignore[return-value]


def form_error(template: str, error: AccountError, **context: object) -> Response:
    response = Response(render_template(template, error=error_message(error.code), **context))
    response.status_code = 400
    return response


# -- profile ---------------------------------------------------------------------------------------


@bp.route("/account", methods=["GET"])
def profile() -> str:
    ctx = web()
    session, person = signed_in(ctx)
    done = request.args.get("done")
    return render_template(
        "account_profile.html",
        person=person,
        session_level=level_label(session.acr),
        done=done if done in DONE_NOTICES else None,
    )


# -- password change -------------------------------------------------------------------------------


@bp.route("/account/password", methods=["GET"])
def password_form() -> str:
    signed_in(web())
    return render_template("account_password.html", error=None, ended=None)


@bp.route("/account/password", methods=["POST"])
def change_password() -> Response | str:
    ctx = web()
    session, person = signed_in(ctx)
    g.lang_next = url_for("account.password_form")
    try:
        ended = ctx.services.accounts.change_password(
            person.id, field("current"), field("password"), field("confirm"), keep_sid=session.sid
        )
    except AccountError as error:
        return form_error("account_password.html", error, ended=None)
    return render_template("account_password.html", error=None, ended=ended)


# -- real-name verification ------------------------------------------------------------------------


@bp.route("/account/verify", methods=["GET"])
def verify_form() -> str:
    _, person = signed_in(web())
    return render_template("account_verify.html", person=person, error=None, name="")


@bp.route("/account/verify", methods=["POST"])
def verify() -> Response | str:
    ctx = web()
    _, person = signed_in(ctx)
    g.lang_next = url_for("account.verify_form")
    name = field("name")
    try:
        ctx.services.accounts.verify_real_name(person.id, name, field("id_number"))
    except AccountError as error:
        return form_error("account_verify.html", error, person=person, name=name)
    return back_to("account.profile", done="verified")


# -- my sessions -----------------------------------------------------------------------------------


@bp.route("/account/sessions", methods=["GET"])
def sessions() -> str:
    ctx = web()
    session, person = signed_in(ctx)
    summaries = ctx.services.accounts.sessions_of(person.id, session.sid)
    return render_template(
        "account_sessions.html",
        sessions=[
            {
                "sid": s.sid,
                "signed_in": when(s.auth_time),
                "started": when(s.created_at),
                "level": level_label(s.acr),
                "platforms": s.client_names,
                "current": s.current,
            }
            for s in summaries
        ],
        done=request.args.get("done") == "ended",
    )


@bp.route("/account/sessions/end", methods=["POST"])
def end_session() -> Response | str:
    ctx = web()
    session, person = signed_in(ctx)
    sid = field("sid")
    if not ctx.services.accounts.end_session(person.id, sid):
        abort(404)
    if sid != session.sid:
        return back_to("account.sessions", done="ended")
    response = Response(render_template("logged_out.html"))
    clear_session_cookie(ctx, response)
    return response


# -- my authorised platforms -----------------------------------------------------------------------


@bp.route("/account/platforms", methods=["GET"])
def platforms() -> str:
    ctx = web()
    _, person = signed_in(ctx)
    return render_template(
        "account_platforms.html",
        platforms=[
            {
                "client_id": p.client_id,
                "name": p.client_name,
                "scopes": p.scopes,
                "granted": when(p.granted_at) if p.granted_at else None,
            }
            for p in ctx.services.accounts.platforms_of(person.id)
        ],
        done=request.args.get("done") == "revoked",
    )


@bp.route("/account/platforms/revoke", methods=["POST"])
def revoke_platform() -> Response:
    ctx = web()
    _, person = signed_in(ctx)
    client_id = field("client_id")
    if client_id:
        ctx.services.accounts.revoke_platform(person.id, client_id)
    return back_to("account.platforms", done="revoked")


# -- who read my data -------------------------------------------------------------------------------


@bp.route("/account/data-access", methods=["GET"])
def data_access() -> str:
    ctx = web()
    _, person = signed_in(ctx)
    return render_template(
        "account_data_access.html",
        accesses=[
            {
                "when": when(a.at // 1000),
                "platform": a.client_name or a.client_id or "",
                "scopes": a.purpose.split(),
                "read": a.event == "data.read",
            }
            for a in ctx.services.audit.events_for_subject(person.id, limit=200)
        ],
    )


# -- self-registration -----------------------------------------------------------------------------


@bp.route("/register", methods=["GET"])
def register_form() -> str:
    return render_template("register.html", error=None, contact="")


@bp.route("/register", methods=["POST"])
def register() -> Response | str:
    ctx = web()
    g.lang_next = url_for("account.register_form")
    contact = field("contact")
    try:
        sent_to = ctx.services.accounts.start_registration(contact)
    except AccountError as error:
        return form_error("register.html", error, contact=contact)
    # The same page whether or not the address already has an account (no enumeration).
    return render_template("register_sent.html", contact=sent_to.masked)


@bp.route("/register/complete/<token>", methods=["GET"])
def complete_form(token: str) -> Response | str:
    contact = web().services.accounts.registration_contact(token)
    if contact is None:
        return link_invalid()
    return render_template("register_complete.html", token=token, contact=contact.value, error=None, name="")


@bp.route("/register/complete/<token>", methods=["POST"])
def complete(token: str) -> Response | str:
    ctx = web()
    g.lang_next = url_for("account.complete_form", token=token)
    contact = ctx.services.accounts.registration_contact(token)
    if contact is None:
        return link_invalid()
    name = field("name")
    try:
        person = ctx.services.accounts.complete_registration(token, name, field("password"), field("confirm"))
    except AccountError as error:
        if error.code == "link_invalid":
            return link_invalid()
        return form_error("register_complete.html", error, token=token, contact=contact.value, name=name)
    return render_template("register_done.html", sign_in_as=person.email or person.phone_number)


# -- password reset --------------------------------------------------------------------------------


@bp.route("/password/forgot", methods=["GET"])
def forgot_form() -> str:
    return render_template("password_forgot.html")


@bp.route("/password/forgot", methods=["POST"])
def forgot() -> str:
    ctx = web()
    g.lang_next = url_for("account.forgot_form")
    ctx.services.accounts.request_password_reset(field("identifier"))
    return render_template("password_forgot_sent.html")  # the same answer for every identifier


@bp.route("/password/reset/<token>", methods=["GET"])
def reset_form(token: str) -> Response | str:
    if not web().services.accounts.reset_link_valid(token):
        return link_invalid()
    return render_template("password_reset.html", token=token, error=None)


@bp.route("/password/reset/<token>", methods=["POST"])
def reset(token: str) -> Response | str:
    ctx = web()
    g.lang_next = url_for("account.reset_form", token=token)
    try:
        ctx.services.accounts.reset_password(token, field("password"), field("confirm"))
    except AccountError as error:
        if error.code == "link_invalid":
            return link_invalid()
        return form_error("password_reset.html", error, token=token)
    response = Response(render_template("password_reset_done.html"))
    clear_session_cookie(ctx, response)  # every session of the person was ended
    return response


def link_invalid() -> Response:
    response = Response(render_template("account_link_invalid.html"))
    response.status_code = 400
    return response


# -- wording ---------------------------------------------------------------------------------------


def when(epoch: int) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return format_datetime(moment, "yyyy-MM-dd HH:mm z")


def level_label(acr: str | None) -> str:
    labels = (
        gettext("Level 1: self-registered, identity not verified"),
        gettext("Level 2: real-name verified"),
        gettext("Level 3: real-name verified with a second factor"),
    )
    rank = web().ladder.rank(acr)
    return labels[rank] if rank >= 0 else acr or ""


def error_message(code: str) -> str:
    messages = {
        "invalid_contact": gettext("Enter a valid email address or mainland mobile number."),
        "password_too_short": gettext("The new password must be at least 8 characters."),
        "password_too_long": gettext("The new password must be at most 256 characters."),
        "password_mismatch": gettext("The two new passwords do not match."),
        "wrong_password": gettext("The current password is incorrect."),
        "too_many_attempts": gettext("Too many attempts. Please try again later."),
        "registration_failed": gettext(
            "The account could not be created. If you already have one, sign in or reset your password."
        ),
        "name_required": gettext("Enter your name as it appears on your identity card."),
        "name_invalid": gettext("The name is too long or contains characters that are not allowed."),
        "already_verified": gettext("Your account is already real-name verified."),
        "source_unavailable": gettext(
            "The population register cannot be reached at the moment. Nothing was changed; please try later."
        ),
        "verification_failed": gettext(
            "The name and identity number could not be verified. Check them and try again; "
            "if they are correct, contact the service desk."
        ),
        "id_number_wrong_length": gettext("An identity number has 18 characters."),
        "id_number_non_digit": gettext(
            "An identity number is 17 digits followed by a digit or the letter X."
        ),
        "id_number_bad_check_character": gettext(
            "The identity number's check character does not match; please check for a typing mistake."
        ),
        "id_number_unknown_province": gettext("The identity number does not begin with a known region code."),
        "id_number_impossible_birth_date": gettext(
            "The birth date in the identity number is not a real date."
        ),
        "id_number_birth_date_too_early": gettext("The birth date in the identity number is before 1900."),
        "id_number_future_birth_date": gettext("The birth date in the identity number is in the future."),
        "id_number_invalid_identifier": gettext("The identity number is not valid."),
    }
    return messages.get(code, gettext("The request could not be processed"))
