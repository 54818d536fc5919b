"""The case service (办件): the life cycle as pure unit tests, then the app over real HTTP against the real
catalogue and certificate apps and a fake provider that also does token exchange.

Why real apps in threads rather than HTTP stubs: the case service's whole job is the conversation with
the other two (item JSON, licence listing with an exchanged token, verification), so the tests run that
conversation for real; only the provider is faked, since it is tested on its own in tests/protocol/."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from kit_platform import FakeProvider
from werkzeug.serving import make_server

from adapters.cases import create_app
from adapters.cases.lifecycle import (
    CHINA,
    Case,
    InvalidCaseInput,
    InvalidTransition,
    Status,
)
from adapters.cases.working_days import add_working_days, working_days_between
from adapters.rp_kit.relying_party import SESSION_KEY

CASES = "case-service"
CERTS = "e-certificates"
MARKET = "market-dept"  # the department that issues business licences
OFFICERS = "market-officers"  # the department's back office, a service account with cases:handle
ACME = "91350100MA2XY80011"  # GB 32100-2015 check character verified in test_certificates.py
LI = "person-li"
ITEM = "01000010000000990000"
PLAIN_ITEM = "01000010000000980000"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
MONDAY = datetime(2025, 3, 3, 10, 0, tzinfo=CHINA)


# -- working days -------------------------------------------------------------------------------------


def test_working_days_skip_weekends() -> None:
    friday = date(2025, 3, 7)
    assert add_working_days(friday, 1) == date(2025, 3, 10)
    assert add_working_days(MONDAY.date(), 5) == date(2025, 3, 10)
    assert add_working_days(friday, 0) == friday
    assert working_days_between(friday, date(2025, 3, 11)) == 2  # Fri, Mon
    assert working_days_between(date(2025, 3, 8), date(2025, 3, 10)) == 0


# -- the life cycle -----------------------------------------------------------------------------------


def at(days: float = 0) -> datetime:
    return MONDAY + timedelta(days=days)


def submitted(missing: tuple[str, ...] = (), limit: int = 5) -> Case:
    return Case.submit(limit_days=limit, missing=missing, actor="applicant:li", at=at())[0]


def accepted() -> Case:
    return submitted().accept(actor="staff", at=at())[0]


def reviewed() -> Case:
    return accepted().review(actor="staff", at=at(1))[0]


def decided(outcome: str = "approved") -> Case:
    return reviewed().decide(outcome, "符合条件", actor="staff", at=at(2))[0]


def delivered() -> Case:
    return decided().deliver(actor="staff", at=at(3))[0]


def test_the_whole_way_to_delivery_and_rating() -> None:
    case, event = Case.submit(limit_days=5, missing=(), actor="applicant:li", at=at())
    assert case.status is Status.SUBMITTED and event.action == "submit"
    case, event = case.accept(actor="staff", at=at())
    assert case.accepted_on == MONDAY.date() and case.deadline == date(2025, 3, 10)
    assert (event.from_status, event.to_status) == (Status.SUBMITTED, Status.ACCEPTED)
    case, _ = case.review(actor="staff", at=at(1), reason="材料真实有效")
    case, event = case.decide("approved", "", actor="staff", at=at(2))
    assert case.outcome == "approved" and event.details == {"outcome": "approved"}
    case, _ = case.deliver(actor="staff", at=at(3))
    assert case.status is Status.DELIVERED and case.may_rate
    case, event = case.rate(5, actor="applicant:li", at=at(4), comment="很快")
    assert case.rating == 5 and not case.may_rate and event.reason == "很快"


def test_a_refusal_needs_reasons_and_is_delivered_too() -> None:
    with pytest.raises(InvalidCaseInput):
        reviewed().decide("refused", "  ", actor="staff", at=at(2))
    with pytest.raises(InvalidCaseInput):
        reviewed().decide("maybe", "x", actor="staff", at=at(2))
    case, event = reviewed().decide("refused", "经营场所不符合要求", actor="staff", at=at(2))
    assert case.outcome == "refused" and event.reason == "经营场所不符合要求"
    assert case.deliver(actor="staff", at=at(3))[0].status is Status.DELIVERED


def test_corrections_are_notified_all_at_once_then_resubmitted_and_accepted() -> None:
    case = submitted(missing=("营业执照：未查到",))
    with pytest.raises(InvalidTransition, match="missing"):
        case.accept(actor="staff", at=at())
    case, event = case.request_corrections(["申请书未签字", "申请书未签字"], actor="staff", at=at())
    assert case.status is Status.CORRECTIONS_REQUESTED
    assert case.corrections == (
        "营业执照：未查到",
        "申请书未签字",
    )  # the missing certificate joins the notice
    assert event.details["items"] == ["营业执照：未查到", "申请书未签字"]
    case, _ = case.resubmit(missing=(), actor="applicant:li", at=at(1), note="已补正")
    assert case.status is Status.RESUBMITTED
    with pytest.raises(InvalidTransition, match="once"):  # one notice: never a second round
        case.request_corrections(["又发现一处"], actor="staff", at=at(1))
    assert case.accept(actor="staff", at=at(1))[0].status is Status.ACCEPTED
    assert case.reject("仍不符合条件", actor="staff", at=at(1))[0].status is Status.REJECTED


@pytest.mark.parametrize("items", [None, [], [""], ["ok", 3], "申请书", ["x" * 201]])
def test_a_correction_notice_lists_real_items(items: Any) -> None:
    with pytest.raises(InvalidCaseInput):
        submitted().request_corrections(items, actor="staff", at=at())


def test_rejection_from_pre_review_needs_reasons() -> None:
    with pytest.raises(InvalidCaseInput):
        submitted().reject("", actor="staff", at=at())
    with pytest.raises(InvalidCaseInput):
        submitted().reject("bad\x00", actor="staff", at=at())
    case, event = submitted().reject("不属于本部门职权范围", actor="staff", at=at())
    assert case.status is Status.REJECTED and event.reason == "不属于本部门职权范围" and case.may_rate


def test_suspension_moves_the_deadline_by_the_working_days_stopped() -> None:
    case = accepted()  # deadline Monday 10 March
    case, _ = case.suspend("等待现场核查", actor="staff", at=at(1))  # Tuesday
    assert case.status is Status.SUSPENDED and case.suspended_from is Status.ACCEPTED
    with pytest.raises(InvalidTransition):
        case.review(actor="staff", at=at(2))
    case, event = case.resume("核查完成", actor="staff", at=at(8))  # the next Tuesday: 5 working days
    assert case.status is Status.ACCEPTED and event.details["suspended_working_days"] == 5
    assert case.deadline == date(2025, 3, 17)
    with pytest.raises(InvalidCaseInput):
        accepted().suspend("", actor="staff", at=at())
    with pytest.raises(InvalidCaseInput):
        accepted().suspend("x", actor="staff", at=at())[0].resume(None, actor="staff", at=at(1))


def test_postponement_once_with_a_reason_before_the_decision() -> None:
    case, event = reviewed().postpone(3, "需专家论证", actor="staff", at=at(1))
    assert case.deadline == date(2025, 3, 13) and case.postponed_days == 3 and event.details["days"] == 3
    with pytest.raises(InvalidTransition, match="once"):
        case.postpone(1, "again", actor="staff", at=at(2))
    for days in (0, 31, "3", True, None):
        with pytest.raises(InvalidCaseInput):
            accepted().postpone(days, "x", actor="staff", at=at())
    with pytest.raises(InvalidCaseInput):
        accepted().postpone(2, "", actor="staff", at=at())
    with pytest.raises(InvalidTransition):
        decided().postpone(2, "太晚了", actor="staff", at=at(3))


def test_rating_once_and_only_at_the_end() -> None:
    for case in (submitted(), accepted(), decided()):
        with pytest.raises(InvalidTransition):
            case.rate(5, actor="applicant:li", at=at(5))
    for score in (0, 6, "5", 4.5, True):
        with pytest.raises(InvalidCaseInput):
            delivered().rate(score, actor="applicant:li", at=at(5))
    rated = delivered().rate(1, actor="applicant:li", at=at(5))[0]
    with pytest.raises(InvalidTransition, match="already rated"):
        rated.rate(5, actor="applicant:li", at=at(6))


def every_state() -> dict[Status, Case]:
    corrections = submitted(missing=("x",)).request_corrections([], actor="s", at=at())[0]
    return {
        Status.SUBMITTED: submitted(),
        Status.CORRECTIONS_REQUESTED: corrections,
        Status.RESUBMITTED: corrections.resubmit(missing=(), actor="a", at=at())[0],
        Status.ACCEPTED: accepted(),
        Status.REVIEWED: reviewed(),
        Status.SUSPENDED: accepted().suspend("x", actor="s", at=at())[0],
        Status.DECIDED: decided(),
        Status.DELIVERED: delivered(),
        Status.REJECTED: submitted().reject("x", actor="s", at=at())[0],
    }


ACTIONS = {  # every action, called with valid arguments
    "request_corrections": lambda c: c.request_corrections(["申请书未签字"], actor="s", at=at(1)),
    "resubmit": lambda c: c.resubmit(missing=(), actor="a", at=at(1)),
    "accept": lambda c: c.accept(actor="s", at=at(1)),
    "reject": lambda c: c.reject("理由", actor="s", at=at(1)),
    "review": lambda c: c.review(actor="s", at=at(1)),
    "decide": lambda c: c.decide("approved", "", actor="s", at=at(1)),
    "deliver": lambda c: c.deliver(actor="s", at=at(1)),
    "suspend": lambda c: c.suspend("理由", actor="s", at=at(1)),
    "resume": lambda c: c.resume("理由", actor="s", at=at(1)),
    "postpone": lambda c: c.postpone(2, "理由", actor="s", at=at(1)),
    "rate": lambda c: c.rate(4, actor="a", at=at(1)),
}
ALLOWED = {
    Status.SUBMITTED: {"request_corrections", "accept", "reject"},
    Status.CORRECTIONS_REQUESTED: {"resubmit"},
    Status.RESUBMITTED: {"accept", "reject"},  # one correction notice per case, never a second round
    Status.ACCEPTED: {"review", "suspend", "postpone"},
    Status.REVIEWED: {"decide", "suspend", "postpone"},
    Status.SUSPENDED: {"resume"},
    Status.DECIDED: {"deliver"},
    Status.DELIVERED: {"rate"},
    Status.REJECTED: {"rate"},
}


@pytest.mark.parametrize("status", list(Status))
def test_every_transition_is_allowed_or_refused_as_the_table_says(status: Status) -> None:
    case = every_state()[status]
    for action, call in ACTIONS.items():
        if action in ALLOWED[status]:
            new, event = call(case)
            assert event.action == action and event.from_status is status and event.to_status is new.status
        else:
            with pytest.raises(InvalidTransition) as refused:
                call(case)
            assert refused.value.status is status and "不能" in refused.value.label


# -- the app, against the real catalogue and certificate services -------------------------------------


class ExchangingProvider(FakeProvider):
    """The kit's fake provider plus RFC 8693 token exchange: trusts its own subject tokens, issues one
    for the audience with `act` naming the client and the subject's `entity` claim, as the real one."""

    exchanges: list[dict[str, Any]]
    audiences = (CERTS,)

    def app(self) -> Flask:
        app = super().app()
        plain = app.view_functions["token"]

        def token() -> Any:
            form = request.form
            if form.get("grant_type") != EXCHANGE:
                return plain()
            self.exchanges.append(dict(form))
            try:
                subject = jwt.decode(form["subject_token"], KeySet(self.published)).claims
            except (JoseError, ValueError, KeyError):
                return jsonify(error="invalid_grant"), 400
            if form.get("audience") not in self.audiences:
                return jsonify(error="invalid_target"), 400
            scope = form.get("scope", "")
            if not set(scope.split()) <= set(str(subject.get("scope", "")).split()):
                return jsonify(error="invalid_scope"), 400
            claims = self.claims(sub=subject["sub"], aud=form["audience"], client_id=CASES, scope=scope)
            claims["act"] = {"sub": CASES}
            if "entity" in subject:
                claims["entity"] = subject["entity"]
            issued = self.sign(claims, typ="at+jwt")
            return {
                "access_token": issued,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": scope,
            }

        app.view_functions["token"] = token
        return app


