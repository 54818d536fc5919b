"""RegistrationService on the backend under test: initial access tokens (issue, list, revoke, spend
atomically under concurrency) and the registration's lifecycle below the HTTP layer."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from idp.services.registration import RegistrationError, RegistrationService
from idp.store.db import build_sessionmaker

ISSUER = "http://idp.test"
WEB = {"client_name": "Licences", "redirect_uris": ["https://licences.example/cb"]}


def at(services, clock) -> RegistrationService:
    return RegistrationService(
        build_sessionmaker(services.tokens.engine()),
        services.clients,
        tokens=services.tokens,
        issuer=ISSUER,
        clock=clock,
    )


def column(services, name: str, client_id: str):
    with services.tokens.engine().connect() as conn:
        return conn.execute(
            sa.text(f"SELECT {name} FROM clients WHERE client_id = :id"), {"id": client_id}
        ).scalar_one()


def test_issue_returns_the_value_once_and_stores_its_digest(services):
    token, value = services.registration.issue_initial_token("admin:p1", label="税务局", max_uses=3)
    assert len(value) >= 43 and value not in repr(token)
    assert token.label == "税务局" and token.created_by == "admin:p1"
    assert token.max_uses == 3 and token.uses == 0 and token.revoked_at is None
    assert token.expires_at - token.created_at == 86400
    assert services.registration.find_initial_token(value) == token
    [listed] = services.registration.list_initial_tokens()
    assert listed == token


@pytest.mark.parametrize(
    "options",
    [
        {"ttl_seconds": 59},
        {"ttl_seconds": 30 * 86400 + 1},
        {"ttl_seconds": "3600"},
        {"ttl_seconds": 3600.5},
        {"ttl_seconds": True},
        {"max_uses": 0},
        {"max_uses": 1001},
        {"max_uses": False},
        {"label": "x" * 201},
        {"label": "bad\x00label"},
        {"label": 5},
        {"created_by": ""},
        {"created_by": "x" * 129},
    ],
)
def test_issue_refuses_out_of_range_options(services, options):
    arguments = {"created_by": "admin:p1", **options}
    with pytest.raises(RegistrationError) as raised:
        services.registration.issue_initial_token(**arguments)
    assert isinstance(raised.value, ValueError) and raised.value.code == "invalid_request"
    assert raised.value.message
    assert services.registration.list_initial_tokens(include_inactive=True) == []


def test_the_limits_themselves_are_allowed(services):
    services.registration.issue_initial_token("cli", ttl_seconds=60, max_uses=1)
    services.registration.issue_initial_token("cli", ttl_seconds=30 * 86400, max_uses=1000)
    assert len(services.registration.list_initial_tokens()) == 2


def test_list_shows_inactive_tokens_only_when_asked(services):
    active, _ = services.registration.issue_initial_token("cli", label="active")
    revoked, _ = services.registration.issue_initial_token("cli", label="revoked")
    used, used_value = services.registration.issue_initial_token("cli", label="used")
    expired, _ = at(services, lambda: time.time() - 3600).issue_initial_token(
        "cli", label="expired", ttl_seconds=60
    )
    assert services.registration.revoke_initial_token(revoked.id)
    assert services.registration.consume_initial_token(used_value) is not None
    assert [t.label for t in services.registration.list_initial_tokens()] == ["active"]
    everything = {t.label: t for t in services.registration.list_initial_tokens(include_inactive=True)}
    assert set(everything) == {"active", "revoked", "used", "expired"}
    assert everything["revoked"].revoked_at is not None and everything["used"].uses == 1
    now = time.time()
    assert [label for label, t in everything.items() if t.is_active(now)] == ["active"]


def test_revoke_is_true_once(services):
    token, value = services.registration.issue_initial_token("cli")
    assert services.registration.revoke_initial_token(token.id) is True
    assert services.registration.revoke_initial_token(token.id) is False
    assert services.registration.consume_initial_token(value) is None
    for bad in ("no-such-id", "", "x" * 100, "\x00", "ab'; DROP TABLE clients; --"):
        assert services.registration.revoke_initial_token(bad) is False


def test_consume_counts_uses_and_stops_at_max(services):
    token, value = services.registration.issue_initial_token("cli", max_uses=2)
    first = services.registration.consume_initial_token(value)
    second = services.registration.consume_initial_token(value)
    assert first.id == second.id == token.id and (first.uses, second.uses) == (1, 2)
    assert services.registration.consume_initial_token(value) is None
    assert services.registration.find_initial_token(value) is None


@pytest.mark.parametrize("value", ["", "x" * 10_000, "unknown", None, 12])
def test_consume_and_find_ignore_unusable_values(services, value):
    services.registration.issue_initial_token("cli")
    assert services.registration.consume_initial_token(value) is None
    assert services.registration.find_initial_token(value) is None


def test_an_expired_token_cannot_be_spent(services):
    issued_earlier = at(services, lambda: time.time() - 120)
    _, value = issued_earlier.issue_initial_token("cli", ttl_seconds=60)
    assert services.registration.consume_initial_token(value) is None
    assert issued_earlier.consume_initial_token(value) is not None  # it was good at the time


@pytest.mark.parametrize(("max_uses", "threads"), [(1, 12), (3, 12)])
def test_concurrent_spending_never_exceeds_max_uses(services, max_uses, threads):
    """Many registrations race for the last uses of a token: exactly max_uses of them win."""
    token, value = services.registration.issue_initial_token("cli", max_uses=max_uses)
    barrier = threading.Barrier(threads)
    results: list[object] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def spend() -> None:
        try:
            barrier.wait(10)
            spent = services.registration.consume_initial_token(value)
        except BaseException as exc:  # surfaced below
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(spent)

    workers = [threading.Thread(target=spend) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not errors, errors
    winners = [r for r in results if r is not None]
    assert len(results) == threads and len(winners) == max_uses
    assert sorted(w.uses for w in winners) == list(range(1, max_uses + 1))  # each saw its own increment
    [stored] = services.registration.list_initial_tokens(include_inactive=True)
    assert stored.id == token.id and stored.uses == max_uses


def test_concurrent_registrations_with_a_single_use_token_create_one_client(services, client):
    """The same race over HTTP: one 201, the others 401, one client in the database."""
    _, value = services.registration.issue_initial_token("cli")
    app = client.application
    threads = 8
    barrier = threading.Barrier(threads)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt() -> None:
        with app.test_client() as own:
            barrier.wait(10)
            response = own.post("/connect/register", json=WEB, headers={"Authorization": f"Bearer {value}"})
        with lock:
            statuses.append(response.status_code)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert sorted(statuses) == [201] + [401] * (threads - 1)
    assert [c.client_name for c in services.clients.list()].count("Licences") == 1


def test_update_after_delete_is_invalid_token(services):
    token = services.registration.consume_initial_token(services.registration.issue_initial_token("cli")[1])
    registration = services.registration.register(dict(WEB), token.id)
    client_id = registration.client.client_id
    assert services.registration.delete(client_id) is True
    assert services.registration.delete(client_id) is False
    with pytest.raises(RegistrationError) as raised:
        services.registration.update(client_id, {**WEB, "client_id": client_id})
    assert raised.value.code == "invalid_token"
    assert services.clients.get(client_id) is None
    assert column(services, "disabled", client_id) in (True, 1)
    assert column(services, "registration_token_digest", client_id) is None


def test_register_records_who_registered_the_client(services):
    token = services.registration.consume_initial_token(services.registration.issue_initial_token("cli")[1])
    registration = services.registration.register(dict(WEB), token.id)
    assert column(services, "registered_by", registration.client.client_id) == f"dcr:{token.id}"
    found = services.registration.client_for_registration_token(
        registration.client.client_id, registration.registration_access_token
    )
    assert found == registration.client
