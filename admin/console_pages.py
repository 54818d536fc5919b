"""What every console page shares: reading query and form input safely, paging links, rendering with
the actor's permissions, POST-redirect-GET with a notice, and times in the display timezone."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Response, g, redirect, render_template, request, url_for
from flask_babel import format_datetime

from idp.domain.admin import Actor
from idp.services.admin import AdminInputError, Page
from idp.web.context import web

MAX_FIELD = 256  # one-line form fields
MAX_TEXT = 8192  # text areas (lists of URIs, a JWKS)
MAX_QUERY = 128  # search boxes and filters
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 1_000_000


# -- input -----------------------------------------------------------------------------------------


def clean(value: str, max_length: int) -> str:
    """Cut to a sane length, without control characters (PostgreSQL refuses NUL in text)."""
    return "".join(c for c in value[:max_length] if c >= " " or c in "\t\n\r").strip()


def arg(name: str, max_length: int = MAX_QUERY) -> str:
    """A query-string value, cleaned (junk never reaches a service)."""
    return clean(request.args.get(name, ""), max_length)


def field(name: str, max_length: int = MAX_FIELD) -> str:
    return clean(request.form.get(name, ""), max_length)


def path_id(value: str, max_length: int = 128) -> str:
    """An identifier from the URL path (client_id, person id, entity id), cleaned."""
    return clean(value, max_length)


def lines(name: str) -> list[str]:
    """A text area of one value per line."""
    return [line.strip() for line in field(name, MAX_TEXT).splitlines() if line.strip()]


def bounded_int(text: str, default: int, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        return default
    return min(max(value, low), high)


def paging() -> tuple[int, int]:
    """offset and limit from the query string; anything unreadable falls back to the first page."""
    offset = bounded_int(arg("offset", 16), 0, 0, MAX_OFFSET)
    limit = bounded_int(arg("limit", 16), DEFAULT_LIMIT, 1, MAX_LIMIT)
    return offset, limit


def page_links(page: Page[Any]) -> dict[str, str | None]:
    """Links to the previous and next page, keeping the other query parameters (filters, language)."""
    kept = {k: v[:MAX_QUERY] for k, v in request.args.items() if k not in ("offset", "limit", "done")}

    def link(offset: int) -> str:
        query = urlencode({**kept, "offset": offset, "limit": page.limit})
        return f"{request.path}?{query}"

    return {
        "previous": link(max(0, page.offset - page.limit)) if page.offset > 0 else None,
        "next": link(page.offset + page.limit) if page.has_more else None,
    }


def local_day(text: str, *, end: bool = False) -> int | None:
    """A YYYY-MM-DD date in the display timezone as epoch milliseconds: its first moment, or with
    `end` the first moment of the next day (an exclusive bound). None if empty; ValueError if junk."""
    if not text:
        return None
    day = datetime.date.fromisoformat(text)
    if end:
        day += datetime.timedelta(days=1)
    zone = ZoneInfo(web().settings.display_timezone)
    moment = datetime.datetime.combine(day, datetime.time(), tzinfo=zone)
    return int(moment.timestamp() * 1000)


# -- output ----------------------------------------------------------------------------------------


def when(epoch_seconds: int | float | None) -> str:
    """A time as the account pages show it, in the display timezone (BABEL_DEFAULT_TIMEZONE)."""
    if epoch_seconds is None:
        return ""
    moment = datetime.datetime.fromtimestamp(epoch_seconds, tz=datetime.UTC)
    return format_datetime(moment, "yyyy-MM-dd HH:mm z")


def show(template: str, actor: Actor, *, status: int = 200, **context: Any) -> Response:
    """Render a console page: the actor's permissions decide which sections the navigation links."""
    done = arg("done", 32)
    context.setdefault("error", None)
    response = Response(
        render_template(f"admin/{template}", actor=actor, may=actor.may, done=done or None, **context)
    )
    response.status_code = status
    return response


def show_secret(template: str, actor: Actor, **context: Any) -> Response:
    """A page holding a secret shown once: never stored by the browser or a proxy."""
    response = show(template, actor, **context)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def refuse(template: str, actor: Actor, code: str, detail: str = "", **context: Any) -> Response:
    """Re-render a form with a message (status 400): the request changed nothing."""
    g.lang_next = request.form.get("back") or request.path
    return show(template, actor, status=400, error={"code": code, "detail": detail}, **context)


def refuse_input(template: str, actor: Actor, error: AdminInputError, **context: Any) -> Response:
    return refuse(template, actor, error.code, error.message, **context)


def back_to(endpoint: str, done: str, **values: Any) -> Response:
    """POST-redirect-GET to a page with a notice, keeping the page's language (hidden `ui_locales`)."""
    ui_locales = request.values.get("ui_locales", "")[:64]
    if ui_locales:
        values["ui_locales"] = ui_locales
    return redirect(url_for(endpoint, done=done, **values), code=303)  # type: ignore[return-value]
