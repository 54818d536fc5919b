"""Second factor in the flows: TOTP at login, step-up for acr_values, enrolment, what the ID token says."""

from __future__ import annotations

import dataclasses
import re
import time
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import pyotp
import pytest
from flows import PERSON, PORTAL, authorize_params, follow, hidden_inputs, login_for_code, query_of, redeem
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.services.mfa import MfaService
from idp.store.db import build_engine, build_sessionmaker
from idp.store.key_encryption import KeyEncryptor, load_or_create_kek

LOA2, LOA3 = "urn:cn:gov:loa:2", "urn:cn:gov:loa:3"
CALLBACK = PORTAL["redirect_uris"][0]
UNVERIFIED = {"username": "wangwu", "password": "wangwu password 1", "name": "王五"}
ADMIN = {
    "username": "admin1",
    "password": "admin password 1",
    "name": "管理员",
    "id_number": "11010519491231002X",
}


@pytest.fixture
def registered(services):
    services.clients.register(PORTAL)
    services.persons.upsert(PERSON)
    return services


def person_id(services, person=PERSON) -> str:
    return services.persons.authenticate(person["username"], person["password"]).id


def totp_enrolled(services, person=PERSON) -> tuple[str, list[str]]:
    """TOTP turned on through the service (as the account page does); the secret and recovery codes."""
    pid = person_id(services, person)
    secret = services.mfa.begin_enrolment(pid).secret
    # confirmed with the previous time step's code: the current one stays free for the flow under test
    return secret, services.mfa.confirm_enrolment(pid, pyotp.TOTP(secret).at(time.time() - 30))


def start(client, **params):
    auth = authorize_params(**params)
    return auth, client.get("/authorize?" + urlencode(auth.params))


def submit_form(client, page, **fields):
    """Post the page's first form with its hidden fields plus `fields`."""
    html = page.get_data(as_text=True)
    action = unescape(re.search(r'<form[^>]*action="([^"]*)"', html).group(1))
    return client.post(action, data={**hidden_inputs(html), **fields})


def password_login(client, response, person=PERSON):
    """From an /authorize redirect to the login page, through the password form."""
    assert "/login?tx=" in response.headers["Location"]
    page = client.get(response.headers["Location"])
    return submit_form(client, page, identifier=person["username"], password=person["password"])


def id_token_claims(client, auth, code) -> dict:
    response = redeem(client, code, auth)
    assert response.status_code == 200, response.get_json()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    return jwt.decode(response.get_json()["id_token"], keys, algorithms=["RS256"]).claims


def enrolment_secret(html: str) -> str:
    return re.search(r'<span class="code" lang="en">([A-Z2-7 ]+)</span>', html).group(1).replace(" ", "")


# -- login with TOTP enabled ----------------------------------------------------------------------


def test_login_with_totp_asks_for_the_code_and_the_id_token_says_so(client, registered):
    secret, _ = totp_enrolled(registered)
    auth, response = start(client)
    response = password_login(client, response)
    assert response.status_code == 302 and "/mfa/verify?tx=" in response.headers["Location"]
    assert "idp_session=" not in response.headers.get("Set-Cookie", "")  # no session before the factor
    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="code"' in html and "两步验证" in html
    response = submit_form(client, page, code=pyotp.TOTP(secret).now())
    assert "/authorize/resume?tx=" in response.headers["Location"]
    location = follow(client, response, CALLBACK, username="-", password="-")
    claims = id_token_claims(client, auth, query_of(location)["code"])
    assert claims["acr"] == LOA3 and claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["nonce"] == auth.params["nonce"]


