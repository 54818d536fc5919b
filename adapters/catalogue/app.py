"""The composition root: `create_app(config)` builds the catalogue's engine, services, kit and routes."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, render_template, request
from sqlalchemy import Engine, create_engine, event
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from adapters.catalogue.catalogue import Catalogue, Conflict
from adapters.catalogue.models import Base
from adapters.catalogue.payloads import parse_implementation, parse_item
from adapters.catalogue.web import api_blueprint, json_error, pages_blueprint
from adapters.rp_kit import MemorySessionStore, RedisSessionStore, RelyingParty, SessionStore

DEFAULT_DATABASE = Path(__file__).resolve().parents[2] / "var" / "catalogue.sqlite3"
DEMO_ITEMS = Path(__file__).with_name("demo_items.json")
MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class CatalogueSettings:
    """Read once at start: each key from `config`, else the environment variable of the same name."""

    database_url: str
    issuer: str
    client_id: str
    client_secret: str | None
    base_url: str
    audience: str | None
    redis_url: str | None
    secret_key: str

    @classmethod
    def load(cls, config: Mapping[str, Any], environ: Mapping[str, str]) -> CatalogueSettings:
        def get(name: str, default: str | None = None) -> str | None:
            value = config.get(name, environ.get(name))
            return str(value) if value not in (None, "") else default

        return cls(
            database_url=get("CATALOGUE_DATABASE_URL") or f"sqlite:///{DEFAULT_DATABASE}",
            issuer=get("CATALOGUE_ISSUER") or "http://127.0.0.1:5000",
            client_id=get("CATALOGUE_CLIENT_ID") or "catalogue",
            client_secret=get("CATALOGUE_CLIENT_SECRET"),
            base_url=get("CATALOGUE_BASE_URL") or "http://127.0.0.1:8200",
            audience=get("CATALOGUE_AUDIENCE"),  # RFC 9068 aud the API answers to; the client_id by default
            redis_url=get("CATALOGUE_REDIS_URL"),
            secret_key=get("CATALOGUE_SECRET_KEY") or secrets.token_urlsafe(32),
        )


def create_app(config: dict[str, Any] | None = None) -> Flask:
    config = dict(config or {})
    settings = CatalogueSettings.load(config, os.environ)
    app = Flask(__name__)
    app.config.update({k: v for k, v in config.items() if not k.startswith("CATALOGUE_")})
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="catalogue_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_AS_ASCII=False,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    engine = open_database(settings.database_url)
    catalogue = Catalogue(engine)
    rp = RelyingParty(
        app,
        issuer=settings.issuer,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        base_url=settings.base_url,
        audience=settings.audience,
        post_logout_redirect_uri=f"{settings.base_url}/",
        session_store=session_store(settings),
    )
    app.extensions["catalogue"] = catalogue
    app.register_blueprint(pages_blueprint(catalogue))
    app.register_blueprint(api_blueprint(catalogue, rp))
    install_error_pages(app)
    app.after_request(add_security_headers)
    return app


def open_database(url: str) -> Engine:
    """The engine, with the tables created; SQLite files get their directory and foreign keys."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def enable_foreign_keys(connection: Any, _record: Any) -> None:
            connection.execute("PRAGMA foreign_keys=ON")

    Base.metadata.create_all(engine)
    return engine


def session_store(settings: CatalogueSettings) -> SessionStore:
    if not settings.redis_url:
        return MemorySessionStore()
    import redis

    return RedisSessionStore(redis.Redis.from_url(settings.redis_url), prefix="catalogue:")


def install_error_pages(app: Flask) -> None:
    """JSON under /api, a Chinese page elsewhere; a bug shows a plain 500, never a stack trace."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if request.path.startswith("/api/"):
            error = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
                status, "invalid_request" if status < 500 else "server_error"
            )
            return json_error(status, error, exc.description or exc.name)
        message = {404: "未找到该页面或事项。", 405: "不支持该请求方法。"}.get(status, exc.name)
        return render_template("error.html", status=status, message=message), status

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        app.logger.exception("unexpected error")
        if request.path.startswith("/api/"):
            return json_error(500, "server_error", "an unexpected error occurred")
        return render_template("error.html", status=500, message="系统内部错误，请稍后再试。"), 500


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def seed(app: Flask, data: Mapping[str, Any]) -> int:
    """Load `{"items": [{...item, "implementations": [...]}]}`, checked as the API checks it; items whose
    code exists are left as they are. Returns how many items were created. Raises InvalidInput."""
    catalogue: Catalogue = app.extensions["catalogue"]
    created = 0
    for entry in data.get("items", []):
        fields = {k: v for k, v in entry.items() if k != "implementations"}
        draft = parse_item(fields)
        try:
            catalogue.create(draft, actor="seed")
        except Conflict:
            continue
        created += 1
        for implementation in entry.get("implementations", []):
            catalogue.implement(draft.code, parse_implementation(implementation), actor="seed")
    return created


def load_demo_items() -> dict[str, Any]:
    return dict(json.loads(DEMO_ITEMS.read_text(encoding="utf-8")))
