"""Audit events of the flows: logins, tokens, consent, logout and every read of a person's data."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from flows import PERSON, PORTAL, authorize_params, basic, follow, hidden_inputs, login_for_code, redeem
from sqlalchemy.orm import sessionmaker

from idp.app import create_app
from idp.services.audit import AuditService
from idp.store.audit import CHAIN_LOCK_KEY

THIRD_PARTY = {**PORTAL, "client_id": "tax", "client_name": "电子税务局", "first_party": False}


@pytest.fixture
def registered(services):
    services.clients.register(PORTAL)
    services.clients.register(THIRD_PARTY)
    services.persons.upsert(PERSON)
    yield services
    services.audit.close()


def events(services, kind: str | None = None) -> list[dict]:
    assert services.audit.flush(10)
    return [json.loads(line) for line in services.audit.export("jsonl", event=kind)]


def sign_in(client, identifier: str = PERSON["username"], password: str = PERSON["password"]):
    fields = hidden_inputs(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={**fields, "identifier": identifier, "password": password})


def test_logins_are_recorded_without_the_identifier_in_clear(client, registered):
    assert sign_in(client, PERSON["id_number"], "wrong password").status_code == 401
    assert sign_in(client).status_code == 302
    failed = events(registered, "login.failed")[-1]
    assert failed["actor"] == "anonymous" and failed["outcome"] == "failure" and failed["subject"] is None
    succeeded = events(registered, "login.succeeded")[-1]
    person = registered.persons.authenticate(PERSON["username"], PERSON["password"])
    assert succeeded["subject"] == person.id and succeeded["outcome"] == "success"
    everything = "\n".join(registered.audit.export("jsonl"))
    for secret in (PERSON["id_number"], PERSON["username"], PERSON["password"], "wrong password"):
        assert secret not in everything
    pseudonym = json.loads(failed["details"])["identifier"]
    assert pseudonym == registered.audit.pseudonym(PERSON["id_number"])


def test_userinfo_and_introspection_are_reads_for_the_token_scope(client, registered):
    auth, result = login_for_code(client)
    tokens = redeem(client, result["code"], auth).get_json()
    issued = events(registered, "token.issued")[-1]
    assert issued["client_id"] == "portal" and issued["purpose"] == "openid profile email"
    userinfo = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 200
    read = events(registered, "data.read")[-1]
    assert read["client_id"] == "portal" and read["actor"] == "portal"
    assert read["purpose"] == "openid profile email" and read["subject"] == userinfo.get_json()["sub"]
    assert json.loads(read["details"])["endpoint"] == "userinfo"
    introspection = client.post(
        "/introspect",
        data={"token": tokens["access_token"]},
        headers=basic(PORTAL["client_id"], PORTAL["client_secret"]),
    )
    assert introspection.get_json()["active"] is True
    read = events(registered, "data.read")[-1]
    assert json.loads(read["details"])["endpoint"] == "introspection" and read["subject"] == issued["subject"]
    assert registered.audit.verify().ok


def test_the_account_page_lists_who_read_my_data(client, registered):
    auth, result = login_for_code(client)
    tokens = redeem(client, result["code"], auth).get_json()
    client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert registered.audit.flush(10)
    page = client.get("/account/data-access?ui_locales=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Portal" in html and "Read your information on" in html and "Your email address" in html
    assert 'href="/account/data-access"' in client.get("/account").get_data(as_text=True)


def test_the_data_access_page_needs_a_session(client, registered):
    response = client.get("/account/data-access")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_consent_granted_is_recorded(client, registered):
    auth, result = login_for_code(client, THIRD_PARTY)
    assert "code" in result
    granted = events(registered, "consent.granted")[-1]
    assert granted["client_id"] == "tax" and granted["purpose"] == "openid profile email"
    assert granted["actor"] == granted["subject"] and granted["outcome"] == "success"


def test_consent_denied_is_recorded(client, registered):
    auth = authorize_params(THIRD_PARTY)
    response = client.get("/authorize?" + urlencode(auth.params))
    location = follow(
        client,
        response,
        THIRD_PARTY["redirect_uris"][0],
        username=PERSON["username"],
        password=PERSON["password"],
        consent=False,
    )
    assert "access_denied" in location
    denied = events(registered, "consent.denied")[-1]
    assert denied["outcome"] == "failure" and denied["client_id"] == "tax"


def test_logout_is_recorded(client, registered):
    sign_in(client)
    person = registered.persons.authenticate(PERSON["username"], PERSON["password"])
    sid = [s for s in registered.accounts.sessions_of(person.id, None)][0].sid
    registered.logout.end_session(sid, person.id)
    logout = events(registered, "logout")[-1]
    assert logout["subject"] == person.id and logout["actor"] == person.id


# -- a failing or slow audit never fails a login -----------------------------------------------------


def test_a_failing_audit_store_does_not_fail_a_login(settings, registered, tmp_path):
    broken = AuditService(sessionmaker(bind=sa.create_engine(f"sqlite:///{tmp_path}/missing/dir/audit.db")))
    app = create_app(settings, dataclasses.replace(registered, audit=broken))
    app.config["TESTING"] = True
    response = sign_in(app.test_client())
    assert response.status_code == 302
    broken.close(0.1)


def test_a_locked_audit_table_does_not_slow_a_login(settings, client, registered):
    """Another writer holds the chain lock: the login still completes; the event follows later."""
    if settings.database_url.startswith("sqlite"):
        pytest.skip("on SQLite the chain lock is the database write lock, which a login needs as well")
    engine = sa.create_engine(settings.database_url)
    release = threading.Event()
    locked = threading.Event()

    def hold_chain_lock() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": CHAIN_LOCK_KEY})
            locked.set()
            release.wait(20)
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": CHAIN_LOCK_KEY})
            conn.commit()

    holder = threading.Thread(target=hold_chain_lock)
    holder.start()
    try:
        assert locked.wait(10)
        assert sign_in(client).status_code == 302
        assert registered.audit.flush(0.5) is False  # the event waits in memory
    finally:
        release.set()
        holder.join()
        engine.dispose()
    assert registered.audit.flush(20)
    assert events(registered, "login.succeeded")


def test_a_failed_second_factor_is_recorded(client, registered):
    import pyotp

    pid = registered.persons.authenticate(PERSON["username"], PERSON["password"]).id
    secret = registered.mfa.begin_enrolment(pid).secret
    registered.mfa.confirm_enrolment(pid, pyotp.TOTP(secret).now())
    response = sign_in(client)
    assert response.status_code == 302 and "/mfa/verify" in response.headers["Location"]
    page = client.get(response.headers["Location"])
    fields = hidden_inputs(page.get_data(as_text=True))
    valid = {pyotp.TOTP(secret).at(time.time() + d) for d in (-30, 0, 30)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)
    assert client.post("/mfa/verify", data={**fields, "code": wrong}).status_code == 401
    failed = events(registered, "mfa.failed")[-1]
    assert failed["subject"] == pid and failed["outcome"] == "failure"
    assert json.loads(failed["details"]) == {"reason": "invalid_code", "step_up": False}