def serve(app: Flask) -> tuple[str, Any]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


@pytest.fixture
def provider(signing_keys: dict[str, Any]) -> Iterator[ExchangingProvider]:
    fake = ExchangingProvider(published=[signing_keys["rsa"]])
    fake.exchanges = []
    fake.url, server = serve(fake.app())
    yield fake
    server.shutdown()


def new_item(code: str, materials: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "code": code,
        "name": "药品零售企业许可" if code == ITEM else "公共场所卫生许可",
        "kind": "administrative_power",
        "subtype": "licensing",
        "department": "市场监督管理局",
        "acceptance_conditions": "具有依法经过资格认定的药学技术人员。",
        "materials": materials,
        "steps": [{"name": "受理"}, {"name": "审查"}, {"name": "决定"}],
        "statutory_limit_days": 15,
        "committed_limit_days": 5,
        "fees": "free",
    }


@pytest.fixture
def catalogue_url(tmp_path: Any, provider: ExchangingProvider) -> Iterator[str]:
    from adapters.catalogue import create_app as catalogue_app
    from adapters.catalogue import seed

    app = catalogue_app(
        {
            "CATALOGUE_DATABASE_URL": f"sqlite:///{tmp_path / 'catalogue.sqlite3'}",
            "CATALOGUE_ISSUER": provider.url,
        }
    )
    licence = {"name": "营业执照", "required": True, "licence_type": "business_licence"}
    form = {"name": "申请书", "required": True}
    seed(app, {"items": [new_item(ITEM, [form, licence]), new_item(PLAIN_ITEM, [form])]})
    url, server = serve(app)
    yield url
    server.shutdown()


