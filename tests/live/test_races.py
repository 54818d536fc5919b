"""Races across processes: one code or one refresh token presented 20 times at once over real HTTP.

They need the production backend (PostgreSQL + Redis) shared by several gunicorn workers; SQLite
serialises writers and proves nothing about concurrency, so they are skipped there.

Which worker accepts a connection is up to the kernel, so one storm may land on a single worker.
Each round checks the outcome; rounds repeat (fresh code or token) until one storm has been served
by at least two worker processes, as the access log (pid per request) shows.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from authlib.common.security import generate_token
from flows import PERSON
from live_helpers import SECRET_A, TIMEOUT, browse_to_redirect, clients, discover, query_of, relying_party

pytestmark = pytest.mark.skipif(
    os.environ.get("IDP_TEST_BACKEND", "sqlite") != "postgres",
    reason="race tests need IDP_TEST_BACKEND=postgres (PostgreSQL + Redis shared by several workers)",
)

PARALLEL = 20
MAX_ROUNDS = 6
AUTH = ("portal", SECRET_A)


@pytest.fixture
def gunicorn_workers() -> int:
    return 4


@pytest.fixture
def gunicorn_threads() -> int:
    # One request at a time per worker (gunicorn's sync worker): a storm cannot queue up inside
    # one process, so it spreads over the workers.
    return 1


def storm(live_server: Any, url: str, data: dict[str, str]) -> tuple[list[requests.Response], set[str]]:
    """POST the same form PARALLEL times, released together by a barrier, one connection each;
    returns the responses and the pids of the worker processes that served them."""
    before = logged_token_requests(live_server)
    barrier = threading.Barrier(PARALLEL)

    def one(_: int) -> requests.Response:
        with requests.Session() as session:
            barrier.wait(timeout=TIMEOUT)
            return session.post(url, data=data, auth=AUTH, timeout=30)

    with ThreadPoolExecutor(PARALLEL) as pool:
        responses = list(pool.map(one, range(PARALLEL)))
    return responses, token_request_pids(live_server, before, PARALLEL)


def outcome(responses: list[requests.Response]) -> Counter[Any]:
    return Counter(200 if r.status_code == 200 else (r.status_code, r.json().get("error")) for r in responses)


def token_request_pids(live_server: Any, skip: int, count: int) -> set[str]:
    """Pids of the `count` /token requests logged after the first `skip` (waits for the log)."""
    deadline = time.monotonic() + 3
    while True:
        lines = [line for line in live_server.access_log() if " /token " in line][skip : skip + count]
        if len(lines) >= count or time.monotonic() > deadline:
            return {line.split()[0] for line in lines}
        time.sleep(0.05)


def logged_token_requests(live_server: Any) -> int:
    return sum(1 for line in live_server.access_log() if " /token " in line)


def race_until_it_crosses_processes(one_round: Callable[[], set[str]]) -> None:
    """Run rounds (each checks the outcome and returns the storm's pids) until one crosses processes."""
    for _ in range(MAX_ROUNDS):
        if len(one_round()) > 1:
            return
    pytest.fail(f"no storm in {MAX_ROUNDS} rounds was served by more than one worker process")


class Platform:
    """The portal, signed in through one browser (after the first login, codes come at once)."""

    def __init__(self, live_server: Any, live_services: Any, receiver_url: str) -> None:
        self.client, _ = clients(receiver_url)
        live_services.clients.register(self.client)
        live_services.persons.upsert(PERSON)
        self.metadata = discover(live_server.url)
        self.browser = requests.Session()

    def code(self) -> tuple[str, str]:
        rp = relying_party(self.client)
        verifier = generate_token(48)
        url, _ = rp.create_authorization_url(
            self.metadata["authorization_endpoint"], code_verifier=verifier, nonce="n"
        )
        location = browse_to_redirect(self.browser, url, self.client["redirect_uris"][0])
        return query_of(location)["code"], verifier

    def code_form(self) -> dict[str, str]:
        code, verifier = self.code()
        return {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.client["redirect_uris"][0],
            "code_verifier": verifier,
        }

    def post(self, url_name: str, data: dict[str, str]) -> requests.Response:
        return requests.post(self.metadata[url_name], data=data, auth=AUTH, timeout=TIMEOUT)


def test_one_code_redeemed_twenty_times_at_once_yields_one_token(
    live_server: Any, live_services: Any, receiver: Any
) -> None:
    platform = Platform(live_server, live_services, receiver.url)

    def one_round() -> set[str]:
        form = platform.code_form()
        responses, pids = storm(live_server, platform.metadata["token_endpoint"], form)
        assert outcome(responses) == {200: 1, (400, "invalid_grant"): PARALLEL - 1}

        # A late reuse, once the winner's tokens are stored, revokes them (RFC 6749 §4.1.2).
        (winner,) = [r.json() for r in responses if r.status_code == 200]
        late = platform.post("token_endpoint", form)
        assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
        for value in (winner["access_token"], winner["refresh_token"]):
            assert platform.post("introspection_endpoint", {"token": value}).json() == {"active": False}
        return pids

    race_until_it_crosses_processes(one_round)


def test_one_refresh_token_used_twenty_times_at_once_rotates_once(
    live_server: Any, live_services: Any, receiver: Any
) -> None:
    platform = Platform(live_server, live_services, receiver.url)

    def one_round() -> set[str]:
        first = platform.post("token_endpoint", platform.code_form())
        assert first.status_code == 200, first.text
        refresh_token = first.json()["refresh_token"]

        responses, pids = storm(
            live_server,
            platform.metadata["token_endpoint"],
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        assert outcome(responses) == {200: 1, (400, "invalid_grant"): PARALLEL - 1}

        # The losers were concurrent retries inside the grace window: the family survives and the
        # winner's new refresh token works.
        (winner,) = [r.json() for r in responses if r.status_code == 200]
        assert winner["refresh_token"] != refresh_token
        following = platform.post(
            "token_endpoint", {"grant_type": "refresh_token", "refresh_token": winner["refresh_token"]}
        )
        assert following.status_code == 200, following.text
        return pids

    race_until_it_crosses_processes(one_round)
