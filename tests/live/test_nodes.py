"""Several nodes behind a load balancer: three gunicorn provider processes on their own loopback ports,
one PostgreSQL, one Redis, nginx in front, every node with the same settings and the nginx URL as issuer.

Each test sends requests to chosen nodes directly (their own ports) or through nginx, and checks that
what one node did is what every other node sees: the SSO session, its end, failed-login counters and
locks, signing keys, and tokens that outlive a node killed under load.

They need the production backend (PostgreSQL + Redis): with IDP_TEST_BACKEND=sqlite the "shared"
state would be a file in this test's temporary directory, which proves nothing about several machines.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from flows import PERSON, hidden_inputs, pkce_pair
from joserfc import jwt
from joserfc.jwk import KeySet
from live_helpers import (
    ROOT,
    SECRET_A,
    SECRET_B,
    TIMEOUT,
    LiveServer,
    browse_to_redirect,
    clients,
    discover,
    query_of,
    relying_party,
    verify_id_token,
)
from nodes_helpers import KEY_CACHE_SECONDS, KEY_ROTATION_OVERLAP, Cluster, start_cluster

pytestmark = pytest.mark.skipif(
    os.environ.get("IDP_TEST_BACKEND", "sqlite") != "postgres",
    reason="several nodes share state only through PostgreSQL + Redis: run with IDP_TEST_BACKEND=postgres",
)

SESSION_COOKIE = "idp_session"
BATCH_SECRET = "batch-secret-0123456789-0123456789-abcdef"
BATCH = {
    "client_id": "batch",
    "client_name": "Batch job",
    "client_secret": BATCH_SECRET,
    "grant_types": ["client_credentials"],
    "response_types": [],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "catalogue.read",
}
PORTAL_AUTH = ("portal", SECRET_A)
CASES_AUTH = ("case-service", SECRET_B)
BATCH_AUTH = ("batch", BATCH_SECRET)


# -- fixtures -----------------------------------------------------------------------------------


@dataclass
class Provisioned:
    portal: dict[str, Any]
    case_service: dict[str, Any]
    services: Any  # the provider's services in this process, on the same database and Redis


@pytest.fixture
def node_settings(live_settings: Any) -> Any:
    """The one set of settings every node runs with: the issuer is nginx's URL (the live port)."""
    return live_settings.with_overrides(
        key_cache_seconds=KEY_CACHE_SECONDS,
        key_rotation_overlap=KEY_ROTATION_OVERLAP,
        trusted_proxies=1,  # nginx: the client address is the one it puts in X-Forwarded-For
    )


@pytest.fixture
def provisioned(live_services: Any, receiver: Any) -> Provisioned:
    """Clients and the person, written before any node starts (nodes cache clients for a while)."""
    portal, case_service = clients(receiver.url)
    for client in (portal, case_service, BATCH):
        live_services.clients.register(client)
    live_services.persons.upsert(PERSON)
    return Provisioned(portal, case_service, live_services)


@pytest.fixture
def cluster(node_settings: Any, provisioned: Provisioned, live_port: int, tmp_path: Any) -> Iterator[Cluster]:
    started = start_cluster(node_settings, live_port, tmp_path, count=3, threads=4)
    try:
        yield started
    finally:
        started.stop()
        print(started.report())


# -- helpers ------------------------------------------------------------------------------------


@dataclass
class Authorization:
    """An authorization request made by a relying party, sent to one chosen node."""

    rp: OAuth2Session
    url: str
    verifier: str
    nonce: str


def authorization(node_url: str, client: dict[str, Any], **extra: str) -> Authorization:
    rp = relying_party(client, scope=extra.pop("scope", client["scope"]))
    verifier = generate_token(48)
    nonce = secrets.token_urlsafe(12)
    url, _ = rp.create_authorization_url(
        f"{node_url}/authorize", code_verifier=verifier, nonce=nonce, **extra
    )
    return Authorization(rp, url, verifier, nonce)