@pytest.fixture
def certificates(tmp_path: Any, provider: ExchangingProvider) -> Iterator[Any]:
    from adapters.certificates import create_app as certificates_app
    from adapters.certificates import seed

    app = certificates_app(
        {
            "CERTS_DATABASE_URL": f"sqlite:///{tmp_path / 'certificates.sqlite3'}",
            "CERTS_ISSUER": provider.url,
            "CERTS_CLIENT_ID": CERTS,
            "CERTS_ISSUER_CLIENTS": f"{MARKET}=SAMR-FZ",
            "CERTS_KEY_DIR": str(tmp_path / "certificates-keys"),
        }
    )
    seed(app, {"issuers": [{"code": "SAMR-FZ", "name": "福州市市场监督管理局"}]})
    app.url, server = serve(app)  # type: ignore[attr-defined]
    yield app
    server.shutdown()


def issue_business_licence(certificates: Any, provider: FakeProvider, number: str = "350100000012345") -> str:
    headers = bearer(provider, MARKET, "certificates:issue", aud=CERTS, client_id=MARKET)
    body = {
        "licence_type": "business_licence",
        "number": number,
        "holder_type": "entity",
        "holder_id": ACME,
        "holder_name": "福州某某科技有限公司",
        "valid_from": "2024-01-01",
        "valid_until": None,
    }
    response = certificates.test_client().post("/api/licences", json=body, headers=headers)
    assert response.status_code == 201, response.json
    return str(response.json["id"])


