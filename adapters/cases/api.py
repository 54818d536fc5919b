"""The JSON API: applicants apply and follow their cases; department officers (`cases:handle`) act on them."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from adapters.cases.applicants import Applicant, NotPermitted, applicant_of
from adapters.cases.cases import APPLICANT_ACTIONS, STAFF_ACTIONS, CaseNotFound, CaseService
from adapters.cases.lifecycle import InvalidCaseInput, optional_text
from adapters.rp_kit import BearerError, RelyingParty

log = logging.getLogger(__name__)
HANDLE_SCOPE = "cases:handle"
MAX_CODE = 64


def api_blueprint(rp: RelyingParty, service: CaseService) -> Blueprint:
    bp = Blueprint("api", __name__, url_prefix="/api")

    @bp.post("/cases")
    def apply() -> ResponseReturnValue:
        claims = rp.verify_bearer()
        applicant = person_applicant(claims)
        body = json_body()
        code = body.get("item_code")
        if not isinstance(code, str) or not code.strip() or len(code) > MAX_CODE:
            raise InvalidCaseInput("item_code", "the catalogue code of the item to apply for")
        case = service.apply(applicant, code.strip(), bearer_value())
        log.info("case %s submitted for %s by %s", case["id"], case["item"]["code"], applicant.actor)
        return case, 201, {"Location": f"/api/cases/{case['id']}"}

    @bp.get("/cases")
    def list_cases() -> ResponseReturnValue:
        claims = rp.verify_bearer()
        if is_staff(claims):
            return {"cases": service.all_cases(request.args.get("status") or None)}
        return {"cases": service.cases_of(person_applicant(claims))}

    @bp.get("/cases/<case_id>")
    def read_case(case_id: str) -> ResponseReturnValue:
        claims = rp.verify_bearer()
        if is_staff(claims):
            return service.case(case_id)
        return service.case_for(case_id, person_applicant(claims))

    @bp.post("/cases/<case_id>/<action>")
    def act(case_id: str, action: str) -> ResponseReturnValue:
        claims = rp.verify_bearer()
        body = json_body()
        if action in STAFF_ACTIONS:
            if not is_staff(claims):
                raise BearerError(
                    403, "insufficient_scope", f"{action} needs scope {HANDLE_SCOPE}", scope=HANDLE_SCOPE
                )
            actor = staff_actor(claims, body.get("officer"))
            case = service.act(case_id, action, body, actor)
            log.info("case %s: %s by %s", case_id, action, actor)
            return case
        if action in APPLICANT_ACTIONS:
            applicant = person_applicant(claims)
            if action == "rate":
                return service.rate(case_id, applicant, body.get("score"), body.get("comment"))
            return service.resubmit(case_id, applicant, bearer_value(), body.get("note"))
        raise CaseNotFound(action)

    return bp


def is_staff(claims: dict[str, Any]) -> bool:
    return HANDLE_SCOPE in str(claims.get("scope", "")).split()


def person_applicant(claims: dict[str, Any]) -> Applicant:
    """Only a person (for themselves or an entity) applies: never a service account's token."""
    if claims.get("client_id") and claims.get("sub") == claims.get("client_id"):
        raise NotPermitted(
            "not_a_person", "a service account does not apply for cases", "服务账号不能申请办件。"
        )
    return applicant_of(claims)


def staff_actor(claims: dict[str, Any], officer: Any) -> str:
    """The department's account, and the officer who acted if the back office names them."""
    client = str(claims.get("client_id") or claims.get("sub"))
    sub = str(claims.get("sub") or client)
    name = optional_text(officer, "officer", 100)
    who = client if sub == client else f"{client}:{sub}"
    return f"staff:{who}" + (f" ({name})" if name else "")


def bearer_value() -> str:
    return request.headers.get("Authorization", "").partition(" ")[2].strip()


def json_body() -> dict[str, Any]:
    """A JSON object; an empty body counts as {} (actions whose fields are all optional)."""
    if not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidCaseInput("body", "send a JSON object")
    return body