def redeem(auth: Authorization, location: str, token_url: str) -> dict[str, Any]:
    return dict(
        auth.rp.fetch_token(
            token_url, authorization_response=location, code_verifier=auth.verifier, timeout=TIMEOUT
        )
    )


def silent(node_url: str, client: dict[str, Any], cookies: Any) -> tuple[Authorization, str]:
    """prompt=none at one node with the given cookies: the redirect back to the client (not followed)."""
    auth = authorization(node_url, client, prompt="none")
    response = requests.get(auth.url, cookies=cookies, allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    location = response.headers["Location"]
    assert location.startswith(client["redirect_uris"][0]), location
    return auth, location


def served(node: LiveServer, method: str, path: str, status: int | None = None) -> int:
    """How many `method path` requests this node's gunicorn logged (with this status, if given)."""
    count = 0
    for line in node.access_log():
        parts = line.split()
        if len(parts) == 4 and parts[1] == method and parts[2] == path:
            count += status is None or parts[3] == str(status)
    return count


def wait_served(node: LiveServer, method: str, path: str, status: int, at_least: int = 1) -> int:
    """`served`, waiting a moment for the access log to be written."""
    deadline = time.monotonic() + 3
    while (count := served(node, method, path, status)) < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def introspect(base: str, token: str, auth: tuple[str, str]) -> dict[str, Any]:
    response = requests.post(f"{base}/introspect", data={"token": token}, auth=auth, timeout=TIMEOUT)
    assert response.status_code == 200, (base, response.status_code, response.text[:300])
    return dict(response.json())


def jwks_of(base: str) -> tuple[dict[str, Any], str]:
    response = requests.get(f"{base}/jwks.json", timeout=TIMEOUT)
    assert response.status_code == 200, (base, response.status_code)
    return response.json(), response.headers.get("ETag", "")


def key_set_of(document: dict[str, Any]) -> KeySet:
    return KeySet.import_key_set(document)  # type: ignore[arg-type]  # a JWKS document, as served


def kids(document: dict[str, Any]) -> dict[str, str]:
    """kid -> alg of a JWKS document."""
    return {key["kid"]: key["alg"] for key in document["keys"]}


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, read without checking anything."""
    head = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


def client_credentials_token(base: str) -> requests.Response:
    return requests.post(
        f"{base}/token",
        data={"grant_type": "client_credentials", "scope": "catalogue.read"},
        auth=BATCH_AUTH,
        timeout=TIMEOUT,
    )


def login_form(browser: requests.Session, base: str) -> dict[str, str]:
    """The hidden fields (csrf_token, tx) of the login page, read at `base`."""
    response = browser.get(f"{base}/login", timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:300]
    fields = hidden_inputs(response.text)
    assert fields.get("csrf_token"), fields
    return fields


def post_login(
    browser: requests.Session, base: str, form: dict[str, str], identifier: str, password: str
) -> requests.Response:
    return browser.post(
        f"{base}/login",
        data={**form, "identifier": identifier, "password": password},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def operator_cli(cluster: Cluster, *args: str) -> str:
    """`python -m idp ...` with a node's environment (same database, Redis, KEK): the operator's way."""
    done = subprocess.run(
        [sys.executable, "-m", "idp", *args],
        cwd=ROOT,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout


# -- 1. one SSO session for every node ------------------------------------------------------------


def test_a_login_on_one_node_is_an_sso_session_on_the_others(
    cluster: Cluster, provisioned: Provisioned
) -> None:
    a, b, c = cluster.nodes
    metadata = discover(cluster.issuer)  # through nginx; asserts the issuer is nginx's URL
    keys = key_set_of(jwks_of(cluster.issuer)[0])
    portal, case_service = provisioned.portal, provisioned.case_service
    browser = requests.Session()

    # The person signs in at node A: authorize, login form, resume — all on A's port.
    at_a = authorization(a.url, portal)
    location = browse_to_redirect(browser, at_a.url, portal["redirect_uris"][0])
    assert query_of(location).get("iss") == cluster.issuer and "code" in query_of(location)
    assert wait_served(a, "POST", "/login", 302) == 1
    assert served(b, "POST", "/login") == served(c, "POST", "/login") == 0
    token_a = redeem(at_a, location, metadata["token_endpoint"])
    claims_a = verify_id_token(
        token_a["id_token"],
        keys,
        issuer=cluster.issuer,
        client_id="portal",
        nonce=at_a.nonce,
        access_token=token_a["access_token"],
        alg="RS256",
    )

    # Another client asks node B with prompt=none and the same browser cookie: a code at once.
    assert browser.cookies.get(SESSION_COOKIE)
    at_b = authorization(b.url, case_service, prompt="none")
    response = browser.get(at_b.url, allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code in (302, 303), response.text[:300]
    location_b = response.headers["Location"]
    result = query_of(location_b)
    assert location_b.startswith(case_service["redirect_uris"][0]) and "error" not in result, result
    assert result["iss"] == cluster.issuer and result["code"]
    assert wait_served(b, "GET", "/authorize", 302) == 1

    # Node C redeems the code that node B issued.
    token_b = redeem(at_b, location_b, f"{c.url}/token")
    assert wait_served(c, "POST", "/token", 200) == 1
    claims_b = verify_id_token(
        token_b["id_token"],
        keys,
        issuer=cluster.issuer,
        client_id="case-service",
        nonce=at_b.nonce,
        access_token=token_b["access_token"],
        alg="ES256",
    )
    assert claims_b["sid"] == claims_a["sid"] and claims_b["sub"] == claims_a["sub"]
    assert claims_b["auth_time"] == claims_a["auth_time"] and claims_a["auth_time"]  # no second login

    # And every node honours both tokens.
    for node in (a, b, c):
        assert introspect(node.url, token_b["access_token"], CASES_AUTH)["active"] is True
        info = requests.get(
            f"{node.url}/userinfo",
            headers={"Authorization": f"Bearer {token_a['access_token']}"},
            timeout=TIMEOUT,
        )
        assert info.status_code == 200 and info.json()["sub"] == claims_a["sub"]


# -- 2. logout on one node ends it everywhere ------------------------------------------------------


def test_logout_on_one_node_ends_the_session_on_every_node(
    cluster: Cluster, provisioned: Provisioned
) -> None:
    a, b, c = cluster.nodes
    portal = provisioned.portal
    browser = requests.Session()
    at_a = authorization(a.url, portal)
    location = browse_to_redirect(browser, at_a.url, portal["redirect_uris"][0])
    token = redeem(at_a, location, f"{a.url}/token")
    cookie = browser.cookies.get(SESSION_COOKIE)
    assert cookie

    # Before: the session cookie is honoured by B and C.
    for node in (b, c):
        _, answer = silent(node.url, portal, {SESSION_COOKIE: cookie})
        assert "code" in query_of(answer), answer

    # RP-initiated logout at node A.
    state = secrets.token_urlsafe(8)
    response = browser.get(
        f"{a.url}/logout",
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": "https://portal.example/bye",
            "state": state,
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert response.status_code in (302, 303), response.text[:300]
    assert query_of(response.headers["Location"]) == {"state": state}

    # After: the same cookie (a second tab, a copy kept by anyone) names no session on B or C.
    for node in (b, c):
        _, answer = silent(node.url, portal, {SESSION_COOKIE: cookie})
        result = query_of(answer)
        assert result.get("error") == "login_required" and "code" not in result, result
        assert result["iss"] == cluster.issuer
    # The session's tokens are revoked for every node too.
    for node in (b, c):
        assert introspect(node.url, token["access_token"], PORTAL_AUTH) == {"active": False}
        assert introspect(node.url, token["refresh_token"], PORTAL_AUTH) == {"active": False}
        info = requests.get(
            f"{node.url}/userinfo",
            headers={"Authorization": f"Bearer {token['access_token']}"},
            timeout=TIMEOUT,
        )
        assert info.status_code == 401


# -- 3. failed-login counters, delays and locks are shared ----------------------------------------


def test_failed_logins_spread_over_nodes_lock_the_account_on_every_node(
    cluster: Cluster, provisioned: Provisioned
) -> None:
    a, b, c = cluster.nodes
    throttle = provisioned.services.throttle
    policy = throttle.policy  # ThrottlePolicy(): lock_after=10 failures in 15 min, no setting changes it
    username, password = PERSON["username"], PERSON["password"]
    browser = requests.Session()
    form = login_form(browser, cluster.issuer)  # a CSRF token from any node is good on every node

    # lock_after - 1 wrong passwords, alternately at A and B: no single node saw more than half.
    for attempt in range(policy.lock_after - 1):
        node = (a, b)[attempt % 2]
        refused = post_login(browser, node.url, form, username, "wrong password")
        assert refused.status_code == 401, refused.text[:300]
        assert SESSION_COOKIE not in refused.cookies
    assert not throttle.is_locked(username)

    # One more, at B: the account is locked for every node.
    assert post_login(browser, b.url, form, username, "wrong password").status_code == 401
    assert throttle.is_locked(username)

    # Node C has not seen a single login attempt, yet it refuses the right password.
    assert served(c, "POST", "/login") == 0
    refused = post_login(browser, c.url, form, username, password)
    assert refused.status_code == 401 and SESSION_COOKIE not in refused.cookies
    assert throttle.is_locked(username)  # a refused attempt does not lift (or prolong) the lock

    # The operator lifts the lock once, from anywhere: node C lets the person in.
    assert "unlocked" in operator_cli(cluster, "unlock-login", username)
    accepted = post_login(browser, c.url, form, username, password)
    assert accepted.status_code in (302, 303), accepted.text[:300]
    assert accepted.cookies.get(SESSION_COOKIE)


def test_failures_from_one_address_spread_over_nodes_block_it_on_every_node(
    cluster: Cluster, provisioned: Provisioned
) -> None:
    a, b, c = cluster.nodes
    throttle = provisioned.services.throttle
    policy = throttle.policy  # address_limit=50 failures from one address in 15 min
    address = "127.0.0.1"  # every request comes from here (directly, or in nginx's X-Forwarded-For)
    browser = requests.Session()
    form = login_form(browser, cluster.issuer)

    def fail(attempt: int) -> int:
        node = (a, b)[attempt % 2]
        with requests.Session() as session:
            session.cookies.update(browser.cookies)
            return post_login(session, node.url, form, f"nobody-{attempt}", "wrong password").status_code

    # address_limit failures, each for a different (unknown) account, half at A and half at B.
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(fail, range(policy.address_limit))) == {401}
    half = policy.address_limit // 2
    assert wait_served(a, "POST", "/login", 401, half) == wait_served(b, "POST", "/login", 401, half) == half

    # The person's own account never failed, but the address is blocked: C refuses the right password.
    assert not throttle.is_locked(PERSON["username"])
    assert not throttle.check(PERSON["username"], address).allowed
    assert served(c, "POST", "/login") == 0
    refused = post_login(browser, c.url, form, PERSON["username"], PERSON["password"])
    assert refused.status_code == 401 and SESSION_COOKIE not in refused.cookies

    # Lifted once (as an admin does for an office behind one NAT), lifted for every node.
    throttle.unlock_address(address)
    accepted = post_login(browser, c.url, form, PERSON["username"], PERSON["password"])
    assert accepted.status_code in (302, 303), accepted.text[:300]


# -- 4. a rotated key is published and used by every node ----------------------------------------


def test_a_rotated_key_is_published_then_used_by_every_node(
    cluster: Cluster, provisioned: Provisioned
) -> None:
    nodes = cluster.nodes
    portal, case_service = provisioned.portal, provisioned.case_service
    browser = requests.Session()
    first = authorization(cluster.issuer, portal)
    location = browse_to_redirect(browser, first.url, portal["redirect_uris"][0])
    before = redeem(first, location, f"{cluster.issuer}/token")
    old_document, _ = jwks_of(cluster.issuer)
    old_kids = kids(old_document)
    assert sorted(old_kids.values()) == ["ES256", "RS256"]
    assert unverified_header(before["id_token"])["kid"] in old_kids

    # Rotate with the operator CLI: a separate process on the same database, like one more node.
    output = operator_cli(cluster, "rotate-keys")
    new_kids = {line.split()[-1] for line in output.splitlines() if line.startswith("new key ")}
    assert len(new_kids) == 2 and not new_kids & set(old_kids), output
    stored = {k["kid"]: k for k in provisioned.services.keys.list_keys()}
    activates_at = max(stored[kid]["activates_at"] for kid in new_kids)
    assert all(stored[kid]["state"] == "pending" for kid in new_kids)

    # Published by every node within the cache time, before any node signs with them.
    deadline = time.time() + KEY_CACHE_SECONDS + 1.5
    waiting = list(nodes)
    while waiting and time.time() < deadline:
        waiting = [node for node in waiting if not new_kids <= set(kids(jwks_of(node.url)[0]))]
        time.sleep(0.1)
    assert not waiting, f"nodes not publishing the new keys: {[node.url for node in waiting]}"
    assert time.time() < activates_at, "the new keys were published too late to be checked before use"
    for node in nodes:  # meanwhile they still sign with the old keys
        response = client_credentials_token(node.url)
        assert response.status_code == 200, response.text[:300]
        kid = unverified_header(response.json()["access_token"])["kid"]
        if time.time() < activates_at:
            assert kid in old_kids

    # Once the overlap has passed, each node signs ID tokens and access tokens with the new keys.
    time.sleep(max(0.0, activates_at - time.time()) + 0.2)
    documents = [jwks_of(node.url) for node in nodes]
    published = documents[0][0]
    assert all(document == published for document, _ in documents)  # the same keys everywhere ...
    assert len({etag for _, etag in documents}) == 1  # ... as identical bytes, hence one ETag
    assert set(old_kids) | new_kids == set(kids(published))  # the old keys stay published (retired)
    key_set = key_set_of(published)
    new_by_alg = {kids(published)[kid]: kid for kid in new_kids}
    for node in nodes:
        response = client_credentials_token(node.url)
        assert response.status_code == 200, response.text[:300]
        access_token = response.json()["access_token"]
        decoded = jwt.decode(access_token, key_set, algorithms=["RS256", "ES256"])
        assert decoded.header["kid"] == new_by_alg[decoded.header["alg"]], (node.url, decoded.header)
        for client, alg in ((portal, "RS256"), (case_service, "ES256")):
            auth, answer = silent(node.url, client, browser.cookies)
            token = redeem(auth, answer, f"{node.url}/token")
            id_token = jwt.decode(token["id_token"], key_set, algorithms=[alg])
            assert id_token.header["kid"] == new_by_alg[alg], (node.url, client["client_id"])
            assert id_token.claims["iss"] == cluster.issuer and id_token.claims["nonce"] == auth.nonce
            at = jwt.decode(token["access_token"], key_set, algorithms=["RS256", "ES256"])
            assert at.header["kid"] == new_by_alg[at.header["alg"]], (node.url, at.header)
    # Tokens signed before the rotation still verify against what every node publishes now.
    jwt.decode(before["id_token"], key_set, algorithms=["RS256"])


# -- 5. a node killed under load loses no session and no issued token -----------------------------

THREADS = 4
BEFORE_KILL = 1.5  # seconds of load before the kill, and after it
AFTER_KILL = 2.0


@dataclass
class Load:
    """What the clients got back while the load ran; shared by the load threads (under `lock`)."""

    issuer: str
    cookie: str
    portal: dict[str, Any]
    stop: threading.Event = field(default_factory=threading.Event)
    killed: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    access_tokens: list[tuple[str, tuple[str, str]]] = field(default_factory=list)  # (token, its client)
    id_tokens: list[str] = field(default_factory=list)
    # Refresh tokens returned and not presented since: every one must still work afterwards.
    held_refresh_tokens: set[str] = field(default_factory=set)
    chain_heads: dict[int, str] = field(default_factory=dict)  # the token each thread refreshes next
    spent_in_failure: int = 0  # refresh tokens presented in a request that failed (lost by design)
    successes: Counter[str] = field(default_factory=Counter)  # "before"/"after" the kill
    failures: Counter[Any] = field(default_factory=Counter)

    def ok(self) -> None:
        self.successes["after" if self.killed.is_set() else "before"] += 1

    def failed(self, what: str, response: requests.Response | Exception) -> None:
        status = response.status_code if isinstance(response, requests.Response) else type(response).__name__
        with self.lock:
            self.failures[(what, status)] += 1

    def run(self, index: int) -> None:
        """Loop: a client-credentials token, a silent authorization-code flow, a refresh (one chain per
        thread, rotated again and again) — all through nginx."""
        with requests.Session() as http:
            http.cookies.set(SESSION_COOKIE, self.cookie)
            while not self.stop.is_set():
                self.client_credentials(http)
                self.code_flow(http, index)
                self.refresh(http, index)

    def client_credentials(self, http: requests.Session) -> None:
        try:
            response = http.post(
                f"{self.issuer}/token",
                data={"grant_type": "client_credentials", "scope": "catalogue.read"},
                auth=BATCH_AUTH,
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            return self.failed("client_credentials", exc)
        if response.status_code != 200:
            return self.failed("client_credentials", response)
        with self.lock:
            self.access_tokens.append((response.json()["access_token"], BATCH_AUTH))
            self.ok()

    def code_flow(self, http: requests.Session, index: int) -> None:
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": "portal",
            "redirect_uri": self.portal["redirect_uris"][0],
            "scope": "openid profile",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "prompt": "none",
        }
        try:
            answer = http.get(
                f"{self.issuer}/authorize?{urlencode(params)}", allow_redirects=False, timeout=TIMEOUT
            )
            if answer.status_code != 302 or "code" not in query_of(answer.headers["Location"]):
                return self.failed("authorize", answer)
            response = http.post(
                f"{self.issuer}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": query_of(answer.headers["Location"])["code"],
                    "redirect_uri": self.portal["redirect_uris"][0],
                    "code_verifier": verifier,
                },
                auth=PORTAL_AUTH,
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            return self.failed("authorization_code", exc)
        if response.status_code != 200:
            return self.failed("authorization_code", response)
        token = response.json()
        with self.lock:
            self.access_tokens.append((token["access_token"], PORTAL_AUTH))
            self.id_tokens.append(token["id_token"])
            self.held_refresh_tokens.add(token["refresh_token"])
            self.chain_heads.setdefault(index, token["refresh_token"])  # a new chain if none goes on
            self.ok()

    def refresh(self, http: requests.Session, index: int) -> None:
        with self.lock:
            presented = self.chain_heads.pop(index, None)
            if presented is None:
                return
            self.held_refresh_tokens.discard(presented)
        try:
            response = http.post(
                f"{self.issuer}/token",
                data={"grant_type": "refresh_token", "refresh_token": presented},
                auth=PORTAL_AUTH,
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            response = None
            failure: requests.Response | Exception = exc
        if response is None or response.status_code != 200:
            with self.lock:
                self.spent_in_failure += 1
            return self.failed("refresh_token", response if response is not None else failure)
        token = response.json()
        with self.lock:
            self.access_tokens.append((token["access_token"], PORTAL_AUTH))
            self.held_refresh_tokens.add(token["refresh_token"])
            self.chain_heads[index] = token["refresh_token"]
            self.ok()


def test_a_node_killed_under_load_loses_no_session_and_no_issued_token(
    cluster: Cluster, provisioned: Provisioned
) -> None:
    a, b, c = cluster.nodes
    survivors = (a, c)
    portal = provisioned.portal
    browser = requests.Session()
    first = authorization(cluster.issuer, portal)
    location = browse_to_redirect(browser, first.url, portal["redirect_uris"][0])
    token = redeem(first, location, f"{cluster.issuer}/token")
    sid = jwt.decode(token["id_token"], key_set_of(jwks_of(cluster.issuer)[0])).claims["sid"]
    cookie = browser.cookies.get(SESSION_COOKIE)
    assert cookie

    load = Load(cluster.issuer, cookie, portal)
    threads = [threading.Thread(target=load.run, args=(i,), name=f"load-{i}") for i in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(BEFORE_KILL)
        b.kill()  # SIGKILL, master and worker at once, in the middle of requests
        load.killed.set()
        time.sleep(AFTER_KILL)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert b.process.poll() is not None
    print(
        f"load: {dict(load.successes)} answered, failed {dict(load.failures)}; "
        f"{len(load.access_tokens)} access and {len(load.held_refresh_tokens)} refresh tokens held; "
        f"{load.spent_in_failure} refresh tokens spent in a failed request"
    )

    # The load reached every node, and went on without B.
    assert served(b, "POST", "/token", 200) > 0, "node B served nothing before it was killed"
    assert load.successes["before"] >= 10 and load.successes["after"] >= 20, load.successes
    # Only requests in flight at B when it died may fail (nginx does not resend a POST that reached
    # B), so at most one per client thread; every new request went to A or C.
    assert sum(load.failures.values()) <= THREADS, load.failures
    assert {status for _, status in load.failures} <= {502}, load.failures

    # Every access token returned to a client is active, at each surviving node.
    def check(item: tuple[str, tuple[str, str]]) -> list[str]:
        value, auth = item
        return [node.url for node in survivors if introspect(node.url, value, auth).get("active") is not True]

    with ThreadPoolExecutor(8) as pool:
        lost = [url for urls in pool.map(check, load.access_tokens) for url in urls]
    assert not lost, f"{len(lost)} returned access tokens are not active at {set(lost)}"

    # Every refresh token a client holds (returned, not presented since) is active and works, once.
    assert load.held_refresh_tokens

    def use(item: tuple[int, str]) -> tuple[bool, int]:
        index, refresh_token = item
        node = survivors[index % 2]
        active = introspect(node.url, refresh_token, PORTAL_AUTH).get("active") is True
        refreshed = requests.post(
            f"{node.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=PORTAL_AUTH,
            timeout=TIMEOUT,
        )
        return active, refreshed.status_code

    with ThreadPoolExecutor(8) as pool:
        outcomes = Counter(pool.map(use, enumerate(sorted(load.held_refresh_tokens))))
    assert outcomes == {(True, 200): len(load.held_refresh_tokens)}, outcomes

    # Every ID token returned verifies against what the survivors publish, and names the one session.
    key_set = key_set_of(jwks_of(a.url)[0])
    assert jwks_of(a.url)[0] == jwks_of(c.url)[0]
    for id_token in load.id_tokens:
        assert jwt.decode(id_token, key_set, algorithms=["RS256"]).claims["sid"] == sid

    # The SSO session lives on: prompt=none at each survivor gives a code, redeemed there.
    for node in survivors:
        auth, answer = silent(node.url, portal, {SESSION_COOKIE: cookie})
        assert "code" in query_of(answer), answer
        again = redeem(auth, answer, f"{node.url}/token")
        assert jwt.decode(again["id_token"], key_set, algorithms=["RS256"]).claims["sid"] == sid