@pytest.fixture
def app(tmp_path: Any, provider: ExchangingProvider, catalogue_url: str, certificates: Any) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "CASES_DATABASE_URL": f"sqlite:///{tmp_path / 'cases.sqlite3'}",
            "CASES_ISSUER": provider.url,
            "CASES_CLIENT_ID": CASES,
            "CASES_CLIENT_SECRET": "cases-secret-0123456789-0123456789-0123",
            "CASES_CATALOGUE_URL": catalogue_url,
            "CASES_CERTIFICATES_URL": certificates.url,
            "CASES_CERTIFICATES_CLIENT_ID": CERTS,
            "CASES_SECRET_KEY": "test-secret",
        }
    )


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


_jti = count()


def bearer(fake: FakeProvider, sub: str, scope: str, **extra: Any) -> dict[str, str]:
    claims = fake.claims(sub=sub, aud=extra.pop("aud", CASES), client_id=extra.pop("client_id", CASES))
    claims.update(scope=scope, jti=f"t-{next(_jti)}", **extra)
    return {"Authorization": f"Bearer {fake.sign(claims, typ='at+jwt')}"}


def entity(powers: tuple[str, ...]) -> dict[str, Any]:
    return {"uscc": ACME, "name": "福州某某科技有限公司", "role": "agent", "powers": list(powers)}


