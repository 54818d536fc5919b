"""Console pages for the audit log (auditor only): filter, page through, export as JSON Lines or CSV.

Dates in the filter are days in the display timezone (settings.display_timezone): "from" is the first
moment of that day, "to" includes the whole of that day."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, stream_with_context, url_for

from admin.auth import console_actor
from admin.console_pages import arg, local_day, page_links, paging, refuse, show, when
from idp.services.audit import AuditFilter
from idp.web.context import web

bp = Blueprint("audit", __name__)

FILTERS = ("event", "actor", "subject", "client_id", "outcome", "from", "to")
OUTCOMES = ("success", "failure")


class FilterUnreadable(ValueError):
    """A date in the filter is not YYYY-MM-DD."""


def read_filter() -> tuple[dict[str, str], AuditFilter]:
    form = {name: arg(name) for name in FILTERS}
    try:
        since, until = local_day(form["from"]), local_day(form["to"], end=True)
    except ValueError:
        raise FilterUnreadable() from None
    where = AuditFilter(
        event=form["event"] or None,
        actor=form["actor"] or None,
        subject=form["subject"] or None,
        client_id=form["client_id"] or None,
        outcome=form["outcome"] or None,
        since=since,
        until=until,
    )
    return form, where


@bp.route("/audit", methods=["GET"])
def index() -> Response:
    actor = console_actor()
    try:
        form, where = read_filter()
    except FilterUnreadable:
        form = {name: arg(name) for name in FILTERS}
        return refuse("audit.html", actor, "bad_date", form=form, page=None, outcomes=OUTCOMES)
    offset, limit = paging()
    page = web().services.admin.search_audit(actor, where, offset, limit)
    filters: dict[str, Any] = {k: v for k, v in form.items() if v}
    return show(
        "audit.html",
        actor,
        form=form,
        page=page,
        events=[describe(e) for e in page.items],
        links=page_links(page),
        outcomes=OUTCOMES,
        exports={
            fmt: url_for("admin_console.audit.export", format=fmt, **filters) for fmt in ("jsonl", "csv")
        },
    )


@bp.route("/audit/export", methods=["GET"])
def export() -> Response:
    actor = console_actor()
    try:
        _, where = read_filter()
    except FilterUnreadable:
        form = {name: arg(name) for name in FILTERS}
        return refuse("audit.html", actor, "bad_date", form=form, page=None, outcomes=OUTCOMES)
    fmt = arg("format", 8)
    lines = web().services.admin.export_audit(actor, where, fmt)
    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    response = Response(stream_with_context(line + "\n" for line in lines), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit.{fmt}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def describe(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "when": when(event["at"] / 1000)}
