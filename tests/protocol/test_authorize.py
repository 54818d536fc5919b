"""Authorization endpoint: request checks, error pages vs redirects, iss (RFC 9207), PKCE, prompt, max_age."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from flows import ISSUER, PERSON, PORTAL, authorize_params, follow, login_for_code, query_of, redeem

DEPARTMENT = {
    **PORTAL,
    "client_id": "department",
    "client_name": "Department",
    "client_secret": "department-secret-0123456789-0123456789",
    "redirect_uris": ["https://department.example/cb"],
    "first_party": False,
    "scope": "openid profile",
}


@pytest.fixture
def registered(services):
    services.clients.register(PORTAL)
    services.clients.register(DEPARTMENT)
    services.persons.upsert(PERSON)
    return services


def get_authorize(client, **params):
    return client.get("/authorize?" + urlencode(params))


def test_unknown_client_is_an_error_page_never_a_redirect(client, registered):
    auth = authorize_params(client_id="nobody")
    response = get_authorize(client, **auth.params)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "invalid_client" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/cb",
        "https://portal.example/cb/",
        "https://portal.example/cb?x=1",
        "HTTPS://portal.example/cb",
    ],
)
def test_unregistered_redirect_uri_is_an_error_page(client, registered, redirect_uri):
    auth = authorize_params(redirect_uri=redirect_uri)
    response = get_authorize(client, **auth.params)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_missing_redirect_uri_is_an_error_page(client, registered):
    auth = authorize_params()
    del auth.params["redirect_uri"]
    response = get_authorize(client, **auth.params)
    assert response.status_code == 400 and "Location" not in response.headers


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"prompt": "bogus"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
    ],
)
def test_bad_requests_redirect_with_error_state_and_iss(client, registered, change, error):
    auth = authorize_params(**change)
    response = get_authorize(client, **auth.params)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("https://portal.example/cb?")
    query = query_of(location)
    assert query["error"] == error
    assert query["state"] == auth.params["state"]
    assert query["iss"] == ISSUER
    assert "code" not in query


def test_repeated_parameter_is_refused(client, registered):
    auth = authorize_params()
    query = urlencode(auth.params) + "&scope=openid"
    response = client.get("/authorize?" + query)
    assert response.status_code == 400
    assert "repeated" in response.get_data(as_text=True)


def test_oversized_parameter_is_refused(client, registered):
    auth = authorize_params(state="x" * 5000)
    response = get_authorize(client, **auth.params)
    assert response.status_code == 400


def test_success_carries_code_state_and_iss(client, registered):
    auth, result = login_for_code(client)
    assert set(result) == {"code", "state", "iss"}
    assert result["iss"] == ISSUER and result["state"] == auth.params["state"]


def test_post_to_authorize_works_like_get(client, registered):
    auth = authorize_params()
    response = client.post("/authorize", data=auth.params)
    assert response.status_code == 302 and "/login?tx=" in response.headers["Location"]


def test_prompt_none_without_session_is_login_required(client, registered):
    auth = authorize_params(prompt="none")
    response = get_authorize(client, **auth.params)
    query = query_of(response.headers["Location"])
    assert (
        query["error"] == "login_required"
        and query["iss"] == ISSUER
        and query["state"] == auth.params["state"]
    )


def test_sso_second_client_with_prompt_none_is_silent(client, registered):
    login_for_code(client)
    registered.consent.grant(
        registered.persons.authenticate("zhangsan", PERSON["password"]).id,
        "department",
        ["openid", "profile"],
    )
    auth = authorize_params(DEPARTMENT, prompt="none", scope="openid profile")
    response = get_authorize(client, **auth.params)
    query = query_of(response.headers["Location"])
    assert "code" in query, query
    tokens = redeem(client, query["code"], auth, DEPARTMENT)
    assert tokens.status_code == 200


def test_prompt_none_needing_consent_is_consent_required(client, registered):
    login_for_code(client)
    auth = authorize_params(DEPARTMENT, prompt="none", scope="openid profile")
    response = get_authorize(client, **auth.params)
    assert query_of(response.headers["Location"])["error"] == "consent_required"


def test_consent_is_asked_once_then_remembered(client, registered):
    auth = authorize_params(DEPARTMENT, scope="openid profile")
    response = get_authorize(client, **auth.params)
    response = client.get(response.headers["Location"])  # login page
    assert 'name="password"' in response.get_data(as_text=True)
    location = follow(
        client, response, "https://department.example/cb", username="zhangsan", password=PERSON["password"]
    )
    assert "code" in query_of(location)
    # second time: session exists, consent remembered → straight back with a code
    auth = authorize_params(DEPARTMENT, scope="openid profile")
    response = get_authorize(client, **auth.params)
    assert "code" in query_of(response.headers["Location"])
    # prompt=consent asks again
    auth = authorize_params(DEPARTMENT, scope="openid profile", prompt="consent")
    response = get_authorize(client, **auth.params)
    assert "/consent?tx=" in response.headers["Location"]


def test_denied_consent_is_access_denied(client, registered):
    auth = authorize_params(DEPARTMENT, scope="openid profile")
    response = get_authorize(client, **auth.params)
    html = client.get(response.headers["Location"])
    from flows import follow as drive

    location = drive(
        client,
        html,
        "https://department.example/cb",
        username="zhangsan",
        password=PERSON["password"],
        consent=False,
    )
    query = query_of(location)
    assert query["error"] == "access_denied" and query["iss"] == ISSUER


def test_prompt_login_forces_a_new_login(client, registered):
    login_for_code(client)
    auth = authorize_params(prompt="login")
    response = get_authorize(client, **auth.params)
    assert "/login?tx=" in response.headers["Location"]


def test_max_age_zero_forces_login_and_max_age_large_does_not(client, registered):
    login_for_code(client)
    response = get_authorize(client, **authorize_params(max_age="0").params)
    assert "/login?tx=" in response.headers["Location"]
    response = get_authorize(client, **authorize_params(max_age="3600").params)
    assert "code" in query_of(response.headers["Location"])


def test_max_age_exceeded_with_prompt_none_is_login_required(client, registered, monkeypatch):
    login_for_code(client)
    import time as time_module

    real = time_module.time
    monkeypatch.setattr("idp.web.authorize.time.time", lambda: real() + 120)
    response = get_authorize(client, **authorize_params(max_age="60", prompt="none").params)
    assert query_of(response.headers["Location"])["error"] == "login_required"


def test_select_account_shows_chooser_then_continues(client, registered):
    login_for_code(client)
    response = get_authorize(client, **authorize_params(prompt="select_account").params)
    assert "/select-account?tx=" in response.headers["Location"]
    page = client.get(response.headers["Location"])
    location = follow(client, page, "https://portal.example/cb", username="x", password="y")
    assert "code" in query_of(location)


def test_acr_values_above_the_session_step_up_never_downgrade(client, registered):
    login_for_code(client)  # zhangsan reaches loa:2 (identity number on file), not loa:3
    response = get_authorize(client, **authorize_params(acr_values="urn:cn:gov:loa:3").params)
    # no second factor yet: set one up (tests/protocol/test_mfa.py), never a code at loa:2
    assert "/mfa/enrol?tx=" in response.headers["Location"] and "code=" not in response.headers["Location"]
    response = get_authorize(client, **authorize_params(acr_values="urn:cn:gov:loa:2").params)
    assert "code" in query_of(response.headers["Location"])


def test_login_hint_prefills_the_identifier(client, registered):
    response = get_authorize(client, **authorize_params(login_hint="13800000001").params)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'value="13800000001"' in page


def test_ui_locales_selects_the_page_language(client, registered):
    response = get_authorize(client, **authorize_params(ui_locales="en").params)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Sign in" in page and 'lang="en"' in page
    response = get_authorize(client, **authorize_params(ui_locales="zh-CN").params)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "登录" in page


def test_expired_transaction_is_a_readable_page(client, registered):
    response = client.get("/authorize/resume?tx=does-not-exist")
    assert response.status_code == 400 and "text/html" in response.content_type
    response = client.get("/login?tx=does-not-exist")
    assert response.status_code == 400


def test_a_client_minimum_level_applies_without_acr_values(client, registered):
    strict = {
        **PORTAL,
        "client_id": "strict",
        "redirect_uris": ["https://strict.example/cb"],
        "minimum_acr": "urn:cn:gov:loa:2",
    }
    registered.clients.register(strict)
    registered.persons.upsert({"username": "selfreg", "password": "long enough pw"})  # level 1 only
    auth = authorize_params(strict)
    response = get_authorize(client, **auth.params)
    location = follow(
        client,
        client.get(response.headers["Location"]),
        "https://strict.example/cb",
        username="selfreg",
        password="long enough pw",
    )
    assert query_of(location)["error"] == "unmet_authentication_requirements"


def test_minimum_acr_must_be_a_known_level(registered):
    from idp.services.clients import ClientMetadataError

    with pytest.raises(ClientMetadataError, match="minimum_acr"):
        registered.clients.register({**PORTAL, "client_id": "x", "minimum_acr": "gold"})


@pytest.mark.parametrize("path", ["/consent", "/entity/select", "/select-account"])
def test_interaction_pages_with_an_unknown_sign_in_are_readable_errors(client, registered, path):
    response = client.get(f"{path}?tx=nope")
    assert response.status_code == 400 and "text/html" in response.content_type


@pytest.mark.parametrize("path", ["/consent", "/entity/select", "/select-account"])
def test_interaction_pages_without_a_session_send_the_browser_to_log_in(client, registered, path):
    response = get_authorize(client, **authorize_params().params)
    tx = response.headers["Location"].split("tx=")[1]
    response = client.get(f"{path}?tx={tx}")
    assert response.status_code == 302 and f"/login?tx={tx}" in response.headers["Location"]
