"""The administration console (server-rendered pages) and the admin JSON API (`/admin/api/v1`).

`install(app)` is named in IDP_EXTENSIONS (default) and called by `idp.app.create_app`; the provider
never imports this package. Both halves call `idp.services.admin.AdminService` only."""

from __future__ import annotations

from flask import Flask

from admin import api, auth, console
from admin.context import CONSOLE_CLIENT_ID, console_redirect_uri
from idp.web.context import web_of


def install(app: Flask) -> None:
    ctx = web_of(app)
    ctx.services.admin.ensure_console_client(
        CONSOLE_CLIENT_ID, console_redirect_uri(ctx.settings.issuer), ctx.ladder.levels[-1]
    )
    app.config.setdefault("JSON_PATH_PREFIXES", [])
    app.config["JSON_PATH_PREFIXES"].append("/admin/api/")
    auth.install_error_handlers(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(api.bp)
    app.extensions["csrf"].exempt(api.bp)  # bearer tokens, no cookies
