"""The e-certificate service (电子证照) against the kit's fake provider: who reads what, who issues and
revokes, and what verification refuses. The service's own database is a fresh SQLite file per test."""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey
from kit_platform import FakeProvider, make_key
from sqlalchemy import select

from adapters.certificates import create_app, seed
from adapters.certificates.identifiers import uscc_problem
from adapters.certificates.models import IssuerKey, Licence
from adapters.certificates.sealing import SealingError
from adapters.certificates.signing import rotate_key
from adapters.rp_kit.relying_party import SESSION_KEY

SERVICE = "e-certificates"
MARKET = "market-dept"  # 市场监督管理局's service account
HEALTH = "health-dept"
ACME = "91350100MA2XY80011"  # GB 32100-2015 check characters verified below
OTHER_CO = "91110108MA01ABC125"
ZHANG, LI = "person-zhang", "person-li"
TODAY = datetime.now(timezone(timedelta(hours=8))).date()  # validity dates are China's calendar days


def app_config(tmp_path: Any, fake_provider: FakeProvider) -> dict[str, Any]:
    return {
        "TESTING": True,
        "CERTS_DATABASE_URL": f"sqlite:///{tmp_path / 'certificates.sqlite3'}",
        "CERTS_ISSUER": fake_provider.url,
        "CERTS_CLIENT_ID": SERVICE,
        "CERTS_CLIENT_SECRET": "certificates-secret-0123456789-0123456789",
        "CERTS_ISSUER_CLIENTS": f"{MARKET}=SAMR-FZ,{HEALTH}=HEALTH-FZ",
        "CERTS_SECRET_KEY": "test-secret",
        "CERTS_KEY_DIR": str(tmp_path / "keys"),
    }


@pytest.fixture
def app(tmp_path: Any, fake_provider: FakeProvider) -> Any:
    app = create_app(app_config(tmp_path, fake_provider))
    seed(
        app,
        {
            "issuers": [
                {"code": "SAMR-FZ", "name": "福州市市场监督管理局"},
                {"code": "HEALTH-FZ", "name": "福州市卫生健康委员会"},
            ]
        },
    )
    return app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


def token(fake: FakeProvider, sub: str, scope: str, **extra: Any) -> dict[str, str]:
    claims = fake.claims(sub=sub, aud=SERVICE, client_id=extra.pop("client_id", "portal"), scope=scope)
    return {"Authorization": f"Bearer {fake.sign({**claims, **extra}, typ='at+jwt')}"}


def person(fake: FakeProvider, sub: str = ZHANG, scope: str = "certificates:read", **extra: Any) -> Any:
    return token(fake, sub, scope, **extra)


def agent(fake: FakeProvider, uscc: str = ACME, powers: tuple[str, ...] = ("certificates:read",)) -> Any:
    entity = {"uscc": uscc, "name": "福州某某科技有限公司", "role": "agent", "powers": list(powers)}
    return token(fake, LI, "certificates:read entity", entity=entity)


def department(fake: FakeProvider, client_id: str = MARKET) -> Any:
    return token(fake, client_id, "certificates:issue", client_id=client_id)


def licence_body(**change: Any) -> dict[str, Any]:
    body = {
        "licence_type": "business_licence",
        "number": "350100000012345",
        "holder_type": "entity",
        "holder_id": ACME,
        "holder_name": "福州某某科技有限公司",
        "valid_from": "2024-01-01",
        "valid_until": None,
    }
    return {**body, **change}


def issue(client: Any, fake: FakeProvider, client_id: str = MARKET, **change: Any) -> dict[str, Any]:
    response = client.post("/api/licences", json=licence_body(**change), headers=department(fake, client_id))
    assert response.status_code == 201, response.json
    return dict(response.json)


def person_licence(client: Any, fake: FakeProvider, sub: str = ZHANG, number: str = "P-001") -> Any:
    return issue(
        client,
        fake,
        HEALTH,
        licence_type="practising_certificate",
        number=number,
        holder_type="person",
        holder_id=sub,
        holder_name="张三",
    )


