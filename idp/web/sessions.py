"""The SSO session cookie: opaque, HttpOnly, SameSite=Lax, Secure when the issuer is https."""

from __future__ import annotations

from flask import Response, request

from idp.domain.models import SsoSession
from idp.web.context import SESSION_COOKIE, WebContext


def current_session(ctx: WebContext) -> SsoSession | None:
    return ctx.services.sso.find(request.cookies.get(SESSION_COOKIE))


def set_session_cookie(ctx: WebContext, response: Response, handle: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        handle,
        max_age=ctx.settings.session_ttl,
        httponly=True,
        samesite="Lax",
        secure=ctx.settings.secure_cookies,
        path="/",
    )


def clear_session_cookie(ctx: WebContext, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="Lax", secure=ctx.settings.secure_cookies
    )
