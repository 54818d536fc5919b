"""The end-to-end story over real HTTP: the provider and the catalogue, certificate and case services,
each its own server; a person in a browser; department service accounts with client-credentials tokens.

李四 signs in at the catalogue, opens the case service without a second login (SSO), acts as the
company's agent, applies for the food-operation permit; the company's business licence is fetched by
token exchange and attached; the officers take the case through one correction notice to delivery;
李四 rates it and signs out at the case service, which ends the sessions at all three services through
back-channel logout. Then each refusal on its own: wrong scope, no consent, revoked agent, revoked
licence, forged token, and a key rotation that must not break anything."""

from __future__ import annotations

import time
from typing import Any

import requests
from e2e_helpers import (
    COMPANY,
    FOOD_PERMIT,
    LICENCE_NUMBER,
    MARKET,
    OFFICERS,
    TIMEOUT,
    USCC,
    World,
    bearer,
    exchange,
    forged_token,
    kid_of,
    page_form,
    service_token,
    unverified_claims,
)

CASES_SCOPE = "openid profile entity certificates:read"  # what the case service asks at login


# -- helpers over the services' APIs ------------------------------------------------------------------


def issue_licence(world: World, number: str = LICENCE_NUMBER) -> str:
    """The market bureau issues the company's business licence through the certificate service's API."""
    token = service_token(
        world.provider, world.clients[MARKET], "certificates:issue", audience="certificates"
    )
    assert unverified_claims(token)["aud"] == "certificates"
    body = {
        "licence_type": "business_licence",
        "number": number,
        "holder_type": "entity",
        "holder_id": USCC,
        "holder_name": COMPANY,
        "valid_from": "2024-01-01",
        "valid_until": None,
    }
    response = requests.post(
        f"{world.certificates}/api/licences", json=body, headers=bearer(token), timeout=TIMEOUT
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def officer_token(world: World) -> str:
    token = service_token(world.provider, world.clients[OFFICERS], "cases:handle", audience="cases")
    assert unverified_claims(token)["aud"] == "cases"
    return token


def officer(world: World, case_id: str, action: str, **body: Any) -> requests.Response:
    return requests.post(
        f"{world.cases}/api/cases/{case_id}/{action}",
        json=body,
        headers=bearer(officer_token(world)),
        timeout=TIMEOUT,
    )


def read_case(world: World, case_id: str) -> dict[str, Any]:
    response = requests.get(
        f"{world.cases}/api/cases/{case_id}", headers=bearer(officer_token(world)), timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def apply_api(world: World, token: str) -> requests.Response:
    return requests.post(
        f"{world.cases}/api/cases", json={"item_code": FOOD_PERMIT}, headers=bearer(token), timeout=TIMEOUT
    )


def case_count(world: World) -> int:
    from sqlalchemy import func, select

    from adapters.cases.models import CaseRow

    with world.apps["cases"].extensions["cases"].db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(CaseRow)) or 0)


