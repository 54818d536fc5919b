"""Console pages for platforms (OIDC clients): list and search, register, edit, disable and enable,
rotate the secret (shown once), and initial access tokens for dynamic registration (RFC 7591 §3)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, request, url_for

from admin.auth import console_actor
from admin.console_pages import (
    MAX_TEXT,
    arg,
    back_to,
    bounded_int,
    field,
    lines,
    page_links,
    paging,
    path_id,
    refuse,
    refuse_input,
    show,
    show_secret,
    when,
)
from idp.domain.models import Client
from idp.services.admin import AdminInputError
from idp.services.clients import AUTH_METHODS, GRANT_TYPES, ID_TOKEN_ALGS, TOKEN_FORMATS
from idp.web.context import web

bp = Blueprint("clients", __name__)

NEW_CLIENT: dict[str, Any] = {
    "client_id": "",
    "client_name": "",
    "redirect_uris": "",
    "post_logout_redirect_uris": "",
    "backchannel_logout_uri": "",
    "scope": "openid profile",
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "client_secret_basic",
    "minimum_acr": "",
    "access_token_format": "jwt",
    "id_token_signed_response_alg": "RS256",
    "first_party": False,
    "jwks": "",
}


# -- list, view ------------------------------------------------------------------------------------


@bp.route("/clients", methods=["GET"])
def index() -> Response:
    actor = console_actor()
    query = arg("q")
    offset, limit = paging()
    page = web().services.admin.list_clients(actor, query, offset, limit)
    return show("clients.html", actor, page=page, links=page_links(page), query=query)


@bp.route("/clients/<client_id>", methods=["GET"])
def view(client_id: str) -> Response:
    actor = console_actor()
    client = web().services.admin.get_client(actor, path_id(client_id))
    return show("client.html", actor, client=client, has_secret=has_secret(client))


# -- register and edit -----------------------------------------------------------------------------


@bp.route("/clients/new", methods=["GET"])
def new_form() -> Response:
    actor = console_actor()
    web().services.admin.authorize(actor, "clients.write")  # the form is for those who may submit it
    return show("client_form.html", actor, **form_page(NEW_CLIENT, client_id=None))


@bp.route("/clients/new", methods=["POST"])
def create() -> Response:
    actor = console_actor()
    form = submitted()
    try:
        metadata = metadata_of(form, client_id=form["client_id"])
        client, secret = web().services.admin.create_client(actor, metadata)
    except JwksUnreadable:
        return refuse("client_form.html", actor, "jwks_unreadable", **form_page(form, client_id=None))
    except AdminInputError as error:
        return refuse_input("client_form.html", actor, error, **form_page(form, client_id=None))
    if secret is None:
        return back_to("admin_console.clients.view", "created", client_id=client.client_id)
    return show_secret("client_secret.html", actor, client=client, secret=secret, created=True)


@bp.route("/clients/<client_id>/edit", methods=["GET"])
def edit_form(client_id: str) -> Response:
    actor = console_actor()
    client = web().services.admin.get_client(actor, path_id(client_id))
    return show("client_form.html", actor, **form_page(form_of(client), client_id=client.client_id))


@bp.route("/clients/<client_id>/edit", methods=["POST"])
def update(client_id: str) -> Response:
    actor = console_actor()
    client_id = path_id(client_id)
    form = {**submitted(), "client_id": client_id}
    try:
        metadata = metadata_of(form, client_id=client_id)
        client, secret = web().services.admin.update_client(actor, client_id, metadata)
    except JwksUnreadable:
        return refuse("client_form.html", actor, "jwks_unreadable", **form_page(form, client_id=client_id))
    except AdminInputError as error:
        return refuse_input("client_form.html", actor, error, **form_page(form, client_id=client_id))
    if secret is None:
        return back_to("admin_console.clients.view", "saved", client_id=client.client_id)
    return show_secret("client_secret.html", actor, client=client, secret=secret, created=False)


# -- disable, enable, rotate the secret -------------------------------------------------------------


@bp.route("/clients/<client_id>/disable", methods=["POST"])
def disable(client_id: str) -> Response:
    actor = console_actor()
    web().services.admin.set_client_disabled(actor, path_id(client_id), True)
    return back_to("admin_console.clients.view", "disabled", client_id=path_id(client_id))


@bp.route("/clients/<client_id>/enable", methods=["POST"])
def enable(client_id: str) -> Response:
    actor = console_actor()
    web().services.admin.set_client_disabled(actor, path_id(client_id), False)
    return back_to("admin_console.clients.view", "enabled", client_id=path_id(client_id))


@bp.route("/clients/<client_id>/rotate-secret", methods=["POST"])
def rotate_secret(client_id: str) -> Response:
    """A sensitive action: the new secret is on this response only, never in a URL or the session."""
    actor = console_actor()
    secret = web().services.admin.rotate_client_secret(actor, path_id(client_id))
    return show_secret(
        "client_secret.html", actor, client={"client_id": path_id(client_id)}, secret=secret, created=False
    )


# -- initial access tokens for dynamic registration --------------------------------------------------


@bp.route("/initial-tokens", methods=["GET"])
def initial_tokens() -> Response:
    actor = console_actor()
    try:
        tokens = web().services.admin.list_initial_tokens(actor, include_inactive=arg("all") == "1")
    except AdminInputError as error:
        if error.code != "unavailable":
            raise
        return show("initial_tokens.html", actor, tokens=None, error={"code": error.code, "detail": ""})
    return show("initial_tokens.html", actor, tokens=[describe_token(t) for t in tokens], form=TOKEN_FORM)


TOKEN_FORM = {"label": "", "days": "1", "max_uses": "1"}


@bp.route("/initial-tokens", methods=["POST"])
def issue_initial_token() -> Response:
    actor = console_actor()
    form = {"label": field("label"), "days": field("days", 8), "max_uses": field("max_uses", 8)}
    days = bounded_int(form["days"], 0, 0, 10_000)
    uses = bounded_int(form["max_uses"], 0, 0, 1_000_000)
    if not 1 <= days <= 30 or uses < 1:
        return refuse("initial_tokens.html", actor, "token_limits", tokens=[], form=form)
    try:
        token, value = web().services.admin.issue_initial_token(actor, form["label"], days * 86400, uses)
    except AdminInputError as error:
        return refuse_input("initial_tokens.html", actor, error, tokens=[], form=form)
    return show_secret("initial_token_issued.html", actor, token=describe_token(token), value=value)


@bp.route("/initial-tokens/revoke", methods=["POST"])
def revoke_initial_token() -> Response:
    actor = console_actor()
    web().services.admin.revoke_initial_token(actor, field("token_id", 128))
    return back_to("admin_console.clients.initial_tokens", "revoked")


def describe_token(token: Any) -> dict[str, Any]:
    return {
        "id": token.id,
        "label": token.label,
        "created_by": token.created_by,
        "created": when(token.created_at),
        "expires": when(token.expires_at),
        "uses": token.uses,
        "max_uses": token.max_uses,
        "revoked": when(token.revoked_at) if token.revoked_at else None,
    }


# -- the client form -------------------------------------------------------------------------------


class JwksUnreadable(ValueError):
    """The JWKS text area does not hold a JSON object."""


def has_secret(client: Client) -> bool:
    return client.token_endpoint_auth_method in ("client_secret_basic", "client_secret_post")


def form_page(form: dict[str, Any], client_id: str | None) -> dict[str, Any]:
    """What the form template needs: the values to show and the choices."""
    return {
        "form": form,
        "editing": client_id,
        "action": url_for("admin_console.clients.update", client_id=client_id)
        if client_id
        else url_for("admin_console.clients.create"),
        "grant_choices": GRANT_TYPES,
        "method_choices": AUTH_METHODS,
        "alg_choices": ID_TOKEN_ALGS,
        "format_choices": TOKEN_FORMATS,
        "levels": web().ladder.levels,
    }


def form_of(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "client_name": client.client_name,
        "redirect_uris": "\n".join(client.redirect_uris),
        "post_logout_redirect_uris": "\n".join(client.post_logout_redirect_uris),
        "backchannel_logout_uri": client.backchannel_logout_uri or "",
        "scope": " ".join(client.scope),
        "grant_types": list(client.grant_types),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "minimum_acr": client.minimum_acr or "",
        "access_token_format": client.access_token_format,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "first_party": client.first_party,
        "jwks": json.dumps(client.jwks, indent=2) if client.jwks else "",
    }


def submitted() -> dict[str, Any]:
    return {
        "client_id": field("client_id", 128),
        "client_name": field("client_name"),
        "redirect_uris": "\n".join(lines("redirect_uris")),
        "post_logout_redirect_uris": "\n".join(lines("post_logout_redirect_uris")),
        "backchannel_logout_uri": field("backchannel_logout_uri", 2048),
        "scope": field("scope", 1024),
        "grant_types": [g for g in request.form.getlist("grant_types")[:8] if g in GRANT_TYPES],
        "token_endpoint_auth_method": field("token_endpoint_auth_method", 64),
        "minimum_acr": field("minimum_acr", 128),
        "access_token_format": field("access_token_format", 16),
        "id_token_signed_response_alg": field("id_token_signed_response_alg", 16),
        "first_party": request.form.get("first_party") == "1",
        "jwks": field("jwks", MAX_TEXT),
    }


def metadata_of(form: dict[str, Any], client_id: str) -> dict[str, Any]:
    """RFC 7591 metadata from the form; the service validates it (and says what is wrong)."""
    metadata: dict[str, Any] = {
        "client_id": client_id,
        "client_name": form["client_name"],
        "redirect_uris": form["redirect_uris"].splitlines(),
        "post_logout_redirect_uris": form["post_logout_redirect_uris"].splitlines(),
        "scope": form["scope"],
        "grant_types": form["grant_types"],
        "token_endpoint_auth_method": form["token_endpoint_auth_method"],
        "access_token_format": form["access_token_format"],
        "id_token_signed_response_alg": form["id_token_signed_response_alg"],
        "first_party": form["first_party"],
    }
    if form["backchannel_logout_uri"]:
        metadata["backchannel_logout_uri"] = form["backchannel_logout_uri"]
    if form["minimum_acr"]:
        metadata["minimum_acr"] = form["minimum_acr"]
    if form["jwks"]:
        try:
            metadata["jwks"] = json.loads(form["jwks"])
        except ValueError:
            raise JwksUnreadable() from None
    return metadata
