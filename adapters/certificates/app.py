"""`create_app(config)`: the e-certificate service, an OIDC client of the provider with its own database."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from adapters.certificates.api import api_blueprint
from adapters.certificates.database import Database
from adapters.certificates.licences import LicenceError
from adapters.certificates.pages import pages_blueprint
from adapters.certificates.sealing import KeySealer, load_kek
from adapters.certificates.settings import Settings
from adapters.certificates.signing import prepare_keys
from adapters.rp_kit import MemorySessionStore, RedisSessionStore, RelyingParty, SessionStore

log = logging.getLogger(__name__)
LOGIN_SCOPE = "openid profile entity"
CSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"


@dataclass(frozen=True)
class Certificates:
    """What the app holds on `app.extensions["certificates"]`."""

    settings: Settings
    db: Database
    rp: RelyingParty


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    config = dict(config or {})
    settings = Settings.from_config(config, os.environ)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="certificates_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
    )
    app.config.update({k: v for k, v in config.items() if not k.startswith("CERTS_")})
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    db = Database(settings.database_url, KeySealer(load_kek(settings.kek, settings.key_dir)))
    db.create_tables()
    with db.transaction() as session:
        sealed = prepare_keys(session)
    if sealed:
        log.info("sealed %d department private key(s) stored in plain form before sealing existed", sealed)
    rp = RelyingParty(
        app,
        issuer=settings.issuer,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        scope=LOGIN_SCOPE,
        base_url=settings.base_url,
        audience=settings.audience,
        post_logout_redirect_uri=f"{settings.base_url}/",
        session_store=session_store(settings),
    )
    app.extensions["certificates"] = Certificates(settings, db, rp)
    app.register_blueprint(api_blueprint(rp, db, settings.issuer_clients))
    app.register_blueprint(pages_blueprint(rp, db))
    register_error_handlers(app)
    app.after_request(add_security_headers)
    return app


def session_store(settings: Settings) -> SessionStore:
    if not settings.redis_url:
        return MemorySessionStore()
    import redis

    return RedisSessionStore(redis.Redis.from_url(settings.redis_url), prefix="certificates:")


def wants_json() -> bool:
    return request.path.startswith(("/api/", "/.well-known/"))


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(LicenceError)
    def licence_error(exc: LicenceError) -> Response:
        return json_error(exc.status, exc.error, exc.description)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if wants_json():
            return json_error(status, (exc.name or "error").lower().replace(" ", "_"), exc.description or "")
        return render_template("error.html", status=status, message=exc.description), status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("unexpected error on %s %s", request.method, request.path)
        if wants_json():
            return json_error(500, "server_error", "the service failed; try again later")
        return render_template("error.html", status=500, message="服务暂时不可用，请稍后再试。"), 500


def json_error(status: int, error: str, description: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Content-Security-Policy", CSP)
    return response