def verify(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post("/api/verify", json=body)
    assert response.status_code == 200, response.json
    return dict(response.json)


def test_test_identifiers_pass_the_check() -> None:
    assert uscc_problem(ACME) is None and uscc_problem(OTHER_CO) is None


# -- reading: the holder's own, nobody else's ---------------------------------------------------------


def test_a_holder_lists_only_their_own(client: Any, fake_provider: FakeProvider) -> None:
    acme = issue(client, fake_provider)
    issue(client, fake_provider, holder_id=OTHER_CO, number="110108000054321", holder_name="北京某公司")
    zhang = person_licence(client, fake_provider, ZHANG, "P-001")
    person_licence(client, fake_provider, LI, "P-002")

    mine = client.get("/api/licences", headers=person(fake_provider, ZHANG)).json["licences"]
    assert [item["id"] for item in mine] == [zhang["id"]]
    assert mine[0]["status"] == "valid" and mine[0]["type_name"] == "执业资格证书"
    # Li acting for ACME sees ACME's licences, not their own nor another company's
    for_acme = client.get("/api/licences", headers=agent(fake_provider)).json["licences"]
    assert [item["id"] for item in for_acme] == [acme["id"]]
    assert for_acme[0]["issuer_name"] == "福州市市场监督管理局" and for_acme[0]["signature"].count(".") == 2
    # the legal representative (every power) too
    boss = client.get("/api/licences", headers=agent(fake_provider, powers=("*",)))
    assert [item["id"] for item in boss.json["licences"]] == [acme["id"]]
    assert client.get("/api/licences", headers=person(fake_provider, "nobody")).json == {"licences": []}


def test_an_agent_needs_the_read_power(client: Any, fake_provider: FakeProvider) -> None:
    issue(client, fake_provider)
    refused = client.get("/api/licences", headers=agent(fake_provider, powers=("cases:apply",)))
    assert refused.status_code == 403 and refused.json["error"] == "insufficient_power"


def test_reading_needs_the_scope_and_this_audience(client: Any, fake_provider: FakeProvider) -> None:
    no_scope = client.get("/api/licences", headers=person(fake_provider, scope="openid profile"))
    assert no_scope.status_code == 403
    assert 'error="insufficient_scope"' in no_scope.headers["WWW-Authenticate"]
    elsewhere = client.get("/api/licences", headers=person(fake_provider, aud="case-service"))
    assert elsewhere.status_code == 401 and "audience" in elsewhere.json["error_description"]
    assert client.get("/api/licences").status_code == 401


def test_an_exchanged_token_reads_for_its_subject_and_the_actor_is_logged(
    client: Any, fake_provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    zhang = person_licence(client, fake_provider)
    exchanged = person(fake_provider, ZHANG, client_id="case-service", act={"sub": "case-service"})
    with caplog.at_level(logging.INFO, logger="adapters.certificates.api"):
        listed = client.get("/api/licences", headers=exchanged)
        one = client.get(f"/api/licences/{zhang['id']}", headers=exchanged)
    assert [item["id"] for item in listed.json["licences"]] == [zhang["id"]]
    assert one.status_code == 200 and one.json["number"] == "P-001"
    assert "actor=case-service" in caplog.text and "client=case-service" in caplog.text


def test_another_holders_licence_is_not_found(client: Any, fake_provider: FakeProvider) -> None:
    acme = issue(client, fake_provider)
    zhang = person_licence(client, fake_provider)
    assert client.get(f"/api/licences/{zhang['id']}", headers=person(fake_provider, ZHANG)).status_code == 200
    for headers, licence in [
        (person(fake_provider, LI), zhang),
        (person(fake_provider, ZHANG), acme),  # Zhang is not acting for ACME
        (agent(fake_provider, OTHER_CO), acme),
        (agent(fake_provider), zhang),  # acting for ACME, the token is not Zhang's own
    ]:
        response = client.get(f"/api/licences/{licence['id']}", headers=headers)
        assert response.status_code == 404 and response.json["error"] == "not_found"
    assert client.get("/api/licences/not-a-uuid", headers=person(fake_provider)).status_code == 404


# -- issuing and revoking: the department's service account only ------------------------------------------


def test_issuing_needs_a_mapped_department_service_account(client: Any, fake_provider: FakeProvider) -> None:
    body = licence_body()
    as_person = client.post(
        "/api/licences", json=body, headers=person(fake_provider, scope="certificates:issue")
    )
    assert as_person.status_code == 403 and as_person.json["error"] == "not_a_service_account"
    unmapped = client.post("/api/licences", json=body, headers=department(fake_provider, "stranger-dept"))
    assert unmapped.status_code == 403 and unmapped.json["error"] == "not_a_department"
    reader = client.post("/api/licences", json=body, headers=person(fake_provider, MARKET, client_id=MARKET))
    assert reader.status_code == 403  # certificates:read only

    issued = issue(client, fake_provider)
    assert issued["issuer"] == "SAMR-FZ" and issued["status"] == "valid" and issued["valid_until"] is None
    header = json.loads(base64.urlsafe_b64decode(issued["signature"].split(".")[0] + "=="))
    assert header["alg"] == "ES256" and header["kid"].startswith("SAMR-FZ.")
    assert verify(client, id=issued["id"])["valid"] is True
    assert verify(client, licence=issued["signature"])["valid"] is True
    again = client.post("/api/licences", json=licence_body(), headers=department(fake_provider))
    assert again.status_code == 409 and again.json["error"] == "conflict"


def test_only_the_issuing_department_revokes(client: Any, fake_provider: FakeProvider) -> None:
    acme = issue(client, fake_provider)
    url = f"/api/licences/{acme['id']}/revoke"
    other = client.post(url, json={"reason": "不是我发的"}, headers=department(fake_provider, HEALTH))
    assert other.status_code == 403 and other.json["error"] == "not_issuer"
    no_reason = client.post(url, json={}, headers=department(fake_provider))
    assert no_reason.status_code == 400
    revoked = client.post(url, json={"reason": "企业申请注销"}, headers=department(fake_provider))
    assert revoked.status_code == 200 and revoked.json["status"] == "revoked"
    twice = client.post(url, json={"reason": "again"}, headers=department(fake_provider))
    assert twice.status_code == 409
    result = verify(client, licence=acme["signature"])
    assert result["valid"] is False and result["status"] == "revoked"
    assert any("企业申请注销" in problem for problem in result["problems"])
    missing = client.post(
        "/api/licences/00000000-0000-4000-8000-000000000000/revoke",
        json={"reason": "x"},
        headers=department(fake_provider),
    )
    assert missing.status_code == 404


# -- verification refuses what was tampered with ------------------------------------------------------


def test_a_changed_record_fails_verification(app: Any, client: Any, fake_provider: FakeProvider) -> None:
    acme = issue(client, fake_provider)
    with app.extensions["certificates"].db.transaction() as session:
        session.get(Licence, acme["id"]).holder_name = "冒名公司"
    result = verify(client, id=acme["id"])
    assert result["valid"] is False and "differs" in result["problems"][0]
    assert "核验未通过" in client.get(f"/verify/{acme['id']}").get_data(as_text=True)


def test_a_tampered_or_forged_document_fails_verification(client: Any, fake_provider: FakeProvider) -> None:
    acme = issue(client, fake_provider)
    head, payload, signature = acme["signature"].split(".")
    metadata = json.loads(base64.urlsafe_b64decode(payload + "=="))
    metadata["valid_until"] = "2099-12-31"
    changed = base64.urlsafe_b64encode(json.dumps(metadata).encode()).rstrip(b"=").decode()
    tampered = verify(client, licence=f"{head}.{changed}.{signature}")
    assert tampered["valid"] is False and "signature does not match" in tampered["problems"][0]

    stranger = ECKey.generate_key("P-256")  # a forger's key, under the department's kid
    header = json.loads(base64.urlsafe_b64decode(head + "=="))
    forged = jws.serialize_compact(header, json.dumps(metadata).encode(), stranger, algorithms=["ES256"])
    assert verify(client, licence=forged)["valid"] is False

    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    assert "not accepted" in verify(client, licence=f"{unsigned}.{payload}.")["problems"][0]
    assert verify(client, licence="garbage")["valid"] is False
    # signed by one department's key but claiming to come from another
    other = person_licence(client, fake_provider)
    other_head = other["signature"].split(".")[0]
    assert verify(client, licence=f"{other_head}.{payload}.{signature}")["valid"] is False


def test_licences_verify_after_the_department_key_rotates(
    app: Any, client: Any, fake_provider: FakeProvider
) -> None:
    old = issue(client, fake_provider)
    with app.extensions["certificates"].db.transaction() as session:
        rotate_key(session, "SAMR-FZ")
    new = issue(client, fake_provider, number="350100000099999")
    kid = lambda value: json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))["kid"]  # noqa: E731
    assert kid(old["signature"]) != kid(new["signature"])
    assert (
        verify(client, licence=old["signature"])["valid"]
        and verify(client, licence=new["signature"])["valid"]
    )
    published = client.get("/.well-known/jwks.json").json["keys"]
    assert {kid(old["signature"]), kid(new["signature"])} <= {key["kid"] for key in published}
    assert all("d" not in key and key["alg"] == "ES256" for key in published)