def agent(fake: FakeProvider, powers: tuple[str, ...] = ("cases:apply", "certificates:read")) -> Any:
    scope = "openid profile entity certificates:read"
    return bearer(fake, LI, scope, name="李四", entity=entity(powers))


def staff(fake: FakeProvider) -> dict[str, str]:
    return bearer(fake, OFFICERS, "cases:handle", client_id=OFFICERS)


def apply(client: Any, headers: dict[str, str], code: str = ITEM) -> Any:
    return client.post("/api/cases", json={"item_code": code}, headers=headers)


def act(client: Any, fake: FakeProvider, case_id: str, action: str, **body: Any) -> Any:
    return client.post(f"/api/cases/{case_id}/{action}", json=body, headers=staff(fake))


def case_count(app: Flask) -> int:
    from sqlalchemy import func, select

    from adapters.cases.models import CaseRow

    with app.extensions["cases"].db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(CaseRow)) or 0)


def test_apply_attaches_the_companys_business_licence_fetched_by_token_exchange(
    client: Any, provider: ExchangingProvider, certificates: Any
) -> None:
    licence_id = issue_business_licence(certificates, provider)
    headers = agent(provider)
    response = apply(client, headers)
    assert response.status_code == 201, response.json
    case = response.json
    assert case["applicant"] == {"type": "entity", "id": ACME, "name": "福州某某科技有限公司"}
    assert case["agent"] == {"sub": LI, "name": "李四", "role": "agent"}
    assert case["status"] == "submitted" and case["missing"] == [] and case["deadline"] is None
    [attached] = case["attachments"]
    assert attached["licence_id"] == licence_id and attached["number"] == "350100000012345"
    assert attached["licence_type"] == "business_licence" and attached["issuer"] == "SAMR-FZ"
    assert attached["issuer_name"] == "福州市市场监督管理局" and attached["verified"] is True
    assert attached["verification"]["status"] == "valid"
    [exchange] = provider.exchanges  # the applicant's own token, traded for one the certificate service takes
    assert exchange["audience"] == CERTS and exchange["scope"] == "certificates:read"
    assert exchange["subject_token"] == headers["Authorization"].removeprefix("Bearer ")
    assert response.headers["Location"] == f"/api/cases/{case['id']}"

    for action, body in [
        ("accept", {}),
        ("review", {"reason": "材料齐全"}),
        ("decide", {"outcome": "approved", "officer": "王五"}),
        ("deliver", {}),
    ]:
        moved = act(client, provider, case["id"], action, **body)
        assert moved.status_code == 200, moved.json
    assert moved.json["status"] == "delivered" and moved.json["may_rate"] is True
    assert moved.json["deadline"] == add_working_days(datetime.now(CHINA).date(), 5).isoformat()
    assert moved.json["events"][3]["actor"] == f"staff:{OFFICERS} (王五)"
    rated = client.post(f"/api/cases/{case['id']}/rate", json={"score": 5}, headers=agent(provider))
    assert rated.status_code == 200 and rated.json["rating"] == 5
    again = client.post(f"/api/cases/{case['id']}/rate", json={"score": 1}, headers=agent(provider))
    assert again.status_code == 409 and again.json["error"] == "invalid_transition"
    mine = client.get("/api/cases", headers=agent(provider)).json["cases"]
    assert [c["id"] for c in mine] == [case["id"]]
    assert client.get("/api/cases", headers=bearer(provider, "someone-else", "openid")).json == {"cases": []}
    assert client.get(f"/api/cases/{case['id']}", headers=bearer(provider, LI, "openid")).status_code == 404


