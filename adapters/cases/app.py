"""`create_app(config)`: the case service (办件), an OIDC client of the provider with its own database."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from adapters.cases.api import api_blueprint
from adapters.cases.applicants import NotPermitted
from adapters.cases.cases import CaseNotFound, CaseService, ConcurrentUpdate
from adapters.cases.database import Database
from adapters.cases.lifecycle import InvalidCaseInput, InvalidTransition
from adapters.cases.materials import CatalogueClient, CertificateClient, ItemNotFound, UpstreamUnavailable
from adapters.cases.pages import pages_blueprint
from adapters.cases.settings import Settings
from adapters.rp_kit import BearerError, MemorySessionStore, RedisSessionStore, RelyingParty, SessionStore

log = logging.getLogger(__name__)
LOGIN_SCOPE = "openid profile entity certificates:read"
CSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Cases:
    """What the app holds on `app.extensions["cases"]`."""

    settings: Settings
    db: Database
    rp: RelyingParty
    service: CaseService


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    config = dict(config or {})
    settings = Settings.from_config(config, os.environ)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="cases_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    app.config.update({k: v for k, v in config.items() if not k.startswith("CASES_")})
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    db = Database(settings.database_url)
    db.create_tables()
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
        timeout=settings.http_timeout,
    )
    catalogue = CatalogueClient(settings.catalogue_url, settings.http_timeout)
    certificates = CertificateClient(
        rp, settings.certificates_url, settings.certificates_client_id, settings.http_timeout
    )
    service = CaseService(db, catalogue, certificates)
    app.extensions["cases"] = Cases(settings, db, rp, service)
    app.register_blueprint(api_blueprint(rp, service))
    app.register_blueprint(pages_blueprint(rp, service, catalogue))
    register_error_handlers(app)
    app.after_request(add_security_headers)
    return app


def session_store(settings: Settings) -> SessionStore:
    if not settings.redis_url:
        return MemorySessionStore()
    import redis

    return RedisSessionStore(redis.Redis.from_url(settings.redis_url), prefix="cases:")


def wants_json() -> bool:
    return request.path.startswith("/api/")


def refused(status: int, error: str, description: str, label: str) -> Any:
    """JSON under /api/, a Chinese page elsewhere."""
    if wants_json():
        return json_error(status, error, description)
    return render_template("error.html", status=status, message=label), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(BearerError)
    def bearer_error(exc: BearerError) -> Response:
        return exc.response()

    @app.errorhandler(InvalidCaseInput)
    def invalid_input(exc: InvalidCaseInput) -> Any:
        if wants_json():
            return json_error(400, "invalid_request", exc.message, field=exc.field)
        return render_template("error.html", status=400, message=exc.message), 400

    @app.errorhandler(InvalidTransition)
    def invalid_transition(exc: InvalidTransition) -> Any:
        return refused(409, "invalid_transition", str(exc), exc.label)

    @app.errorhandler(ConcurrentUpdate)
    def concurrent(exc: ConcurrentUpdate) -> Any:
        return refused(
            409, "conflict", "the case changed meanwhile; read it again", "办件已被他人更新，请刷新后重试。"
        )

    @app.errorhandler(CaseNotFound)
    def case_not_found(exc: CaseNotFound) -> Any:
        return refused(404, "not_found", "no such case", "未找到该办件。")

    @app.errorhandler(ItemNotFound)
    def item_not_found(exc: ItemNotFound) -> Any:
        return refused(
            404,
            "item_not_found",
            f"the catalogue has no active item {exc}",
            "事项目录中没有该事项，或该事项已取消。",
        )

    @app.errorhandler(NotPermitted)
    def not_permitted(exc: NotPermitted) -> Any:
        return refused(403, exc.error, exc.description, exc.label)

    @app.errorhandler(UpstreamUnavailable)
    def upstream(exc: UpstreamUnavailable) -> Any:
        log.warning("upstream failure: %s", exc)
        return refused(502, exc.error, str(exc), exc.label)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        error = (exc.name or "error").lower().replace(" ", "_")
        message = {404: "未找到该页面。", 405: "不支持该请求方法。", 413: "请求内容过大。"}.get(
            status, exc.description or exc.name
        )
        return refused(status, error, exc.description or "", message)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return refused(
            500, "server_error", "the service failed; try again later", "服务暂时不可用，请稍后再试。"
        )


def json_error(status: int, error: str, description: str, **extra: str) -> Response:
    response = jsonify({"error": error, "error_description": description, **extra})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Content-Security-Policy", CSP)
    return response
