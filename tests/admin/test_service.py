"""AdminService behaviour beyond the role matrix: search, locking, keys, audit filters, actors."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from admin_helpers import PASSWORD, console_login, service_account_token

from admin.auth import safe_next
from idp.services.admin import AdminInputError, NotFound
from idp.services.audit import AuditFilter

PLATFORM = {
    "client_id": "tax-bureau",
    "client_name": "电子税务局",
    "redirect_uris": ["https://tax.example/cb"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "openid profile",
}


def test_person_search_by_id_number_name_phone_and_username(services, admins):
    actor = admins["super_admin"].actor(services)
    target = services.persons.upsert(
        {
            "username": "zhao_liu",
            "password": PASSWORD,
            "name": "赵六",
            "id_number": "440305199207182464",
            "phone_number": "13900000009",
        }
    )
    for query in ("440305199207182464", "赵六", "13900000009", "zhao_", "ZHAO_LIU"):
        found = services.admin.search_persons(actor, query).items
        assert [p.id for p in found] == [target.id], query
    assert services.admin.search_persons(actor, "440305199207182").items == []  # no partial ID numbers
    # LIKE wildcards in the query are literal characters
    assert services.admin.search_persons(actor, "%").items == []
    everyone = services.admin.search_persons(actor, "", limit=2)
    assert len(everyone.items) == 2 and everyone.has_more


def test_viewing_a_person_is_a_read_of_their_data_that_they_can_see(services, admins):
    actor = admins["super_admin"].actor(services)
    target = admins["nobody"]
    detail = services.admin.view_person(actor, target.person_id)
    assert detail.person.id_number_masked and target.id_number not in repr(detail)
    assert services.audit.flush(10)
    reads = services.audit.events_for_subject(target.person_id)
    assert [(r.event, r.purpose, r.client_id) for r in reads] == [("data.read", "admin", None)]
    with pytest.raises(NotFound):
        services.admin.view_person(actor, "no-such-person")


def test_locking_ends_sessions_and_refuses_login_until_unlocked(client, services, admins):
    target = admins["platform_admin"]
    console_login(client, target, "/admin/login?next=/admin/")
    assert services.sso.sessions_of(target.person_id)
    actor = admins["super_admin"].actor(services)
    services.admin.lock_person(actor, target.person_id)
    assert services.sso.sessions_of(target.person_id) == []
    assert services.persons.authenticate(target.username, target.password) is None
    for _ in range(12):  # also held by the login throttle
        services.throttle.record_failure(target.username, "192.0.2.1")
    assert services.throttle.is_locked(target.username)
    services.admin.unlock_person(actor, target.person_id)
    assert services.persons.authenticate(target.username, target.password) is not None
    assert not services.throttle.is_locked(target.username)


def test_reset_mfa_removes_the_second_factor(services, admins):
    target = admins["entity_admin"]
    services.admin.reset_mfa(admins["super_admin"].actor(services), target.person_id)
    assert not services.mfa.is_enabled(target.person_id)
    assert services.mfa.requires_mfa(target.person_id)  # admins enrol again at the next sign-in


def test_the_only_signing_key_cannot_be_retired_but_a_rotated_one_can(services, admins):
    services.keys.ensure_keys()
    actor = admins["super_admin"].actor(services)
    current = next(k for k in services.admin.list_keys(actor) if k["alg"] == "RS256" and k["current"])
    with pytest.raises(AdminInputError, match="only RS256 key"):
        services.admin.retire_key(actor, current["kid"])
    new_kid = services.admin.rotate_keys(actor, "RS256")[0]
    # the new key waits for the overlap; the old one still signs, so the new one can be retired
    retired = services.admin.retire_key(actor, new_kid)
    assert retired["retired_at"] is not None
    with pytest.raises(AdminInputError, match="already retired"):
        services.admin.retire_key(actor, new_kid)
    with pytest.raises(AdminInputError, match="no signing key"):
        services.admin.retire_key(actor, "nope")
    published = {k["kid"] for k in json.loads(services.keys.jwks()[0])["keys"]}
    assert new_kid in published  # retired keys stay published until their tokens have expired


def test_audit_search_filters_by_event_prefix_actor_and_outcome(services, admins):
    actor = admins["super_admin"].actor(services)
    services.admin.create_client(actor, PLATFORM)
    with pytest.raises(Exception):  # noqa: B017 - any refusal; recorded below
        services.admin.list_keys(admins["auditor"].actor(services))
    assert services.audit.flush(10)
    auditor = admins["auditor"].actor(services)
    admin_events = services.admin.search_audit(auditor, AuditFilter(event="admin.")).items
    assert {"admin.client.created", "admin.denied"} <= {e["event"] for e in admin_events}
    denied = services.admin.search_audit(auditor, AuditFilter(outcome="failure", event="admin.denied")).items
    assert [e["actor"] for e in denied] == [admins["auditor"].person_id]
    mine = services.admin.search_audit(auditor, AuditFilter(actor=actor.id, client_id="tax-bureau")).items
    assert [e["event"] for e in mine] == ["admin.client.created"]
    lines = list(services.admin.export_audit(auditor, AuditFilter(event="admin.client.created"), "csv"))
    assert lines[0].startswith("id,at,event") and len(lines) == 2
    with pytest.raises(AdminInputError):
        services.admin.export_audit(auditor, AuditFilter(), "xml")


def test_client_edits_keep_secrets_and_disabled_state(client, services, admins):
    actor = admins["platform_admin"].actor(services)
    created, secret = services.admin.create_client(actor, PLATFORM)
    assert secret and created.secret_digest == services.clients.digest_secret(secret)
    with pytest.raises(AdminInputError, match="already registered"):
        services.admin.create_client(actor, PLATFORM)
    with pytest.raises(AdminInputError, match="Secrets are generated"):
        services.admin.update_client(actor, "tax-bureau", {**PLATFORM, "client_secret": "x" * 40})
    services.admin.set_client_disabled(actor, "tax-bureau", True)
    updated, again = services.admin.update_client(actor, "tax-bureau", {**PLATFORM, "client_name": "税务"})
    assert updated.disabled and updated.client_name == "税务" and again is None
    assert services.clients.verify_secret(updated, secret)  # editing does not change the secret
    with pytest.raises(AdminInputError) as bad:
        services.admin.update_client(actor, "tax-bureau", {**PLATFORM, "redirect_uris": ["ftp://x"]})
    assert bad.value.code == "invalid_client_metadata"


def test_only_a_super_admin_lets_a_client_obtain_admin_scopes(services, admins):
    from idp.services.admin import AdminDenied

    metadata = {**PLATFORM, "grant_types": ["client_credentials"], "redirect_uris": []}
    metadata["scope"] = "admin:auditor"
    with pytest.raises(AdminDenied):
        services.admin.create_client(admins["platform_admin"].actor(services), metadata)
    services.admin.create_client(admins["super_admin"].actor(services), metadata)
    with pytest.raises(AdminInputError, match="Unknown admin scope"):
        services.admin.update_client(
            admins["super_admin"].actor(services), "tax-bureau", {**metadata, "scope": "admin:root"}
        )


def test_disabling_a_service_account_ends_its_tokens(client, services, admins):
    token = service_account_token(client, services, "admin:auditor")
    assert services.admin.actor_for_token(token, None).roles == {"auditor"}
    services.admin.set_client_disabled(admins["platform_admin"].actor(services), "automation", True)
    assert services.admin.actor_for_token(token, None) is None
    record = services.tokens.find(token)
    assert record is not None and record.revoked_at is not None


def test_unknown_and_garbage_tokens_have_no_actor(services):
    for token in ("", "x", "a" * 5000, "\u0000\ud800"):
        assert services.admin.actor_for_token(token, None) is None


def test_roles_cannot_be_granted_to_a_locked_or_unknown_person(services, admins):
    actor = admins["super_admin"].actor(services)
    services.admin.lock_person(actor, admins["nobody"].person_id)
    with pytest.raises(AdminInputError, match="locked"):
        services.admin.grant_role(actor, admins["nobody"].person_id, "platform_admin")
    with pytest.raises(NotFound):
        services.admin.grant_role(actor, "11010519491231002X", "platform_admin")
    # a person can be named by resident ID number
    grant = services.admin.grant_role(actor, admins["entity_admin"].id_number, "platform_admin")
    assert grant.person_id == admins["entity_admin"].person_id
    assert services.admin.revoke_role(actor, grant.person_id, "platform_admin")
    assert not services.admin.revoke_role(actor, grant.person_id, "platform_admin")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/admin/clients?q=1", "/admin/clients?q=1"),
        ("https://evil.example/admin/", "/admin/"),
        ("//evil.example/admin/", "/admin/"),
        ("/admin/\\evil", "/admin/"),
        ("/account", "/admin/"),
        ("/admin/\r\nSet-Cookie:x", "/admin/"),
        (None, "/admin/"),
    ],
)
def test_the_console_only_returns_to_its_own_pages(value, expected):
    assert safe_next(value) == expected


def test_the_callback_refuses_a_forged_state_and_a_replayed_code(client, services, admins):
    console_login(client, admins["super_admin"], "/admin/login?next=/admin/")
    assert client.get("/admin/callback?state=forged&code=x").status_code == 400
    # a fresh sign-in whose callback is replayed: the code is single use
    start = client.get("/admin/login?next=/admin/")
    response = client.get(start.headers["Location"])
    callback = response.headers["Location"].removeprefix("http://idp.test")
    assert callback.startswith("/admin/callback?")
    assert client.get(callback).status_code == 302
    assert "unknown or expired" in client.get(callback).get_data(as_text=True)  # state is single use
    # the old code under a new, valid state: refused because the code was redeemed
    old_code = parse_qs(urlsplit(callback).query)["code"][0]
    new_state = parse_qs(urlsplit(client.get("/admin/login").headers["Location"]).query)["state"][0]
    replay = client.get(f"/admin/callback?{urlencode({'state': new_state, 'code': old_code})}")
    assert replay.status_code == 400 and "already used" in replay.get_data(as_text=True)


def test_the_console_client_is_registered_once_and_strongest_level(app, services):
    console = services.clients.get("admin-console")
    assert console is not None and console.is_public and console.first_party
    assert console.minimum_acr == "urn:cn:gov:loa:3"
    assert console.redirect_uris == ("http://idp.test/admin/callback",)


def test_editing_a_client_keeps_its_token_exchange_targets(services, admins):
    actor = admins["platform_admin"].actor(services)
    services.admin.create_client(actor, {**PLATFORM, "client_id": "certificates"})
    cases = {**PLATFORM, "client_id": "cases", "scope": "openid certificates:read"}
    cases["token_exchange"] = [{"audience": "certificates", "scopes": ["certificates:read"]}]
    services.admin.create_client(actor, cases)
    edited, _ = services.admin.update_client(actor, "cases", {**PLATFORM, "client_name": "办件"})
    assert [(t.audience, t.scopes) for t in edited.token_exchange] == [
        ("certificates", ("certificates:read",))
    ]
    cleared, _ = services.admin.update_client(actor, "cases", {**PLATFORM, "token_exchange": []})
    assert cleared.token_exchange == ()