def test_a_wrong_code_shows_an_error_and_signs_nobody_in(client, registered):
    secret, _ = totp_enrolled(registered)
    _, response = start(client)
    page = client.get(password_login(client, response).headers["Location"])
    wrong = submit_form(client, page, code="000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    assert wrong.status_code == 401 and 'role="alert"' in wrong.get_data(as_text=True)
    assert "idp_session=" not in wrong.headers.get("Set-Cookie", "")
    # nothing was signed in: a silent request still needs a login
    _, response = start(client, prompt="none")
    assert query_of(response.headers["Location"])["error"] == "login_required"


def test_a_recovery_code_completes_the_login_once(client, registered):
    _, recovery = totp_enrolled(registered)
    auth, response = start(client)
    page = client.get(password_login(client, response).headers["Location"])
    response = submit_form(client, page, code=recovery[0].upper())
    location = follow(client, response, CALLBACK, username="-", password="-")
    claims = id_token_claims(client, auth, query_of(location)["code"])
    assert claims["acr"] == LOA3 and claims["amr"] == ["pwd", "rec", "mfa"]
    # the same code again, in a new login, is refused
    _, response = start(client, prompt="login")
    page = client.get(password_login(client, response).headers["Location"])
    assert submit_form(client, page, code=recovery[0]).status_code == 401


def test_the_same_totp_code_cannot_sign_in_twice(client, registered):
    secret, _ = totp_enrolled(registered)
    code = pyotp.TOTP(secret).now()
    _, response = start(client)
    page = client.get(password_login(client, response).headers["Location"])
    assert submit_form(client, page, code=code).status_code == 302
    _, response = start(client, prompt="login")
    page = client.get(password_login(client, response).headers["Location"])
    assert submit_form(client, page, code=code).status_code == 401


def test_verify_page_without_a_password_first_goes_to_login(client, registered):
    totp_enrolled(registered)
    response = client.get("/mfa/verify")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# -- step-up --------------------------------------------------------------------------------------


def test_step_up_from_a_level_2_session_asks_the_second_factor_not_the_password(client, registered):
    login_for_code(client)  # a password-only session: loa:2
    secret, _ = totp_enrolled(registered)  # TOTP turned on afterwards (e.g. on the account page)
    auth, response = start(client, acr_values=LOA3)
    location = response.headers["Location"]
    assert "/mfa/verify?tx=" in location and "/login" not in location
    page = client.get(location)
    assert 'name="password"' not in page.get_data(as_text=True)
    response = submit_form(client, page, code=pyotp.TOTP(secret).now())
    location = follow(client, response, CALLBACK, username="-", password="-")
    claims = id_token_claims(client, auth, query_of(location)["code"])
    assert claims["acr"] == LOA3 and claims["amr"] == ["pwd", "otp", "mfa"]
    # the session itself was raised: the next loa:3 request is silent
    _, response = start(client, acr_values=LOA3, prompt="none")
    assert "code" in query_of(response.headers["Location"])


def test_step_up_with_prompt_none_is_interaction_required(client, registered):
    login_for_code(client)
    totp_enrolled(registered)
    auth, response = start(client, acr_values=LOA3, prompt="none")
    query = query_of(response.headers["Location"])
    assert query["error"] == "interaction_required" and "code" not in query
    assert query["state"] == auth.params["state"]


def test_a_wrong_step_up_code_does_not_upgrade_the_session(client, registered):
    auth, result = login_for_code(client)
    secret, _ = totp_enrolled(registered)
    _, response = start(client, acr_values=LOA3)
    page = client.get(response.headers["Location"])
    wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    refused = submit_form(client, page, code=wrong)
    assert refused.status_code == 401 and 'role="alert"' in refused.get_data(as_text=True)
    _, response = start(client, acr_values=LOA3, prompt="none")
    assert query_of(response.headers["Location"])["error"] == "interaction_required"
    auth, response = start(client)  # no acr asked: the session is still only loa:2
    claims = id_token_claims(client, auth, query_of(response.headers["Location"])["code"])
    assert claims["acr"] == LOA2 and claims["amr"] == ["pwd"]


def test_step_up_without_totp_enrols_then_continues(client, registered):
    login_for_code(client)
    auth, response = start(client, acr_values=LOA3)
    location = response.headers["Location"]
    assert "/mfa/enrol?tx=" in location
    page = client.get(location)
    html = page.get_data(as_text=True)
    assert 'src="data:image/svg+xml;base64,' in html and "<script" not in html
    secret = enrolment_secret(html)
    shown = submit_form(client, page, code=pyotp.TOTP(secret).now())
    html = shown.get_data(as_text=True)
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", html)
    assert shown.status_code == 200 and len(codes) == 10
    assert shown.headers["Cache-Control"] == "no-store"
    action = re.search(r'<form method="get" action="([^"]*)"', html).group(1)
    response = client.get(action, query_string=hidden_inputs(html))
    location = follow(client, response, CALLBACK, username="-", password="-")
    claims = id_token_claims(client, auth, query_of(location)["code"])
    assert claims["acr"] == LOA3 and claims["amr"] == ["pwd", "otp", "mfa"]


def test_unverified_person_asking_for_level_2_is_unmet(client, registered):
    registered.persons.upsert(UNVERIFIED)
    login_for_code(client, person=UNVERIFIED)
    for level in (LOA2, LOA3):
        _, response = start(client, acr_values=level)
        query = query_of(response.headers["Location"])
        assert query["error"] == "unmet_authentication_requirements" and "code" not in query


def test_unverified_person_with_totp_still_gets_level_1(client, registered):
    registered.persons.upsert(UNVERIFIED)
    secret, _ = totp_enrolled(registered, UNVERIFIED)
    auth, response = start(client)
    page = client.get(password_login(client, response, UNVERIFIED).headers["Location"])
    response = submit_form(client, page, code=pyotp.TOTP(secret).now())
    location = follow(client, response, CALLBACK, username="-", password="-")
    claims = id_token_claims(client, auth, query_of(location)["code"])
    assert claims["acr"] == "urn:cn:gov:loa:1" and claims["amr"] == ["pwd", "otp", "mfa"]


# -- persons who must use a second factor ---------------------------------------------------------


def with_rule(settings, services, required_for):
    """The app with `required_for` as the rule of who must use a second factor; and its engine."""
    from idp.app import create_app

    engine = build_engine(settings.database_url)
    encryptor = KeyEncryptor(load_or_create_kek(settings.key_encryption_key, Path(settings.key_dir)))
    mfa = MfaService(
        build_sessionmaker(engine),
        encryptor,
        services.ephemeral,
        issuer_name="idp.test",
        required_for=required_for,
    )
    app = create_app(settings, dataclasses.replace(services, mfa=mfa))
    app.config["TESTING"] = True
    return app.test_client(), dataclasses.replace(services, mfa=mfa), engine


@pytest.fixture
def admin_required(settings, services):
    """The app with a rule saying ADMIN must use a second factor (the entity service plugs in later)."""
    services.clients.register(PORTAL)
    admin = services.persons.upsert(ADMIN)
    client, replaced, engine = with_rule(settings, services, lambda pid: pid == admin.id)
    yield client, replaced
    engine.dispose()


def test_a_person_who_must_use_mfa_without_totp_is_sent_to_enrolment(admin_required):
    client, services = admin_required
    auth, response = start(client)
    response = password_login(client, response, ADMIN)
    assert "/mfa/enrol?tx=" in response.headers["Location"]
    assert "idp_session=" not in response.headers.get("Set-Cookie", "")
    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert "须先开启两步验证" in html
    shown = submit_form(client, page, code=pyotp.TOTP(enrolment_secret(html)).now())
    assert "idp_session=" in " ".join(shown.headers.getlist("Set-Cookie"))  # the login completes here
    html = shown.get_data(as_text=True)
    action = re.search(r'<form method="get" action="([^"]*)"', html).group(1)
    response = client.get(action, query_string=hidden_inputs(html))
    location = follow(client, response, CALLBACK, username="-", password="-")
    claims = id_token_claims(client, auth, query_of(location)["code"])
    assert claims["acr"] == LOA3 and claims["amr"] == ["pwd", "otp", "mfa"]


def test_an_existing_password_only_session_of_such_a_person_must_add_the_factor(admin_required):
    client, services = admin_required
    admin_id = person_id(services, ADMIN)
    handle, _ = services.sso.start(admin_id, LOA2, ("pwd",), None)  # e.g. from before the rule
    client.set_cookie("idp_session", handle)
    _, response = start(client)
    assert "/mfa/enrol?tx=" in response.headers["Location"]
    _, response = start(client, prompt="none")
    assert query_of(response.headers["Location"])["error"] == "interaction_required"


def test_cancel_at_enrolment_is_access_denied(admin_required):
    client, _ = admin_required
    auth, response = start(client)
    page = client.get(password_login(client, response, ADMIN).headers["Location"])
    html = page.get_data(as_text=True)
    response = client.post("/mfa/enrol", data={**hidden_inputs(html), "cancel": "1"})
    query = query_of(response.headers["Location"])
    assert query["error"] == "access_denied" and query["state"] == auth.params["state"]


# -- the account page -----------------------------------------------------------------------------


def test_account_page_enrols_a_signed_in_person(client, registered):
    login_for_code(client)
    page = client.get("/account/mfa")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'name="from" value="account"' in html
    shown = submit_form(client, page, code=pyotp.TOTP(enrolment_secret(html)).now())
    assert len(re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", shown.get_data(as_text=True))) == 10
    status = client.get("/account/mfa", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Two-step verification is on" in status and "Unused recovery codes: 10" in status
    _, response = start(client, acr_values=LOA3, prompt="none")  # the session was raised too
    assert "code" in query_of(response.headers["Location"])


def test_account_page_needs_a_session(client, registered):
    response = client.get("/account/mfa")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_acr_names_are_configurable(settings, services):
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import KeySet

    from idp.app import build_services, create_app

    custom = settings.with_overrides(acr_levels="gov:low gov:substantial gov:high")
    built = build_services(custom)
    built.clients.register({**PORTAL, "minimum_acr": "gov:substantial"})
    built.persons.upsert(PERSON)
    client = create_app(custom, built).test_client()
    meta = client.get("/.well-known/openid-configuration").get_json()
    assert meta["acr_values_supported"] == ["gov:low", "gov:substantial", "gov:high"]
    auth, result = login_for_code(client)
    tokens = redeem(client, result["code"], auth).get_json()
    claims = jose_jwt.decode(
        tokens["id_token"], KeySet.import_key_set(client.get("/jwks.json").get_json())
    ).claims
    assert claims["acr"] == "gov:substantial"


def test_the_second_factor_rule_is_asked_once_per_login_and_again_at_every_sso_authorization(
    settings, services
):
    """A login applies the rule (a password login that needs a factor is held for it); the same
    transaction's resume trusts that answer instead of asking again, but an authorization from an
    existing SSO session asks every time (an authorisation granted since then counts at once)."""
    services.clients.register(PORTAL)
    services.persons.upsert(PERSON)
    asked: list[str] = []
    # records the question, answers no
    client, _, engine = with_rule(settings, services, lambda pid: asked.append(pid) is not None)
    try:
        auth, response = start(client)
        location = follow(client, password_login(client, response), CALLBACK, username="-", password="-")
        assert "code" in query_of(location) and len(asked) == 1
        auth, response = start(client)  # SSO: no login in this transaction
        assert "code" in query_of(response.headers["Location"]) and len(asked) == 2
    finally:
        engine.dispose()
