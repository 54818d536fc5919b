"""Security headers on every response and error handlers that never leak a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from idp.web.responses import error_for

log = logging.getLogger(__name__)

CSP = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'"


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class SessionFromCookieOnly(SecureCookieSessionInterface):
    """Flask's signed-cookie session (here it holds only the CSRF token), opened only when its cookie
    came. A request without it (API calls, health checks) gets an empty session at once: Flask would
    first build a signing serializer, ~10% of a /healthz request (profile, 2026-12-03)."""

    def open_session(self, app: Flask, request: Any) -> SecureCookieSession | None:
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def install_security(app: Flask) -> None:
    app.session_interface = SessionFromCookieOnly()
    app.after_request(add_security_headers)

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> Response:
        return error_for(
            400, "invalid_request", "The form expired or was not sent by this site. Please try again."
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
            status, "invalid_request"
        )
        response = error_for(status, code, error.description or "")
        for name, value in error.get_headers():  # e.g. Allow on 405 (RFC 9110 §15.5.6)
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        return error_for(500, "server_error", "An unexpected error occurred.")