def goes_to_login(response: requests.Response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/oidc/login")


# -- the story -----------------------------------------------------------------------------------------


def test_the_whole_story_from_catalogue_to_rating_and_logout(world: World) -> None:
    licence_id = issue_licence(world)
    lisi = world.browser(acting=world.entity_id)

    # 李四 signs in at the catalogue (password at the provider) and reads the item.
    session = lisi.open(f"{world.catalogue}/oidc/login?next=/e2e/session")
    assert session.status_code == 200, session.text[:500]
    assert session.json()["name"] == "李四" and lisi.seen == ["login"]
    item = requests.get(f"{world.catalogue}/api/items/{FOOD_PERMIT}", timeout=TIMEOUT).json()
    assert item["name"] == "食品经营许可"
    assert [m.get("licence_type") for m in item["materials"]] == [None, "business_licence"]

    # The case service: no password again (SSO), the consent to read e-certificates, the entity chooser.
    form = lisi.open(f"{world.cases}/apply/{FOOD_PERMIT}")
    assert form.status_code == 200, form.text[:500]
    assert sorted(lisi.seen) == ["chooser", "consent", "login"]  # the login form was not shown again
    assert "食品经营许可" in form.text and COMPANY in form.text

    done = lisi.submit(form.url, page_form(form, f"/apply/{FOOD_PERMIT}"), consent="yes")
    assert done.status_code == 200 and "/cases/" in done.url, done.text[:500]
    case_id = done.url.rsplit("/", 1)[1]

    # The case as the case service holds it: the company applies, 李四 as agent, the licence attached.
    case = read_case(world, case_id)
    assert case["applicant"] == {"type": "entity", "id": USCC, "name": COMPANY}
    assert case["agent"]["name"] == "李四" and case["agent"]["role"] == "agent"
    assert case["status"] == "submitted" and case["missing"] == []
    [attached] = case["attachments"]
    assert attached["licence_id"] == licence_id and attached["number"] == LICENCE_NUMBER
    assert attached["licence_type"] == "business_licence" and attached["issuer"] == "SAMR-FZ"
    assert attached["verified"] is True and attached["verification"]["status"] == "valid"

    # One correction notice, every item listed at once; no second round.
    items = ["申请书未签字", "经营场所平面图不清晰"]
    notice = officer(world, case_id, "request_corrections", items=items, officer="王五")
    assert notice.status_code == 200, notice.text
    assert notice.json()["status"] == "corrections_requested" and notice.json()["corrections"] == items
    assert [e["action"] for e in notice.json()["events"]].count("request_corrections") == 1

    page = lisi.open(f"{world.cases}/cases/{case_id}")
    assert page.status_code == 200 and all(i in page.text for i in items)
    resubmitted = lisi.submit(page.url, page_form(page, "/resubmit"), note="已补正")
    assert resubmitted.status_code == 200, resubmitted.text[:500]
    assert read_case(world, case_id)["status"] == "resubmitted"
    again = officer(world, case_id, "request_corrections", items=["又发现一处"])
    assert again.status_code == 409 and again.json()["error"] == "invalid_transition"

    for action, body in [
        ("accept", {}),
        ("review", {"reason": "材料齐全"}),
        ("decide", {"outcome": "approved", "reason": "符合条件", "officer": "王五"}),
        ("deliver", {}),
    ]:
        moved = officer(world, case_id, action, **body)
        assert moved.status_code == 200, (action, moved.text)
    assert moved.json()["status"] == "delivered" and moved.json()["outcome"] == "approved"
    assert moved.json()["may_rate"] is True

    page = lisi.open(f"{world.cases}/cases/{case_id}")
    rated = lisi.submit(page.url, page_form(page, "/rate"), score="5", comment="很方便")
    assert rated.status_code == 200 and "您的评价：5 分" in rated.text
    final = read_case(world, case_id)
    assert final["rating"] == 5 and final["may_rate"] is False
    assert [e["action"] for e in final["events"]] == [
        "submit",
        "request_corrections",
        "resubmit",
        "accept",
        "review",
        "decide",
        "deliver",
        "rate",
    ]

    # The certificate service too (SSO, the company chosen earlier in this session holds).
    mine = lisi.open(f"{world.certificates}/my")
    assert mine.status_code == 200 and LICENCE_NUMBER in mine.text
    assert lisi.seen.count("login") == 1 and lisi.seen.count("chooser") == 1

    # Logout at the case service (RP-initiated) ends the provider's session; the outbox then ends the
    # sessions at the catalogue and the certificate service (and tells the case service too).
    for protected in (f"{world.catalogue}/e2e/session", f"{world.certificates}/my", f"{world.cases}/cases"):
        assert lisi.http.get(protected, allow_redirects=False, timeout=TIMEOUT).status_code == 200
    out = lisi.open(f"{world.cases}/oidc/logout")
    assert out.status_code == 200 and out.url == f"{world.cases}/", (out.url, out.text[:300])
    delivered, failed = world.services.logout.deliver_due()
    assert delivered == 3 and failed == 0
    for protected in (f"{world.catalogue}/e2e/session", f"{world.certificates}/my", f"{world.cases}/cases"):
        assert goes_to_login(lisi.http.get(protected, allow_redirects=False, timeout=TIMEOUT)), protected
    # and the provider asks for the password again
    lisi.open(f"{world.catalogue}/oidc/login?next=/e2e/session")
    assert lisi.seen.count("login") == 2


# -- refusals ------------------------------------------------------------------------------------------


def test_a_token_without_certificates_read_is_refused_at_the_certificate_api(world: World) -> None:
    lisi = world.browser(acting=world.entity_id)
    tokens = lisi.sign_in_for_tokens(world.clients["certificates"], "openid profile entity")
    claims = unverified_claims(tokens["access_token"])
    assert claims["aud"] == "certificates" and claims["entity"]["uscc"] == USCC
    assert "certificates:read" not in claims["scope"].split()
    response = requests.get(
        f"{world.certificates}/api/licences", headers=bearer(tokens["access_token"]), timeout=TIMEOUT
    )
    assert response.status_code == 403, response.text
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    # the same person with the scope is let in: it was the scope
    allowed = lisi.sign_in_for_tokens(
        world.clients["certificates"], "openid profile entity certificates:read"
    )
    response = requests.get(
        f"{world.certificates}/api/licences", headers=bearer(allowed["access_token"]), timeout=TIMEOUT
    )
    assert response.status_code == 200, response.text


def test_without_consent_the_case_service_cannot_exchange_or_attach(world: World) -> None:
    lisi = world.browser(acting=world.entity_id, consent=False)
    denied = lisi.open(f"{world.cases}/apply/{FOOD_PERMIT}")
    assert lisi.seen[-1] == "consent" and denied.url.startswith(f"{world.cases}/oidc/callback")
    assert denied.status_code == 400 and "access_denied" in denied.text, (denied.status_code, denied.text)
    assert goes_to_login(lisi.http.get(f"{world.cases}/cases", allow_redirects=False, timeout=TIMEOUT))

    # Consent given, then withdrawn at the provider: the token the case service holds is not exchanged.
    lisi.consent = True
    tokens = lisi.sign_in_for_tokens(world.clients["cases"], CASES_SCOPE)
    token = tokens["access_token"]
    world.services.consent.revoke(world.lisi_id, "cases")
    refused = exchange(world.provider, world.clients["cases"], token, "certificates", "certificates:read")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request", refused.text
    assert "consent" in refused.json()["error_description"]
    applied = apply_api(world, token)
    assert applied.status_code == 502 and applied.json()["error"] == "token_exchange_refused", applied.text
    assert case_count(world) == 0


def test_a_revoked_agent_can_no_longer_act_for_the_company(world: World) -> None:
    lisi = world.browser(acting=world.entity_id)
    tokens = lisi.sign_in_for_tokens(world.clients["cases"], CASES_SCOPE)
    token = tokens["access_token"]
    assert unverified_claims(token)["entity"]["powers"] == ["cases:apply", "certificates:read"]
    exchanged = exchange(world.provider, world.clients["cases"], token, "certificates", "certificates:read")
    assert exchanged.status_code == 200, exchanged.text
    assert unverified_claims(exchanged.json()["access_token"])["act"] == {"sub": "cases"}
    first = apply_api(world, token)
    assert first.status_code == 201, first.text  # no licence issued yet: listed as missing
    assert first.json()["applicant"]["id"] == USCC and len(first.json()["missing"]) == 1

    world.services.entities.revoke_authorisation(world.agent_authorisation_id, world.zhangsan_id)
    refused = exchange(world.provider, world.clients["cases"], token, "certificates", "certificates:read")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request", refused.text
    assert "entity" in refused.json()["error_description"]
    again = apply_api(world, token)
    assert again.status_code == 502 and again.json()["error"] == "token_exchange_refused", again.text
    assert case_count(world) == 1
    # a new sign-in no longer offers the company at all
    fresh = world.browser()
    page = fresh.open(f"{world.cases}/cases")
    assert page.status_code == 200 and "chooser" not in fresh.seen and COMPANY not in page.text


def test_a_revoked_licence_is_not_attached_but_listed_as_a_correction(world: World) -> None:
    licence_id = issue_licence(world)
    market = service_token(
        world.provider, world.clients[MARKET], "certificates:issue", audience="certificates"
    )
    revoked = requests.post(
        f"{world.certificates}/api/licences/{licence_id}/revoke",
        json={"reason": "吊销"},
        headers=bearer(market),
        timeout=TIMEOUT,
    )
    assert revoked.status_code == 200, revoked.text
    lisi = world.browser(acting=world.entity_id)
    form = lisi.open(f"{world.cases}/apply/{FOOD_PERMIT}")
    done = lisi.submit(form.url, page_form(form, f"/apply/{FOOD_PERMIT}"), consent="yes")
    case_id = done.url.rsplit("/", 1)[1]
    case = read_case(world, case_id)
    assert case["attachments"] == [] and len(case["missing"]) == 1
    assert "营业执照" in case["missing"][0] and "已撤销" in case["missing"][0]
    refused = officer(world, case_id, "accept")
    assert refused.status_code == 409 and "missing" in refused.json()["error_description"]
    notice = officer(world, case_id, "request_corrections", items=["申请书未签字"])
    assert notice.status_code == 200 and notice.json()["corrections"] == [case["missing"][0], "申请书未签字"]


def test_a_token_signed_with_a_foreign_key_is_refused_by_every_service(world: World) -> None:
    real = service_token(world.provider, world.clients["catalogue"], "catalogue:write")
    kid = kid_of(real)  # the provider's current kid, but a stranger's key
    item = {**requests.get(f"{world.catalogue}/api/items/{FOOD_PERMIT}", timeout=TIMEOUT).json()}
    item = {
        k: item[k]
        for k in (
            "name",
            "kind",
            "subtype",
            "department",
            "acceptance_conditions",
            "materials",
            "steps",
            "statutory_limit_days",
            "committed_limit_days",
            "fees",
        )
    }
    item["code"] = "01001530000000090000"
    person = {"sub": "someone", "client_id": "cases", "name": "李四"}
    calls = [
        ("POST", f"{world.catalogue}/api/items", "catalogue", "catalogue:write", {}, item),
        ("GET", f"{world.certificates}/api/licences", "certificates", "certificates:read", {}, None),
        (
            "POST",
            f"{world.certificates}/api/licences",
            "certificates",
            "certificates:issue",
            {"sub": MARKET, "client_id": MARKET},
            {},
        ),
        ("POST", f"{world.cases}/api/cases", "cases", "openid profile", person, {"item_code": FOOD_PERMIT}),
        (
            "GET",
            f"{world.cases}/api/cases",
            "cases",
            "cases:handle",
            {"sub": OFFICERS, "client_id": OFFICERS},
            None,
        ),
    ]
    for method, url, audience, scope, claims, body in calls:
        for signing_kid in (kid, "stranger-kid"):
            forged = forged_token(world.provider, audience, scope, signing_kid, **claims)
            response = requests.request(method, url, json=body, headers=bearer(forged), timeout=TIMEOUT)
            assert response.status_code == 401, (url, signing_kid, response.status_code, response.text)
            assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # the provider's own token for the same call is taken: it was the signature
    created = requests.post(f"{world.catalogue}/api/items", json=item, headers=bearer(real), timeout=TIMEOUT)
    assert created.status_code == 201, created.text


def test_after_a_key_rotation_new_tokens_verify_at_every_service(world: World) -> None:
    lisi = world.browser()

    def tokens() -> dict[str, str]:
        return {
            "catalogue": service_token(world.provider, world.clients["catalogue"], "catalogue:write"),
            "certificates": service_token(world.provider, world.clients["certificates"], "certificates:read"),
            "cases": lisi.sign_in_for_tokens(world.clients["cases"], CASES_SCOPE)["access_token"],
        }

    codes = iter(f"0100153000000009{n:04d}" for n in range(100))

    def accepted(name: str, token: str) -> bool:
        if name == "catalogue":
            item = {
                "code": next(codes),
                "name": "测试事项",
                "kind": "public_service",
                "department": "市场监督管理局",
                "acceptance_conditions": "无",
                "materials": [],
                "steps": [{"name": "受理"}],
                "statutory_limit_days": 5,
                "committed_limit_days": 5,
                "fees": "free",
            }
            response = requests.post(
                f"{world.catalogue}/api/items", json=item, headers=bearer(token), timeout=TIMEOUT
            )
            assert response.status_code in (201, 401), response.text
            return response.status_code == 201
        path = "/api/licences" if name == "certificates" else "/api/cases"
        base = world.certificates if name == "certificates" else world.cases
        response = requests.get(base + path, headers=bearer(token), timeout=TIMEOUT)
        assert response.status_code in (200, 401), response.text
        return response.status_code == 200

    old = tokens()
    assert all(accepted(name, token) for name, token in old.items())  # each service has read the JWKS
    fetches = {name: world.rp(name).provider.jwks_fetches for name in old}

    new_kid = world.services.keys.rotate("RS256")[0]
    time.sleep(2.2)  # key_rotation_overlap: the new key is published first, then signs
    new = tokens()
    for name, token in new.items():
        assert kid_of(token) == new_kid != kid_of(old[name]), name
        assert accepted(name, token), name
        assert world.rp(name).provider.jwks_fetches == fetches[name] + 1, name  # one refetch for the kid
        assert accepted(name, old[name]), name  # the old key is still published