# -- the departments' private keys are sealed at rest --------------------------------------------------


def key_rows(app: Any) -> dict[str, str]:
    with app.extensions["certificates"].db.transaction() as session:
        return {row.kid: row.private_jwk for row in session.scalars(select(IssuerKey))}


def test_department_private_keys_are_stored_sealed(
    app: Any, client: Any, fake_provider: FakeProvider
) -> None:
    issued = issue(client, fake_provider)
    ((kid, stored),) = key_rows(app).items()
    assert stored.startswith("sealed.v1.") and '"d"' not in stored and "P-256" not in stored
    private = json.loads(app.extensions["certificates"].db.sealer.open(kid, stored))
    assert private["kty"] == "EC" and private["d"]  # the seal opens to the key that signed
    assert verify(client, licence=issued["signature"])["valid"] is True


def test_a_sealed_key_opens_only_under_its_own_kid(
    app: Any, client: Any, fake_provider: FakeProvider
) -> None:
    issue(client, fake_provider)
    ((kid, stored),) = key_rows(app).items()
    sealer = app.extensions["certificates"].db.sealer
    with pytest.raises(SealingError, match="does not open"):
        sealer.open("HEALTH-FZ.0000000000000000", stored)  # copied onto another key's row
    tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
    with pytest.raises(SealingError, match="does not open"):
        sealer.open(kid, tampered)


