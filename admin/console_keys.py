"""Console pages for signing keys (super_admin): their states, rotation (per algorithm or all) and
retirement; both are sensitive actions that need an authentication less than 15 minutes old."""

from __future__ import annotations

from flask import Blueprint, Response

from admin.auth import console_actor
from admin.console_pages import back_to, field, refuse, refuse_input, show, when
from idp.services.admin import AdminInputError
from idp.services.signing_keys import SUPPORTED_ALGS
from idp.web.context import web

bp = Blueprint("keys", __name__)


@bp.route("/keys", methods=["GET"])
def index() -> Response:
    actor = console_actor()
    return show("keys.html", actor, keys=describe(web().services.admin.list_keys(actor)), algs=SUPPORTED_ALGS)


@bp.route("/keys/rotate", methods=["POST"])
def rotate() -> Response:
    actor = console_actor()
    alg = field("alg", 16)
    if alg and alg not in SUPPORTED_ALGS:
        return refuse("keys.html", actor, "unknown_alg", keys=[], algs=SUPPORTED_ALGS)
    web().services.admin.rotate_keys(actor, alg or None)
    return back_to("admin_console.keys.index", "rotated")


@bp.route("/keys/retire", methods=["POST"])
def retire() -> Response:
    actor = console_actor()
    try:
        web().services.admin.retire_key(actor, field("kid", 128))
    except AdminInputError as error:
        return refuse_input("keys.html", actor, error, keys=[], algs=SUPPORTED_ALGS)
    return back_to("admin_console.keys.index", "retired")


def describe(keys: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return [
        {
            **key,
            "created": when(key["created_at"]),
            "activates": when(key["activates_at"]),
            "retired": when(key["retired_at"]),
            "expires": when(key["expires_at"]),
        }
        for key in keys
    ]