def test_a_revoked_licence_is_not_attached_but_listed_for_correction(
    client: Any, provider: ExchangingProvider, certificates: Any
) -> None:
    licence_id = issue_business_licence(certificates, provider)
    revoked = certificates.test_client().post(
        f"/api/licences/{licence_id}/revoke",
        json={"reason": "吊销"},
        headers=bearer(provider, MARKET, "certificates:issue", aud=CERTS, client_id=MARKET),
    )
    assert revoked.status_code == 200
    case = apply(client, agent(provider)).json
    assert case["attachments"] == [] and len(case["missing"]) == 1
    assert "营业执照" in case["missing"][0] and "已撤销" in case["missing"][0]
    refused = act(client, provider, case["id"], "accept")
    assert refused.status_code == 409 and "missing" in refused.json["error_description"]
    notice = act(client, provider, case["id"], "request_corrections", items=["申请书未加盖公章"])
    assert notice.status_code == 200 and notice.json["status"] == "corrections_requested"
    assert notice.json["corrections"] == [case["missing"][0], "申请书未加盖公章"]

    issue_business_licence(certificates, provider, number="350100000099999")  # a new licence is issued
    again = client.post(f"/api/cases/{case['id']}/resubmit", json={"note": "已换发"}, headers=agent(provider))
    assert again.status_code == 200 and again.json["status"] == "resubmitted"
    assert [a["number"] for a in again.json["attachments"]] == ["350100000099999"]
    assert act(client, provider, case["id"], "accept").json["status"] == "accepted"


def test_an_agent_without_the_apply_power_is_refused(
    app: Flask, client: Any, provider: ExchangingProvider, certificates: Any
) -> None:
    issue_business_licence(certificates, provider)
    refused = apply(client, agent(provider, powers=("certificates:read",)))
    assert refused.status_code == 403 and refused.json["error"] == "insufficient_power"
    assert provider.exchanges == [] and case_count(app) == 0
    boss = apply(client, agent(provider, powers=("*",)))  # the legal representative holds every power
    assert boss.status_code == 201 and len(boss.json["attachments"]) == 1
    # may apply, but has not let the case service read the entity's licences: a correction, not a crash
    reader_less = apply(client, agent(provider, powers=("cases:apply",)))
    assert reader_less.status_code == 201 and reader_less.json["attachments"] == []
    assert "certificates:read" in reader_less.json["missing"][0]


def test_a_person_applies_for_themselves_without_any_exchange(
    client: Any, provider: ExchangingProvider
) -> None:
    response = apply(client, bearer(provider, "person-zhang", "openid profile", name="张三"), PLAIN_ITEM)
    assert response.status_code == 201 and response.json["agent"] is None
    assert response.json["applicant"] == {"type": "person", "id": "person-zhang", "name": "张三"}
    assert provider.exchanges == []
    service_account = apply(client, staff(provider), PLAIN_ITEM)
    assert service_account.status_code == 403 and service_account.json["error"] == "not_a_person"


def test_staff_actions_need_cases_handle(client: Any, provider: ExchangingProvider) -> None:
    case = apply(client, agent(provider), PLAIN_ITEM).json
    as_applicant = client.post(f"/api/cases/{case['id']}/accept", json={}, headers=agent(provider))
    assert as_applicant.status_code == 403
    assert 'error="insufficient_scope"' in as_applicant.headers["WWW-Authenticate"]
    assert client.post(f"/api/cases/{case['id']}/accept", json={}).status_code == 401
    other_audience = bearer(provider, OFFICERS, "cases:handle", client_id=OFFICERS, aud=CERTS)
    assert client.post(f"/api/cases/{case['id']}/accept", json={}, headers=other_audience).status_code == 401
    assert act(client, provider, case["id"], "accept").json["status"] == "accepted"
    listed = client.get("/api/cases?status=accepted", headers=staff(provider)).json["cases"]
    assert [c["id"] for c in listed] == [case["id"]]
    assert (
        client.get(f"/api/cases/{case['id']}", headers=staff(provider)).json["events"][1]["action"]
        == "accept"
    )


