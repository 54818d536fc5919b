"""The applicant's pages (Chinese, plain HTML forms, no JavaScript): apply, my cases, one case."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, session
from flask.typing import ResponseReturnValue

from adapters.cases.applicants import Applicant, applicant_of
from adapters.cases.cases import CaseService
from adapters.cases.lifecycle import ACTION_LABELS, STATUS_LABELS, InvalidCaseInput, Status
from adapters.cases.materials import CatalogueClient
from adapters.rp_kit import RelyingParty, current_user

CSRF_KEY = "cases.csrf"


def pages_blueprint(rp: RelyingParty, service: CaseService, catalogue: CatalogueClient) -> Blueprint:
    bp = Blueprint("pages", __name__)

    @bp.app_context_processor
    def page_context() -> dict[str, Any]:
        return {
            "user": current_user(),
            "csrf_token": csrf_token,
            "status_labels": {s.value: label for s, label in STATUS_LABELS.items()},
            "action_labels": ACTION_LABELS,
        }

    @bp.get("/")
    def index() -> ResponseReturnValue:
        return render_template("index.html")

    @bp.get("/apply/<code>")
    @rp.require_login
    def apply_form(code: str) -> ResponseReturnValue:
        applicant = signed_in_applicant()
        item = catalogue.fetch_item(code[:64])
        return render_template("apply.html", item=item, applicant=applicant)

    @bp.post("/apply/<code>")
    @rp.require_login
    def apply(code: str) -> ResponseReturnValue:
        check_csrf()
        applicant = signed_in_applicant()
        if request.form.get("consent") != "yes":
            raise InvalidCaseInput("consent", "请勾选同意本服务为办理本事项读取您的电子证照。")
        case = service.apply(applicant, code[:64], access_token(rp))
        return redirect(f"/cases/{case['id']}", 303)

    @bp.get("/cases")
    @rp.require_login
    def my_cases() -> ResponseReturnValue:
        applicant = signed_in_applicant()
        return render_template("cases.html", cases=service.cases_of(applicant), applicant=applicant)

    @bp.get("/cases/<case_id>")
    @rp.require_login
    def case_page(case_id: str) -> ResponseReturnValue:
        case = service.case_for(case_id, signed_in_applicant())
        return render_template("case.html", case=case, corrections_open=Status.CORRECTIONS_REQUESTED)

    @bp.post("/cases/<case_id>/rate")
    @rp.require_login
    def rate(case_id: str) -> ResponseReturnValue:
        check_csrf()
        service.rate(case_id, signed_in_applicant(), request.form.get("score"), request.form.get("comment"))
        return redirect(f"/cases/{case_id}", 303)

    @bp.post("/cases/<case_id>/resubmit")
    @rp.require_login
    def resubmit(case_id: str) -> ResponseReturnValue:
        check_csrf()
        service.resubmit(case_id, signed_in_applicant(), access_token(rp), request.form.get("note"))
        return redirect(f"/cases/{case_id}", 303)

    return bp


def signed_in_applicant() -> Applicant:
    return applicant_of(current_user() or {})


def access_token(rp: RelyingParty) -> str | None:
    """The applicant's access token from the login session: the subject of the token exchange."""
    data = rp.current_session() or {}
    token = data.get("access_token")
    return str(token) if token else None


def csrf_token() -> str:
    if CSRF_KEY not in session:
        session[CSRF_KEY] = secrets.token_urlsafe(32)
    return str(session[CSRF_KEY])


def check_csrf() -> None:
    expected = session.get(CSRF_KEY)
    given = request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(str(expected), given):
        abort(400, "表单已过期，请返回上一页刷新后重新提交。")
