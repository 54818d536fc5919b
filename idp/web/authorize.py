"""The authorization endpoint, read top to bottom as named steps (OIDC Core §3.1.2)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, request, url_for

from idp.domain.assurance import has_second_factor
from idp.domain.models import AuthContext, CodeGrant, SsoSession
from idp.protocol.authorization_request import (
    AuthorizationRequest,
    AuthorizeError,
    build_request,
    check_redirect_uri,
    find_client,
    read_parameters,
)
from idp.protocol.claims import is_resource_scope
from idp.protocol.grants import new_grant_id
from idp.web.context import WebContext, web
from idp.web.responses import error_page
from idp.web.sessions import current_session
from idp.web.transactions import Transaction, finish_transaction, load_transaction, start_transaction

bp = Blueprint("authorize", __name__)


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    ctx = web()
    try:
        values = read_parameters(request.values.to_dict(flat=False))
        client = find_client(values, ctx.services.clients.get)
        redirect_uri = check_redirect_uri(values, client)
        authz = build_request(values, client, redirect_uri)
    except AuthorizeError as error:
        return answer_error(ctx, error)
    tx = start_transaction(ctx.services, authz, ctx.settings.login_ttl)
    return continue_authorization(ctx, tx)


@bp.route("/authorize/resume", methods=["GET"])
def resume() -> Response:
    ctx = web()
    tx = load_transaction(ctx.services, request.args.get("tx"))
    if tx is None:
        return error_page(
            400, "invalid_request", "This sign-in has expired. Return to the service and start again."
        )
    return continue_authorization(ctx, tx)


def continue_authorization(ctx: WebContext, tx: Transaction) -> Response:
    """The steps after the request is valid; each either passes, asks the person, or answers an error."""
    authz = tx.request
    session = current_session(ctx)
    try:
        if needs_login(ctx, tx, session):
            return ask_person(tx, "login.form", "login_required")
        assert session is not None
        second_factor_page = check_assurance(ctx, authz, session, logged_in_here=session.sid == tx.login_sid)
        if second_factor_page:
            return ask_person(tx, second_factor_page, "interaction_required")
        if needs_account_choice(tx, session):
            return ask_person(tx, "login.select_account_form", "account_selection_required")
        if needs_entity_choice(ctx, tx, session):
            return ask_person(tx, "entity.select_form", "account_selection_required")
        if needs_consent(ctx, tx, session):
            return ask_person(tx, "consent.form", "consent_required")
    except AuthorizeError as error:
        finish_transaction(ctx.services, tx)
        return answer_error(ctx, error)
    if not finish_transaction(ctx.services, tx):
        return error_page(400, "invalid_request", "This sign-in was already completed.")
    return issue_code(ctx, authz, session, acting_entity_id(ctx, tx, session))


def needs_login(ctx: WebContext, tx: Transaction, session: SsoSession | None) -> bool:
    if session is None:
        return True
    if session.sid == tx.login_sid:
        return False
    if tx.force_login or "login" in tx.request.prompt:
        return True
    # OIDC Core §3.1.2.1: max_age forces re-authentication once exceeded.
    max_age = tx.request.max_age
    return max_age is not None and time.time() - session.auth_time > max_age


def check_assurance(
    ctx: WebContext, authz: AuthorizationRequest, session: SsoSession, *, logged_in_here: bool = False
) -> str | None:
    """Never issue a weaker login than asked for (acr_values), nor one without the second factor a
    person must use. A second factor steps the session up (its page is returned), never a new
    password; a level that not even a second factor reaches is an error. `logged_in_here`: the
    session comes from a login inside this transaction, moments ago, and that login already applied
    the second-factor rule (`login.submit` holds a password login that needs one), so it is not
    asked again (two queries per login)."""
    client = ctx.services.clients.get(authz.client_id)
    # acr_values are the platform's wish for this login; minimum_acr is its registered floor.
    required = ctx.ladder.strongest(
        ctx.ladder.required(authz.acr_values), client.minimum_acr if client else None
    )
    mfa = ctx.services.mfa
    factor_missing = (
        not logged_in_here and not has_second_factor(session.amr) and mfa.requires_mfa(session.person_id)
    )
    if ctx.ladder.satisfies(session.acr, required) and not factor_missing:
        return None
    person = ctx.services.persons.get(session.person_id)
    stepped_up = ctx.ladder.acr_for(person.verified, {*session.amr, "otp"}) if person else None
    if person is None or not ctx.ladder.satisfies(stepped_up, required):
        raise AuthorizeError(
            "unmet_authentication_requirements",
            f"The requested level of assurance {required} cannot be reached by this sign-in.",
            redirect_uri=authz.redirect_uri,
            state=authz.state,
        )
    return "mfa.verify_form" if mfa.is_enabled(person.id) else "mfa.enrol_form"


def needs_account_choice(tx: Transaction, session: SsoSession) -> bool:
    return "select_account" in tx.request.prompt and not tx.account_chosen and session.sid != tx.login_sid


def needs_entity_choice(ctx: WebContext, tx: Transaction, session: SsoSession) -> bool:
    """Scope `entity`: the person acts for themself or for one legal entity they hold a valid
    authorisation for. Asked once per session (the choice holds for every platform), again with
    prompt=select_account, and again when the authority chosen earlier has ended."""
    if "entity" not in tx.request.scope or tx.acting is not None:
        return False
    options = {option.entity_id for option in ctx.services.entities.acting_options(session.person_id)}
    if not options:
        return False
    if "select_account" in tx.request.prompt:
        return True
    return session.acting is None or (session.acting != "self" and session.acting not in options)


def acting_entity_id(ctx: WebContext, tx: Transaction, session: SsoSession) -> str | None:
    """The entity the code is issued for: chosen in this sign-in, or earlier in the session while
    that authority still holds (token issuance checks it again)."""
    if "entity" not in tx.request.scope:
        return None
    if tx.acting is not None:
        return None if tx.acting == "self" else tx.acting
    if session.acting in (None, "self"):
        return None
    options = {option.entity_id for option in ctx.services.entities.acting_options(session.person_id)}
    return session.acting if session.acting in options else None


def needs_consent(ctx: WebContext, tx: Transaction, session: SsoSession) -> bool:
    client = ctx.services.clients.get(tx.request.client_id)
    if client is None:
        raise AuthorizeError("invalid_client", "The client is unknown or disabled.")
    if tx.consented:
        return False
    if "consent" in tx.request.prompt:
        return True
    if client.first_party and not any(is_resource_scope(s) for s in tx.request.scope):
        return False  # a resource scope releases data to another service: the person decides, always
    return not ctx.services.consent.covers(session.person_id, client.client_id, tx.request.scope)


def ask_person(tx: Transaction, endpoint: str, none_error: str) -> Response:
    """Interaction is needed: with prompt=none that is an error (OIDC Core §3.1.2.6)."""
    if "none" in tx.request.prompt:
        raise AuthorizeError(
            none_error,
            "The person must interact with the provider.",
            redirect_uri=tx.request.redirect_uri,
            state=tx.request.state,
        )
    return redirect(url_for(endpoint, tx=tx.id))  # type: ignore[return-value]


def issue_code(
    ctx: WebContext, authz: AuthorizationRequest, session: SsoSession, entity_id: str | None
) -> Response:
    context = AuthContext(
        person_id=session.person_id,
        grant_id=new_grant_id(),
        sid=session.sid,
        auth_time=session.auth_time,
        acr=session.acr,
        amr=session.amr,
        nonce=authz.nonce,
        entity_id=entity_id,
    )
    grant = CodeGrant(
        client_id=authz.client_id,
        redirect_uri=authz.redirect_uri,
        scope=" ".join(authz.scope),
        code_challenge=authz.code_challenge,
        context=context,
    )
    code = ctx.services.codes.issue(grant)
    ctx.services.sso.record_client(session, authz.client_id)
    return redirect_to_client(ctx, authz.redirect_uri, {"code": code, "state": authz.state})


def answer_error(ctx: WebContext, error: AuthorizeError) -> Response:
    if error.redirect_uri is None:
        status = 400
        return error_page(status, error.error, error.description)
    params = {"error": error.error, "error_description": error.description, "state": error.state}
    return redirect_to_client(ctx, error.redirect_uri, params)


def redirect_to_client(ctx: WebContext, redirect_uri: str, params: dict[str, str | None]) -> Response:
    """RFC 9207 §2: `iss` in every authorization response, success and error."""
    params = {**params, "iss": ctx.settings.issuer}
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if "?" in redirect_uri else "?"
    response = redirect(f"{redirect_uri}{separator}{query}", code=302)
    response.headers["Cache-Control"] = "no-store"
    return response  # type: ignore[return-value]
