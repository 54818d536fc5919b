"""Brute-force protection: growing delays, a temporary lock, a per-address limit, admin unlock; and the
login page answering a locked account exactly like a wrong password or an unknown user."""

from __future__ import annotations

import re
import time

import pytest
from flows import PERSON, hidden_inputs

from idp.services.throttling import LoginThrottle, ThrottlePolicy

ADDRESS = "203.0.113.7"


class Clock:
    """A whole-second clock the test moves; it starts at the real time, as the store's TTLs do."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(services, clock) -> LoginThrottle:
    return LoginThrottle(services.ephemeral, clock=clock)


def fail(throttle: LoginThrottle, times: int, identifier: str = "zhangsan", address: str = ADDRESS) -> None:
    for _ in range(times):
        throttle.record_failure(identifier, address)


def test_first_failures_cost_nothing(throttle):
    fail(throttle, 2)
    assert throttle.check("zhangsan", ADDRESS).allowed


def test_delays_grow_and_are_capped(throttle):
    fail(throttle, 3)
    waits = []
    for _ in range(6):  # failures 4..9
        throttle.record_failure("zhangsan", ADDRESS)
        verdict = throttle.check("zhangsan", ADDRESS)
        assert not verdict.allowed
        waits.append(verdict.retry_after)
    assert waits == [2, 4, 8, 16, 32, 60]


def test_delay_passes_with_time(throttle, clock):
    fail(throttle, 5)  # the fifth failure asks for 4 s
    assert throttle.check("zhangsan", ADDRESS).retry_after == 4
    clock.now += 4
    assert throttle.check("zhangsan", ADDRESS).allowed
    assert not throttle.is_locked("zhangsan")


def test_lock_after_ten_failures_for_fifteen_minutes(throttle, clock):
    fail(throttle, 9)
    assert not throttle.is_locked("zhangsan")
    throttle.record_failure("zhangsan", ADDRESS)
    assert throttle.is_locked("zhangsan")
    verdict = throttle.check("zhangsan", ADDRESS)
    assert not verdict.allowed and verdict.retry_after == 15 * 60
    fail(throttle, 5)  # attempts during the lock do not extend it
    clock.now += 15 * 60
    assert not throttle.is_locked("zhangsan")
    assert throttle.check("zhangsan", ADDRESS).allowed


def test_lock_is_per_account_however_typed(throttle):
    fail(throttle, 10, identifier="ZhangSan ")
    assert throttle.is_locked("zhangsan")
    assert throttle.is_locked("ＺＨＡＮＧＳＡＮ")  # full-width letters (NFKC)
    assert not throttle.check("zhangsan", "198.51.100.1").allowed  # from any address
    assert throttle.check("lisi", "198.51.100.1").allowed


def test_keys_hold_no_identifier_or_address(services, throttle, backend):
    fail(throttle, 10, identifier="zhangsan-secret-name", address="192.0.2.99")
    if backend == "sqlite":
        with services.tokens.engine().connect() as conn:
            from sqlalchemy import text

            rows = conn.execute(text("SELECT key, value FROM ephemeral")).all()
        joined = " ".join(f"{k} {v}" for k, v in rows)
        assert "zhangsan-secret-name" not in joined and "192.0.2.99" not in joined
        assert any(k.startswith("login-lock:acct:") for k, _ in rows)


def test_address_limit_blocks_every_account_from_that_address(throttle):
    for n in range(49):
        throttle.record_failure(f"user{n}", ADDRESS)
    assert throttle.check("someone-else", ADDRESS).allowed
    throttle.record_failure("user49", ADDRESS)
    verdict = throttle.check("someone-else", ADDRESS)
    assert not verdict.allowed and verdict.retry_after == 15 * 60
    assert throttle.check("someone-else", "198.51.100.1").allowed  # other addresses are not affected
    assert not throttle.is_locked("user1")  # one failure per account: no account is locked
    throttle.unlock_address(ADDRESS)
    assert throttle.check("someone-else", ADDRESS).allowed


def test_admin_unlock(throttle):
    fail(throttle, 10)
    assert throttle.is_locked("zhangsan")
    throttle.unlock("  ZHANGSAN")
    assert not throttle.is_locked("zhangsan")
    assert throttle.check("zhangsan", ADDRESS).allowed
    throttle.record_failure("zhangsan", ADDRESS)  # counting starts afresh: one failure, no delay
    assert throttle.check("zhangsan", ADDRESS).allowed


def test_success_clears_the_account_counter(throttle):
    fail(throttle, 5)
    throttle.record(  # the one-line form the login view uses
        "zhangsan", ADDRESS, succeeded=True
    )
    assert throttle.check("zhangsan", ADDRESS).allowed
    fail(throttle, 2)
    assert throttle.check("zhangsan", ADDRESS).allowed  # 2 failures after the success, not 7


def test_success_does_not_clear_the_address_counter(services, clock):
    throttle = LoginThrottle(services.ephemeral, clock=clock, policy=ThrottlePolicy(address_limit=3))
    fail(throttle, 2, identifier="a")
    throttle.record_success("a", ADDRESS)
    throttle.record_failure("b", ADDRESS)
    assert not throttle.check("c", ADDRESS).allowed


def test_empty_identifier_counts_only_the_address(throttle):
    fail(throttle, 12, identifier="")
    assert throttle.check("", ADDRESS).allowed  # nothing to lock; the address is below its limit
    assert not throttle.is_locked("")


# -- the login page ---------------------------------------------------------------------------------


@pytest.fixture
def person(services):
    services.persons.upsert(PERSON)
    return PERSON


def login_page(client, identifier: str, password: str):
    fields = hidden_inputs(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login",
        data={**fields, "identifier": identifier, "password": password},
        environ_base={"REMOTE_ADDR": ADDRESS},
    )
    return response


def session_cookie(response) -> bool:
    return any(c.startswith("idp_session=") for c in response.headers.getlist("Set-Cookie"))


def comparable(response, identifier: str) -> tuple[int, str]:
    """Status and page with the per-request parts (CSRF token, echoed identifier) blanked."""
    page = response.get_data(as_text=True)
    page = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', page)
    return response.status_code, page.replace(f'value="{identifier}"', 'value=""')


def test_unknown_user_and_wrong_password_get_the_same_answer(client, person):
    wrong = login_page(client, PERSON["username"], "not the password")
    unknown = login_page(client, "nobody-here", "not the password")
    assert wrong.status_code == 401
    assert comparable(wrong, PERSON["username"]) == comparable(unknown, "nobody-here")
    assert not session_cookie(wrong)


def test_locked_account_is_answered_like_a_wrong_password(client, person, services):
    wrong = login_page(client, PERSON["username"], "not the password")
    unknown = login_page(client, "nobody-here", "not the password")
    for _ in range(9):
        login_page(client, PERSON["username"], "not the password")
    assert services.throttle.is_locked(PERSON["username"])
    # the right password on a locked account: refused, word for word like a wrong one
    locked = login_page(client, PERSON["username"], PERSON["password"])
    assert comparable(locked, PERSON["username"]) == comparable(wrong, PERSON["username"])
    assert comparable(locked, PERSON["username"]) == comparable(unknown, "nobody-here")
    assert not session_cookie(locked)
    # an unknown account is locked the same way (so a lock does not reveal that an account exists)
    for _ in range(10):
        login_page(client, "nobody-here", "not the password")
    assert services.throttle.is_locked("nobody-here")
    # an admin unlocks: the right password works again
    services.throttle.unlock(PERSON["username"])
    ok = login_page(client, PERSON["username"], PERSON["password"])
    assert ok.status_code == 302 and session_cookie(ok)