def test_plain_keys_from_before_sealing_are_sealed_at_start_and_still_sign(
    tmp_path: Any, app: Any, client: Any, fake_provider: FakeProvider
) -> None:
    issued = issue(client, fake_provider)
    ((kid, stored),) = key_rows(app).items()
    plain = app.extensions["certificates"].db.sealer.open(kid, stored)
    with app.extensions["certificates"].db.transaction() as session:
        session.get(IssuerKey, kid).private_jwk = plain  # as an older release wrote it
    restarted = create_app({**app_config(tmp_path, fake_provider), "TESTING": True})
    assert key_rows(restarted)[kid].startswith("sealed.v1.")
    again = restarted.test_client()
    assert verify(again, licence=issued["signature"])["valid"] is True
    second = issue(again, fake_provider, number="350100000099998")
    assert verify(again, licence=second["signature"])["valid"] is True


def test_a_wrong_or_malformed_kek_stops_the_start_with_a_clear_error(
    tmp_path: Any, app: Any, client: Any, fake_provider: FakeProvider
) -> None:
    issue(client, fake_provider)
    config = app_config(tmp_path, fake_provider)
    other = base64.urlsafe_b64encode(bytes(range(32))).decode()
    with pytest.raises(SealingError, match="does not open under this KEK"):
        create_app({**config, "CERTS_KEK": other})
    with pytest.raises(SealingError, match="CERTS_KEK holds 3 bytes"):
        create_app({**config, "CERTS_KEK": "AAAA"})
    with pytest.raises(SealingError, match="not base64url"):
        create_app({**config, "CERTS_KEK": "not base64!"})


def test_the_kek_file_is_made_once_private_and_reused(tmp_path: Any, fake_provider: FakeProvider) -> None:
    config = app_config(tmp_path, fake_provider)
    create_app(config)
    kek_file = tmp_path / "keys" / "kek"
    first = kek_file.read_text()
    assert (
        kek_file.stat().st_mode & 0o777 == 0o600 and len(base64.urlsafe_b64decode(first.strip() + "=")) == 32
    )
    create_app(config)
    assert kek_file.read_text() == first


def test_expired_status_is_computed(client: Any, fake_provider: FakeProvider) -> None:
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    old = issue(client, fake_provider, valid_from="2020-01-01", valid_until=yesterday)
    listed = client.get("/api/licences", headers=agent(fake_provider)).json["licences"]
    assert listed[0]["status"] == "expired"
    result = verify(client, id=old["id"])
    assert result["valid"] is False and result["status"] == "expired"
    later = issue(client, fake_provider, number="N-2", valid_from=(TODAY + timedelta(days=3)).isoformat())
    assert "not valid yet" in verify(client, id=later["id"])["problems"][0]