def test_suspend_and_postpone_over_the_api(client: Any, provider: ExchangingProvider) -> None:
    case_id = apply(client, agent(provider), PLAIN_ITEM).json["id"]
    accepted_case = act(client, provider, case_id, "accept").json
    postponed = act(client, provider, case_id, "postpone", days=3, reason="需专家论证").json
    assert (
        postponed["deadline"]
        == add_working_days(date.fromisoformat(accepted_case["deadline"]), 3).isoformat()
    )
    assert act(client, provider, case_id, "postpone", days=1, reason="x").status_code == 409
    assert act(client, provider, case_id, "suspend", reason="等待检测报告").json["status"] == "suspended"
    resumed = act(client, provider, case_id, "resume", reason="报告已出").json
    assert resumed["status"] == "accepted" and resumed["deadline"] == postponed["deadline"]  # same day
    assert [e["reason"] for e in resumed["events"]][-3:] == ["需专家论证", "等待检测报告", "报告已出"]


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("reject", {}),
        ("reject", {"reason": 5}),
        ("request_corrections", {"items": "申请书"}),
        ("request_corrections", {}),
        ("postpone", {"days": "three", "reason": "x"}),
        ("accept", {"reason": "x" * 501}),
        ("accept", {"officer": ["x"]}),
    ],
)
def test_bad_staff_input_is_400(client: Any, provider: ExchangingProvider, action: str, body: Any) -> None:
    case_id = apply(client, agent(provider), PLAIN_ITEM).json["id"]
    if action == "postpone":
        act(client, provider, case_id, "accept")
    response = act(client, provider, case_id, action, **body)
    assert response.status_code == 400 and response.json["error"] == "invalid_request", response.json


def test_bad_input_is_400_and_unknown_things_404(client: Any, provider: ExchangingProvider) -> None:
    headers = agent(provider)
    assert client.post("/api/cases", json={}, headers=headers).status_code == 400
    assert client.post("/api/cases", json={"item_code": 7}, headers=headers).status_code == 400
    not_json = client.post("/api/cases", data="item_code=x", headers=headers)
    assert not_json.status_code == 400 and not_json.json["error"] == "invalid_request"
    assert client.post("/api/cases", json=["x"], headers=headers).status_code == 400
    assert apply(client, headers, "99999999999999999999").status_code == 404
    case_id = apply(client, headers, PLAIN_ITEM).json["id"]
    for path in (f"/api/cases/{case_id}/explode", "/api/cases/not-a-uuid/accept"):
        response = client.post(path, json={}, headers=staff(provider))
        assert response.status_code == 404 and response.json["error"] == "not_found"
    assert client.get("/api/cases?status=bogus", headers=staff(provider)).status_code == 400
    act(client, provider, case_id, "reject", reason="不属于本部门")
    bad_score = client.post(f"/api/cases/{case_id}/rate", json={"score": 9}, headers=headers)
    assert bad_score.status_code == 400 and bad_score.json["field"] == "score"


def test_an_unreachable_service_is_502_and_nothing_is_written(
    tmp_path: Any, provider: ExchangingProvider, catalogue_url: str, certificates: Any
) -> None:
    issue_business_licence(certificates, provider)
    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    base = {
        "CASES_DATABASE_URL": f"sqlite:///{tmp_path / 'down.sqlite3'}",
        "CASES_ISSUER": provider.url,
        "CASES_HTTP_TIMEOUT": "2",
    }
    for down in (
        {"CASES_CATALOGUE_URL": closed, "CASES_CERTIFICATES_URL": certificates.url},
        {"CASES_CATALOGUE_URL": catalogue_url, "CASES_CERTIFICATES_URL": closed},
    ):
        app = create_app({**base, **down})
        response = apply(app.test_client(), agent(provider))
        assert response.status_code == 502 and response.json["error"] == "bad_gateway"
        assert case_count(app) == 0


def test_a_refused_exchange_is_a_readable_502(client: Any, app: Flask, provider: ExchangingProvider) -> None:
    provider.audiences = ()  # the provider will not issue tokens for the certificate service
    response = apply(client, agent(provider))
    assert response.status_code == 502 and response.json["error"] == "token_exchange_refused"
    assert case_count(app) == 0


