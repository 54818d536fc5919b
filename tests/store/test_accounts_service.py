"""AccountService on both backends: registration without enumeration, one-time links, password change
and reset (sessions ended, back-channel logouts queued), real-name verification, platforms."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from idp.domain.assurance import LOA1
from idp.services.accounts import AccountError, AccountService, parse_contact
from idp.services.notifier import DatabaseNotifier, LogNotifier
from idp.sources.base import SourceUnavailable
from idp.store.models import LogoutOutboxRow, PersonRow

ISSUER = "http://idp.test"
ID_1 = "410105198503121235"
ID_2 = "440305199207182464"
ID_3 = "310101197801013570"
EXISTING = {
    "username": "zhangsan",
    "password": "correct horse battery",
    "name": "张三",
    "email": "zhangsan@example.cn",
    "phone_number": "13800000001",
}
PORTAL = {
    "client_id": "portal",
    "client_name": "Portal",
    "redirect_uris": ["https://portal.example/cb"],
    "token_endpoint_auth_method": "client_secret_basic",
    "backchannel_logout_uri": "https://portal.example/backchannel",
    "scope": "openid profile",
}


class FakeRegister:
    """A RealNameVerifier: knows some (name, number) pairs, or is down."""

    def __init__(self, known: dict[str, str] | None = None, *, down: bool = False) -> None:
        self.known = known or {}
        self.down = down
        self.calls: list[tuple[str, str]] = []

    def verify_real_name(self, name: str, id_number: str) -> bool:
        self.calls.append((name, id_number))
        if self.down:
            raise SourceUnavailable("population register: connection refused")
        return self.known.get(id_number) == name


def accounts_with(services, verifier=None, **kwargs) -> AccountService:
    return AccountService(
        services.persons,
        services.notifier,
        services.ephemeral,
        verifier,
        sso=services.sso,
        logout=services.logout,
        consent=services.consent,
        tokens=services.tokens,
        clients=services.clients,
        issuer=services.issuer,
        **kwargs,
    )


def inbox(services, recipient: str) -> list:
    assert isinstance(services.notifier, DatabaseNotifier)
    return services.notifier.recent(recipient)


def link_in(message, path: str) -> str:
    found = re.search(rf"{re.escape(ISSUER)}{path}/(\S+)", message.body)
    assert found, message.body
    return found.group(1)


@pytest.fixture
def existing(services):
    services.keys.ensure_keys()  # logout tokens are signed
    return services.persons.upsert(EXISTING)


# -- contacts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Li.Si@Example.CN", "email", "li.si@example.cn"),
        ("13912345678", "phone", "13912345678"),
        ("+86 139-1234-5678", "phone", "13912345678"),
        ("１３９１２３４５６７８", "phone", "13912345678"),  # full-width digits
    ],
)
def test_contacts_are_normalised(text, kind, value):
    contact = parse_contact(text)
    assert (contact.kind, contact.value) == (kind, value)


@pytest.mark.parametrize("text", ["", "lisi", "12345678901", "a@b", "a b@example.cn", "23912345678"])
def test_bad_contacts_are_refused(text):
    with pytest.raises(AccountError) as caught:
        parse_contact(text)
    assert caught.value.code == "invalid_contact"


# -- registration -----------------------------------------------------------------------------------


def test_registration_by_email_creates_a_level_1_account(services):
    accounts = services.accounts
    contact = accounts.start_registration("Li.Si@Example.CN")
    assert contact.masked == "l***@example.cn"
    (message,) = inbox(services, "li.si@example.cn")
    token = link_in(message, "/register/complete")
    assert accounts.registration_contact(token).value == "li.si@example.cn"
    person = accounts.complete_registration(token, "李四", "a good password", "a good password")
    assert person.username == "li.si@example.cn" and person.email_verified and not person.verified
    with services.tokens.engine().connect() as conn:
        row = conn.execute(select(PersonRow).where(PersonRow.id == person.id)).one()
    assert row.self_registered and row.verified_at is None and row.password_changed_at
    # the person signs in with the address; a password login of an unverified account is level 1
    assert services.persons.authenticate("li.si@example.cn", "a good password").id == person.id
    from idp.domain.assurance import acr_for

    assert acr_for(person.verified, ("pwd",)) == LOA1


def test_registration_by_phone_signs_in_with_the_phone(services):
    services.accounts.start_registration("139 1234 5678")
    token = link_in(inbox(services, "13912345678")[0], "/register/complete")
    person = services.accounts.complete_registration(token, "", "a good password", "a good password")
    assert person.phone_number == "13912345678" and person.name is None
    assert services.persons.authenticate("13912345678", "a good password").id == person.id


def test_registration_link_is_single_use(services):
    services.accounts.start_registration("wangwu@example.cn")
    token = link_in(inbox(services, "wangwu@example.cn")[0], "/register/complete")
    services.accounts.complete_registration(token, "", "a good password", "a good password")
    with pytest.raises(AccountError) as caught:
        services.accounts.complete_registration(token, "", "another password", "another password")
    assert caught.value.code == "link_invalid"
    assert services.accounts.registration_contact(token) is None


def test_an_invalid_form_does_not_spend_the_link(services):
    services.accounts.start_registration("wangwu@example.cn")
    token = link_in(inbox(services, "wangwu@example.cn")[0], "/register/complete")
    for password, confirm, code in [
        ("short", "short", "password_too_short"),
        ("a good password", "a different one", "password_mismatch"),
        ("x" * 257, "x" * 257, "password_too_long"),
    ]:
        with pytest.raises(AccountError) as caught:
            services.accounts.complete_registration(token, "", password, confirm)
        assert caught.value.code == code
    assert services.accounts.complete_registration(token, "", "a good password", "a good password")


def test_registration_link_expires(services):
    accounts = accounts_with(services, link_ttl=1)
    accounts.start_registration("zhaoliu@example.cn")
    token = link_in(inbox(services, "zhaoliu@example.cn")[0], "/register/complete")
    time.sleep(1.2)
    assert accounts.registration_contact(token) is None
    with pytest.raises(AccountError):
        accounts.complete_registration(token, "", "a good password", "a good password")


@pytest.mark.parametrize("contact", ["zhangsan@example.cn", "ZhangSan@Example.cn", "13800000001"])
def test_an_existing_contact_gets_a_notice_not_a_link(services, existing, contact):
    before = services.persons.get(existing.id)
    answer = services.accounts.start_registration(contact)
    assert answer == parse_contact(contact)  # the caller cannot tell the difference
    (message,) = inbox(services, parse_contact(contact).value)
    assert "/register/complete" not in message.body
    assert "http://idp.test/password/forgot" in message.body and "already" in message.body
    assert services.persons.get(existing.id) == before


def test_registration_messages_are_rate_limited_per_address(services):
    for _ in range(5):
        services.accounts.start_registration("spam@example.cn")
    assert len(inbox(services, "spam@example.cn")) == 3


def test_a_contact_taken_meanwhile_refuses_completion(services):
    services.accounts.start_registration("race@example.cn")
    token = link_in(inbox(services, "race@example.cn")[0], "/register/complete")
    services.persons.upsert({"username": "racer", "password": "a good password", "email": "race@example.cn"})
    with pytest.raises(AccountError) as caught:
        services.accounts.complete_registration(token, "", "a good password", "a good password")
    assert caught.value.code == "registration_failed"


# -- password change --------------------------------------------------------------------------------


def test_change_password_checks_the_current_one_and_ends_other_sessions(services, existing):
    services.clients.register(PORTAL)
    _, here = services.sso.start(existing.id, LOA1, ("pwd",), None)
    _, elsewhere = services.sso.start(existing.id, LOA1, ("pwd",), None)
    services.sso.record_client(elsewhere, "portal")
    with pytest.raises(AccountError) as caught:
        services.accounts.change_password(existing.id, "wrong", "a new password", "a new password")
    assert caught.value.code == "wrong_password"
    ended = services.accounts.change_password(
        existing.id, EXISTING["password"], "a new password", "a new password", keep_sid=here.sid
    )
    assert ended == 1
    assert services.sso.is_active(here.sid) and not services.sso.is_active(elsewhere.sid)
    assert services.persons.authenticate("zhangsan", "a new password")
    assert services.persons.authenticate("zhangsan", EXISTING["password"]) is None
    assert outbox_clients(services) == ["portal"]


def test_change_password_stops_after_repeated_wrong_current_passwords(services, existing):
    for _ in range(5):
        with pytest.raises(AccountError):
            services.accounts.change_password(existing.id, "wrong", "a new password", "a new password")
    with pytest.raises(AccountError) as caught:
        services.accounts.change_password(
            existing.id, EXISTING["password"], "a new password", "a new password"
        )
    assert caught.value.code == "too_many_attempts"


# -- password reset ---------------------------------------------------------------------------------


def outbox_clients(services) -> list[str]:
    with services.tokens.engine().connect() as conn:
        return [r.client_id for r in conn.execute(select(LogoutOutboxRow.client_id))]


@pytest.mark.parametrize("identifier", ["zhangsan", "13800000001", "ZhangSan@example.cn"])
def test_reset_link_goes_to_the_email_address(services, existing, identifier):
    services.accounts.request_password_reset(identifier)
    (message,) = inbox(services, "zhangsan@example.cn")
    assert "/password/reset/" in message.body


def test_reset_by_identity_number(services):
    services.persons.upsert({**EXISTING, "id_number": ID_1})
    services.accounts.request_password_reset(ID_1)
    assert len(inbox(services, "zhangsan@example.cn")) == 1


def test_reset_goes_to_the_phone_without_an_email(services):
    services.persons.upsert({**EXISTING, "email": None})
    services.accounts.request_password_reset("zhangsan")
    assert len(inbox(services, "13800000001")) == 1


def test_reset_request_for_unknown_account_sends_nothing(services, existing):
    assert services.accounts.request_password_reset("nobody") is None
    assert services.accounts.request_password_reset("") is None
    assert services.notifier.recent() == []


def test_reset_stores_only_a_digest(services, existing, backend):
    services.accounts.request_password_reset("zhangsan")
    token = link_in(inbox(services, "zhangsan@example.cn")[0], "/password/reset")
    assert services.accounts.reset_link_valid(token)
    if backend == "sqlite":
        from sqlalchemy import text

        with services.tokens.engine().connect() as conn:
            stored = " ".join(f"{k} {v}" for k, v in conn.execute(text("SELECT key, value FROM ephemeral")))
        assert token not in stored


def test_reset_is_single_use_and_ends_every_session(services, existing):
    services.clients.register(PORTAL)
    _, one = services.sso.start(existing.id, LOA1, ("pwd",), None)
    _, two = services.sso.start(existing.id, LOA1, ("pwd",), None)
    services.sso.record_client(one, "portal")
    services.accounts.request_password_reset("zhangsan")
    token = link_in(inbox(services, "zhangsan@example.cn")[0], "/password/reset")
    assert services.accounts.reset_password(token, "a brand new one", "a brand new one") == 2
    assert not services.sso.is_active(one.sid) and not services.sso.is_active(two.sid)
    assert outbox_clients(services) == ["portal"]
    assert services.persons.authenticate("zhangsan", "a brand new one")
    with pytest.raises(AccountError) as caught:
        services.accounts.reset_password(token, "yet another one", "yet another one")
    assert caught.value.code == "link_invalid"
    assert not services.accounts.reset_link_valid(token)


def test_reset_link_expires(services, existing):
    accounts = accounts_with(services, link_ttl=1)
    accounts.request_password_reset("zhangsan")
    token = link_in(inbox(services, "zhangsan@example.cn")[0], "/password/reset")
    time.sleep(1.2)
    with pytest.raises(AccountError) as caught:
        accounts.reset_password(token, "a brand new one", "a brand new one")
    assert caught.value.code == "link_invalid"
    assert services.persons.authenticate("zhangsan", EXISTING["password"])


def test_an_invalid_new_password_does_not_spend_the_reset_link(services, existing):
    services.accounts.request_password_reset("zhangsan")
    token = link_in(inbox(services, "zhangsan@example.cn")[0], "/password/reset")
    with pytest.raises(AccountError):
        services.accounts.reset_password(token, "short", "short")
    assert services.accounts.reset_password(token, "a brand new one", "a brand new one") == 0


def test_a_password_change_kills_older_reset_links(services, existing):
    services.accounts.request_password_reset("zhangsan")
    token = link_in(inbox(services, "zhangsan@example.cn")[0], "/password/reset")
    time.sleep(1.05)  # password_changed_at has whole seconds
    services.accounts.change_password(
        existing.id, EXISTING["password"], "changed meanwhile", "changed meanwhile"
    )
    with pytest.raises(AccountError) as caught:
        services.accounts.reset_password(token, "a brand new one", "a brand new one")
    assert caught.value.code == "link_invalid"


def test_two_concurrent_resets_with_one_link_one_wins(services, existing):
    from concurrent.futures import ThreadPoolExecutor

    services.accounts.request_password_reset("zhangsan")
    token = link_in(inbox(services, "zhangsan@example.cn")[0], "/password/reset")

    def attempt(n: int) -> bool:
        try:
            services.accounts.reset_password(token, f"new password {n}", f"new password {n}")
            return True
        except AccountError:
            return False

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, range(4)))
    assert results.count(True) == 1


# -- real-name verification -------------------------------------------------------------------------


@pytest.fixture
def self_registered(services):
    services.accounts.start_registration("lisi@example.cn")
    token = link_in(inbox(services, "lisi@example.cn")[0], "/register/complete")
    return services.accounts.complete_registration(token, "", "a good password", "a good password")


def test_verification_match_raises_the_account_to_level_2(services, self_registered):
    register = FakeRegister({ID_2: "李四"})
    person = accounts_with(services, register).verify_real_name(self_registered.id, " 李四 ", ID_2)
    assert person.verified and person.name == "李四" and person.id_number_masked == "440305********2464"
    assert register.calls == [("李四", ID_2)]
    with services.tokens.engine().connect() as conn:
        row = conn.execute(select(PersonRow).where(PersonRow.id == person.id)).one()
    assert row.verified_by == "register" and row.verified_at
    assert row.id_number_enc and ID_2.encode() not in row.id_number_enc and row.id_number_index
    assert services.persons.find_by_id_number(ID_2).id == person.id
    # the identity number now signs in too
    assert services.persons.authenticate(ID_2, "a good password").id == person.id
    with pytest.raises(AccountError) as caught:
        accounts_with(services, register).verify_real_name(person.id, "李四", ID_2)
    assert caught.value.code == "already_verified"


def test_verification_mismatch_changes_nothing(services, self_registered):
    register = FakeRegister({ID_2: "李四"})
    with pytest.raises(AccountError) as caught:
        accounts_with(services, register).verify_real_name(self_registered.id, "王五", ID_2)
    assert caught.value.code == "verification_failed"
    assert services.persons.get(self_registered.id) == self_registered


def test_register_unavailable_is_a_clear_error_and_changes_nothing(services, self_registered):
    with pytest.raises(AccountError) as caught:
        accounts_with(services, FakeRegister(down=True)).verify_real_name(self_registered.id, "李四", ID_2)
    assert caught.value.code == "source_unavailable" and "unavailable" in caught.value.message
    assert services.persons.get(self_registered.id) == self_registered
    with pytest.raises(AccountError) as caught:  # no register configured at all: the same answer
        services.accounts.verify_real_name(self_registered.id, "李四", ID_2)
    assert caught.value.code == "source_unavailable"


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("41010519850312123", "id_number_wrong_length"),
        ("410105198503121234", "id_number_bad_check_character"),
        ("41010519850312123A", "id_number_non_digit"),
    ],
)
def test_invalid_identity_numbers_never_reach_the_register(services, self_registered, number, code):
    register = FakeRegister({ID_2: "李四"})
    with pytest.raises(AccountError) as caught:
        accounts_with(services, register).verify_real_name(self_registered.id, "李四", number)
    assert caught.value.code == code and register.calls == []


def test_a_number_held_by_another_person_gets_the_mismatch_answer(services, self_registered):
    services.persons.upsert({**EXISTING, "id_number": ID_1})
    register = FakeRegister({ID_1: "张三"})
    with pytest.raises(AccountError) as caught:
        accounts_with(services, register).verify_real_name(self_registered.id, "张三", ID_1)
    assert caught.value.code == "verification_failed"
    assert not services.persons.get(self_registered.id).verified


def test_verification_attempts_are_limited(services, self_registered):
    register = FakeRegister({ID_3: "赵六"})
    accounts = accounts_with(services, register)
    for _ in range(5):
        with pytest.raises(AccountError):
            accounts.verify_real_name(self_registered.id, "别人", ID_3)
    with pytest.raises(AccountError) as caught:
        accounts.verify_real_name(self_registered.id, "赵六", ID_3)
    assert caught.value.code == "too_many_attempts" and len(register.calls) == 5


# -- platforms --------------------------------------------------------------------------------------


def save_tokens(services, person_id: str, client_id: str, suffix: str) -> None:
    from idp.domain.models import AuthContext

    now = int(time.time())
    services.tokens.save(
        client_id=client_id,
        scope="openid profile",
        context=AuthContext(person_id=person_id, grant_id=f"grant-{client_id}-{suffix}"),
        access_token=f"access-{client_id}-{suffix}",
        access_expires_at=now + 300,
        refresh_token=f"refresh-{client_id}-{suffix}",
        refresh_expires_at=now + 3600,
    )


def test_platforms_list_and_revoke(services, existing):
    services.clients.register(PORTAL)
    services.clients.register({**PORTAL, "client_id": "tax", "client_name": "Tax"})
    services.consent.grant(existing.id, "portal", ["openid", "profile"])
    save_tokens(services, existing.id, "portal", "1")
    save_tokens(services, existing.id, "tax", "1")  # a first-party platform: tokens, no consent
    platforms = services.accounts.platforms_of(existing.id)
    assert [(p.client_id, p.client_name, p.scopes) for p in platforms] == [
        ("portal", "Portal", ("openid", "profile")),
        ("tax", "Tax", ()),
    ]
    assert services.accounts.revoke_platform(existing.id, "portal") == 2
    assert not services.consent.covers(existing.id, "portal", ["openid"])
    assert services.tokens.find("refresh-portal-1").revoked_at is not None
    assert services.tokens.find("access-portal-1").revoked_at is not None
    assert services.tokens.find("refresh-tax-1").revoked_at is None  # other platforms untouched
    assert [p.client_id for p in services.accounts.platforms_of(existing.id)] == ["tax"]


# -- notifiers --------------------------------------------------------------------------------------


def test_database_notifier_records_and_lists_newest_first(services):
    services.notifier.send("a@example.cn", "one", "first")
    services.notifier.send("b@example.cn", "two", "second")
    assert [n.subject for n in services.notifier.recent()] == ["two", "one"]
    assert [n.body for n in services.notifier.recent("a@example.cn")] == ["first"]


def test_log_notifier_logs(caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="idp.services.notifier"):
        LogNotifier().send("a@example.cn", "subject", "the body")
    assert "a@example.cn" in caplog.text and "the body" in caplog.text
