"""Error answers: OAuth JSON for API endpoints, a readable page for people; never a stack trace."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, render_template, request


def oauth_error(
    error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_page(status: int, error: str, description: str) -> Response:
    response = Response(render_template("error.html", status=status, error=error, description=description))
    response.status_code = status
    return response


API_PATHS = (
    "/token",
    "/introspect",
    "/revoke",
    "/userinfo",
    "/jwks.json",
    "/.well-known/",
    "/connect/register",
)


def wants_json() -> bool:
    # Extensions add their own JSON paths (the admin API) to app.config["JSON_PATH_PREFIXES"].
    return request.path.startswith(API_PATHS) or request.path.startswith(
        tuple(current_app.config.get("JSON_PATH_PREFIXES", ()))
    )


def error_for(status: int, error: str, description: str) -> Any:
    if wants_json():
        return oauth_error(error, description, status)
    return error_page(status, error, description)