# -- the applicant's pages ------------------------------------------------------------------------------


def sign_in(app: Flask, client: Any, fake: FakeProvider, powers: tuple[str, ...] = ("*",)) -> None:
    claims = {"sub": LI, "name": "李四", "entity": entity(powers)}
    token = agent(fake, powers)["Authorization"].removeprefix("Bearer ")
    data = {"sub": LI, "claims": claims, "userinfo": {}, "access_token": token}
    app.extensions["cases"].rp.store.save("local-1", data, 600)
    with client.session_transaction() as flask_session:
        flask_session[SESSION_KEY] = "local-1"


def csrf(client: Any) -> str:
    with client.session_transaction() as flask_session:
        return str(flask_session["cases.csrf"])


def test_apply_through_the_pages_and_rate_at_the_end(
    app: Flask, client: Any, provider: ExchangingProvider, certificates: Any
) -> None:
    issue_business_licence(certificates, provider)
    login = client.get(f"/apply/{ITEM}")
    assert login.status_code == 302 and login.headers["Location"].startswith("/oidc/login?next=")
    sign_in(app, client, provider)
    form = client.get(f"/apply/{ITEM}").get_data(as_text=True)
    assert "药品零售企业许可" in form and "无需上传" in form and "福州某某科技有限公司" in form
    no_consent = client.post(f"/apply/{ITEM}", data={"csrf_token": csrf(client)})
    assert no_consent.status_code == 400 and "同意" in no_consent.get_data(as_text=True)
    assert client.post(f"/apply/{ITEM}", data={"consent": "yes"}).status_code == 400  # no CSRF token
    done = client.post(f"/apply/{ITEM}", data={"consent": "yes", "csrf_token": csrf(client)})
    assert done.status_code == 303
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "350100000012345" in page and "核验通过" in page and "已提交" in page
    assert "药品零售企业许可" in client.get("/cases").get_data(as_text=True)

    case_id = done.headers["Location"].rsplit("/", 1)[1]
    early = client.post(f"/cases/{case_id}/rate", data={"score": "5", "csrf_token": csrf(client)})
    assert early.status_code == 409 and "不能" in early.get_data(as_text=True)
    for action in ("accept", "review"):
        act(client, provider, case_id, action)
    act(client, provider, case_id, "decide", outcome="approved")
    act(client, provider, case_id, "deliver")
    assert "满意度评价" in client.get(f"/cases/{case_id}").get_data(as_text=True)
    rated = client.post(f"/cases/{case_id}/rate", data={"score": "4", "csrf_token": csrf(client)})
    assert rated.status_code == 303
    assert "您的评价：4 分" in client.get(f"/cases/{case_id}").get_data(as_text=True)


def test_pages_refuse_readably(app: Flask, client: Any, provider: ExchangingProvider, tmp_path: Any) -> None:
    sign_in(app, client, provider, powers=("certificates:read",))
    refused = client.get(f"/apply/{ITEM}")
    assert refused.status_code == 403 and "cases:apply" in refused.get_data(as_text=True)
    sign_in(app, client, provider)
    assert client.get("/cases/not-a-case").status_code == 404
    down = create_app(
        {
            "CASES_DATABASE_URL": f"sqlite:///{tmp_path / 'down.sqlite3'}",
            "CASES_ISSUER": provider.url,
            "CASES_CATALOGUE_URL": "http://127.0.0.1:9",
            "CASES_SECRET_KEY": "test-secret",
        }
    )
    down_client = down.test_client()
    sign_in(down, down_client, provider)
    page = down_client.get(f"/apply/{ITEM}")
    assert page.status_code == 502 and "事项目录服务暂时无法访问" in page.get_data(as_text=True)


def test_timestamps_are_recorded_in_utc(client: Any, provider: ExchangingProvider) -> None:
    case = apply(client, agent(provider), PLAIN_ITEM).json
    recorded = datetime.fromisoformat(case["events"][0]["at"])
    assert recorded.tzinfo is not None and abs(recorded - datetime.now(UTC)) < timedelta(minutes=1)
