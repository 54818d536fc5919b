"""The catalogue over HTTP: public pages and JSON reads, and writes behind the `catalogue:write` scope."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from adapters.catalogue.catalogue import Catalogue, Conflict, NotFound
from adapters.catalogue.payloads import (
    InvalidInput,
    parse_expected_version,
    parse_implementation,
    parse_item,
    parse_json_body,
    parse_search,
    parse_withdrawal,
)
from adapters.catalogue.vocabulary import KIND_LABELS, STATUS_LABELS, SUBTYPE_LABELS, is_national_code
from adapters.rp_kit import RelyingParty, current_token

WRITE_SCOPE = "catalogue:write"
PAGE_SIZE = 10


def json_error(status: int, error: str, description: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"error": error, "error_description": description}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def actor() -> str:
    """Who writes: the person (`sub`) or the service account (`client_id`) the bearer token names."""
    claims = current_token() or {}
    return str(claims.get("sub") or claims.get("client_id") or "unknown")[:255]


def api_blueprint(catalogue: Catalogue, rp: RelyingParty) -> Blueprint:
    api = Blueprint("api", __name__, url_prefix="/api")

    @api.errorhandler(InvalidInput)
    def invalid(exc: InvalidInput) -> Response:
        return json_error(400, "invalid_request", exc.message, exc.field or None)

    @api.errorhandler(NotFound)
    def not_found(exc: NotFound) -> Response:
        return json_error(404, "not_found", str(exc))

    @api.errorhandler(Conflict)
    def conflict(exc: Conflict) -> Response:
        return json_error(409, "conflict", str(exc))

    def checked_code(code: str) -> str:
        if not is_national_code(code):
            raise InvalidInput("code", "expected a national item code: 20 characters, digits and A-Z")
        return code

    @api.get("/items")
    def search_items() -> ResponseReturnValue:
        page = catalogue.search(parse_search(request.args))
        return {"items": page.items, "total": page.total, "offset": page.offset, "limit": page.limit}

    @api.get("/items/<code>")
    def read_item(code: str) -> ResponseReturnValue:
        item = catalogue.find(checked_code(code))
        if item is None:
            raise NotFound(f"no item with code {code}")
        return item

    @api.get("/items/<code>/implementations")
    def read_implementations(code: str) -> ResponseReturnValue:
        return {"implementations": catalogue.implementations(checked_code(code))}

    @api.post("/items")
    @rp.require_scope(WRITE_SCOPE)
    def create_item() -> ResponseReturnValue:
        draft = parse_item(parse_json_body(request.get_data()))
        item = catalogue.create(draft, actor=actor())
        return item, 201, {"Location": url_for("api.read_item", code=item["code"])}

    @api.put("/items/<code>")
    @rp.require_scope(WRITE_SCOPE)
    def replace_item(code: str) -> ResponseReturnValue:
        body = parse_json_body(request.get_data())
        draft = parse_item(body, path_code=checked_code(code))
        return catalogue.update(code, draft, actor=actor(), expected_version=parse_expected_version(body))

    @api.post("/items/<code>/withdraw")
    @rp.require_scope(WRITE_SCOPE)
    def withdraw_item(code: str) -> ResponseReturnValue:
        reason = parse_withdrawal(parse_json_body(request.get_data(), optional=True))
        return catalogue.withdraw(checked_code(code), reason=reason, actor=actor())

    @api.post("/items/<code>/implementations")
    @rp.require_scope(WRITE_SCOPE)
    def implement_item(code: str) -> ResponseReturnValue:
        draft = parse_implementation(parse_json_body(request.get_data()))
        return catalogue.implement(checked_code(code), draft, actor=actor()), 201

    return api


def pages_blueprint(catalogue: Catalogue) -> Blueprint:
    pages = Blueprint("pages", __name__)

    @pages.app_context_processor
    def labels() -> dict[str, Any]:
        return {"kind_labels": KIND_LABELS, "subtype_labels": SUBTYPE_LABELS, "status_labels": STATUS_LABELS}

    @pages.get("/")
    def index() -> ResponseReturnValue:
        args = request.args
        try:
            raw = args.get("page") or "1"
            number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 0
            if number < 1:
                raise InvalidInput("page", "页码无效")
            query = parse_search(
                {
                    "q": args.get("q", ""),
                    "kind": args.get("kind", ""),
                    "offset": str((number - 1) * PAGE_SIZE),
                    "limit": str(PAGE_SIZE),
                }
            )
        except InvalidInput as exc:
            return render_template("error.html", status=400, message=f"查询条件无效：{exc.message}"), 400
        page = catalogue.search(query)
        pages_total = max(1, math.ceil(page.total / PAGE_SIZE))
        return render_template(
            "index.html",
            page=page,
            query=query,
            number=number,
            pages_total=pages_total,
            link=lambda n: url_for("pages.index", q=query.text or None, kind=query.kind, page=n),
        )

    @pages.get("/items/<code>")
    def item_page(code: str) -> ResponseReturnValue:
        item = catalogue.find(code) if is_national_code(code) else None
        if item is None:
            abort(404)
        return render_template("item.html", item=item)

    return pages
