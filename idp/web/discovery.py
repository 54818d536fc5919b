"""Discovery document, JWKS and health checks: precomputed bytes from memory, conditional GET."""

from __future__ import annotations

from flask import Blueprint, Response, request

from idp.services.health import find_readiness_problems
from idp.web.context import web

bp = Blueprint("discovery", __name__)


def cached_json(body: bytes, etag: str, max_age: int) -> Response:
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers=headers)
    return Response(body, status=200, headers=headers, content_type="application/json")


@bp.route("/.well-known/openid-configuration", methods=["GET"])
def openid_configuration() -> Response:
    body, etag = web().discovery
    return cached_json(body, etag, 3600)


@bp.route("/jwks.json", methods=["GET"])
def jwks() -> Response:
    body, etag = web().services.keys.jwks()
    return cached_json(body, etag, 300)


@bp.route("/healthz", methods=["GET"])
def healthz() -> Response:
    """Liveness: the process answers (also the benchmark's floor)."""
    return Response(b"ok", content_type="text/plain")


@bp.route("/readyz", methods=["GET"])
def readyz() -> Response:
    """Readiness: the database and the ephemeral store answer."""
    problems = find_readiness_problems(web().services)
    if problems:
        return Response(("not ready: " + ", ".join(problems)).encode(), status=503, content_type="text/plain")
    return Response(b"ready", content_type="text/plain")