# -- bad input is a 400 with a JSON reason, never a 500 -----------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"holder_id": ACME[:-1] + "0"}, "check character"),
        ({"holder_id": ACME[:17]}, "18 characters"),
        ({"holder_id": "91350100MA2XY8001I"}, "I, O, Z, S, V"),
        ({"holder_type": "person"}, "held by: entity"),
        ({"licence_type": "magic_licence"}, "unknown licence_type"),
        ({"licence_type": 42}, "licence_type is required"),
        ({"number": ""}, "number is required"),
        ({"number": "a b<script>"}, "number:"),
        ({"holder_name": "名" * 101}, "longer than 100"),
        ({"holder_name": "Acme\x00"}, "control characters"),
        ({"valid_from": "2024-02-30"}, "real date"),
        ({"valid_from": 20240101}, "YYYY-MM-DD"),
        ({"valid_from": None}, "YYYY-MM-DD"),
        ({"valid_until": "2023-12-31"}, "before valid_from"),
    ],
)
def test_bad_licences_are_refused(
    client: Any, fake_provider: FakeProvider, change: dict[str, Any], reason: str
) -> None:
    response = client.post("/api/licences", json=licence_body(**change), headers=department(fake_provider))
    assert response.status_code == 400 and response.json["error"] == "invalid_request"
    assert reason in response.json["error_description"]


def test_malformed_requests_are_json_errors(client: Any, fake_provider: FakeProvider) -> None:
    headers = department(fake_provider)
    for data in ("not json", "[1, 2]", ""):
        response = client.post("/api/licences", data=data, headers=headers, content_type="application/json")
        assert response.status_code == 400 and response.is_json
    for body in ({}, {"id": "x", "licence": "y"}, {"id": 5}, {"licence": "x" * 9000}):
        response = client.post("/api/verify", json=body)
        assert response.status_code == 400 and response.json["error"] == "invalid_request"
    assert verify(client, id="00000000-0000-4000-8000-000000000000")["problems"] == ["no such licence"]
    assert client.get("/api/nothing-here").json["error"] == "not_found"
    assert client.put("/api/verify").status_code == 405 and client.put("/api/verify").is_json


# -- pages ---------------------------------------------------------------------------------------------


def sign_in(app: Any, client: Any, claims: dict[str, Any]) -> None:
    app.extensions["certificates"].rp.store.save("local-1", {"sub": claims["sub"], "claims": claims}, 600)
    with client.session_transaction() as flask_session:
        flask_session[SESSION_KEY] = "local-1"


def test_my_page_lists_own_and_the_entitys_licences(
    app: Any, client: Any, fake_provider: FakeProvider
) -> None:
    issue(client, fake_provider)
    person_licence(client, fake_provider, ZHANG, "P-001")
    person_licence(client, fake_provider, LI, "P-777")
    login = client.get("/my")
    assert login.status_code == 302 and login.headers["Location"].startswith("/oidc/login?next=%2Fmy")

    sign_in(app, client, {"sub": ZHANG, "name": "张三"})
    page = client.get("/my").get_data(as_text=True)
    assert "P-001" in page and "P-777" not in page and "350100000012345" not in page

    entity = {"uscc": ACME, "name": "福州某某科技有限公司", "role": "legal_representative", "powers": ["*"]}
    sign_in(app, client, {"sub": ZHANG, "name": "张三", "entity": entity})
    page = client.get("/my").get_data(as_text=True)
    assert "P-001" in page and "350100000012345" in page and "P-777" not in page


def test_public_pages(client: Any, fake_provider: FakeProvider) -> None:
    zhang = person_licence(client, fake_provider)
    index = client.get("/")
    assert index.status_code == 200 and "电子证照" in index.get_data(as_text=True)
    assert "script" not in index.headers["Content-Security-Policy"]
    page = client.get(f"/verify/{zhang['id']}").get_data(as_text=True)
    assert "核验通过" in page and "张*" in page and "张三" not in page and ZHANG not in page
    assert client.get(f"/verify?id={zhang['id']}").headers["Location"].endswith(f"/verify/{zhang['id']}")
    assert client.get("/verify/unknown").status_code == 404


def test_jwks_publishes_one_key_per_department_once_used(client: Any, fake_provider: FakeProvider) -> None:
    assert client.get("/.well-known/jwks.json").json == {"keys": []}
    issue(client, fake_provider)
    issue(client, fake_provider, number="N-2")
    person_licence(client, fake_provider)
    kids = [key["kid"] for key in client.get("/.well-known/jwks.json").json["keys"]]
    assert len(kids) == 2 and kids[0].startswith("HEALTH-FZ.") and kids[1].startswith("SAMR-FZ.")


def test_a_token_from_an_unpublished_key_is_refused(client: Any, fake_provider: FakeProvider) -> None:
    forged = fake_provider.sign(
        fake_provider.claims(aud=SERVICE, client_id="portal", scope="certificates:read"),
        key=make_key(),
        typ="at+jwt",
    )
    response = client.get("/api/licences", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
