"""Signing keys on a real database: creation, encryption at rest, rotation, JWKS and the node cache."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from idp.services import signing_keys as signing_keys_service
from idp.services.signing_keys import NoSigningKeyError, SigningKey, SigningKeyService
from idp.store.db import Base, build_engine, build_sessionmaker
from idp.store.key_encryption import DecryptionError, KeyEncryptor
from idp.store.models import SigningKeyRow

KEK = bytes(range(32))
START = 1_700_000_000.0
CACHE = 30
OVERLAP = 120
RETENTION = 3600
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingEncryptor(KeyEncryptor):
    """The real encryptor, counting decryptions."""

    def __init__(self, kek: bytes) -> None:
        super().__init__(kek)
        self.decryptions = 0

    def decrypt(self, blob: bytes, *, aad: bytes) -> bytes:
        self.decryptions += 1
        return super().decrypt(blob, aad=aad)


@pytest.fixture
def sessions(migrated_database_url: str) -> Iterator[sessionmaker[Session]]:
    """The session database, migrated (so later migrations in the session still apply), no keys."""
    engine = build_engine(migrated_database_url)
    Base.metadata.create_all(engine)
    maker: sessionmaker[Session] = build_sessionmaker(engine)
    with maker.begin() as session:
        session.execute(delete(SigningKeyRow))
    yield maker
    with maker.begin() as session:
        session.execute(delete(SigningKeyRow))
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def build_service(
    sessions: sessionmaker[Session], clock: FakeClock, encryptor: KeyEncryptor | None = None
) -> SigningKeyService:
    return SigningKeyService(
        sessions,
        encryptor or KeyEncryptor(KEK),
        overlap_seconds=OVERLAP,
        retention_seconds=RETENTION,
        cache_seconds=CACHE,
        clock=clock,
    )


def read_rows(sessions: sessionmaker[Session]) -> list[SigningKeyRow]:
    with sessions() as session:
        return list(session.scalars(select(SigningKeyRow).order_by(SigningKeyRow.created_at)))


def published_kids(service: SigningKeyService) -> set[str]:
    body, _ = service.jwks()
    return {jwk["kid"] for jwk in json.loads(body)["keys"]}


def sign(key: SigningKey) -> str:
    return jwt.encode(
        {"alg": key.alg, "kid": key.kid}, {"sub": "p-1", "iss": "https://idp.test"}, key.private_key
    )


def assert_public_only(body: bytes) -> None:
    for jwk in json.loads(body)["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk), jwk


def test_requires_overlap_longer_than_cache(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="overlap_seconds"):
        SigningKeyService(
            sessions, KeyEncryptor(KEK), overlap_seconds=30, retention_seconds=60, cache_seconds=30
        )


def test_ensure_keys_creates_one_key_per_algorithm_once(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    service = build_service(sessions, clock)
    service.ensure_keys()
    rows = read_rows(sessions)
    assert sorted(row.alg for row in rows) == ["ES256", "RS256"]
    for row in rows:
        assert row.activates_at == row.created_at == int(START)
        assert row.retired_at is None and row.expires_at is None
        assert row.public_jwk["kid"] == row.kid
        assert row.public_jwk["alg"] == row.alg
        assert row.public_jwk["use"] == "sig"

    service.ensure_keys()
    build_service(sessions, clock).ensure_keys()  # another node starting later
    assert {row.kid for row in read_rows(sessions)} == {row.kid for row in rows}


def test_keys_have_expected_types_and_thumbprint_kids(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    service = build_service(sessions, clock)
    service.ensure_keys()
    rsa, ec = service.current("RS256"), service.current("ES256")
    assert isinstance(rsa.private_key, RSAKey) and rsa.private_key.is_private
    assert rsa.private_key.raw_value.key_size == 2048
    assert isinstance(ec.private_key, ECKey) and ec.private_key.curve_name == "P-256"
    for key in (rsa, ec):
        assert key.kid == key.private_key.thumbprint()  # RFC 7638
        assert not PRIVATE_MEMBERS & set(key.public_jwk)
        assert "private_key" not in repr(key)


def test_private_key_is_encrypted_at_rest(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    service = build_service(sessions, clock)
    service.ensure_keys()
    for row in read_rows(sessions):
        private = service.current(row.alg).private_key.as_dict(private=True)
        for member in PRIVATE_MEMBERS & set(private):
            value = private[member]
            assert isinstance(value, str)
            assert value.encode() not in row.private_enc
        assert b'"d"' not in row.private_enc
        assert not PRIVATE_MEMBERS & set(row.public_jwk)
        # Bound to its kid: the ciphertext cannot be moved to another row.
        with pytest.raises(DecryptionError):
            KeyEncryptor(KEK).decrypt(row.private_enc, aad=b"another-kid")


def test_wrong_kek_fails_loudly(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    build_service(sessions, clock).ensure_keys()
    with pytest.raises(DecryptionError):
        build_service(sessions, clock, KeyEncryptor(bytes(32))).current("RS256")


def test_concurrent_first_start_creates_one_key_per_algorithm(
    sessions: sessionmaker[Session], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = [build_service(sessions, clock) for _ in range(4)]
    # Hold every node after it found no key and generated its own, so all of them race to insert.
    all_generated = threading.Barrier(len(services), timeout=30)
    original = signing_keys_service.generate_private_jwk

    def generate_then_wait(alg: str) -> RSAKey | ECKey:
        key = original(alg)
        if alg == "RS256":
            all_generated.wait()
        return key

    monkeypatch.setattr(signing_keys_service, "generate_private_jwk", generate_then_wait)
    errors: list[BaseException] = []

    def start(service: SigningKeyService) -> None:
        try:
            service.ensure_keys()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(row.alg for row in read_rows(sessions)) == ["ES256", "RS256"]
    assert len({service.current("RS256").kid for service in services}) == 1


def test_current_without_keys_is_a_clear_error(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    service = build_service(sessions, clock)
    with pytest.raises(NoSigningKeyError, match="ensure_keys"):
        service.current("RS256")
    with pytest.raises(ValueError, match="unsupported"):
        service.current("HS256")


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_token_signed_with_current_key_verifies(
    sessions: sessionmaker[Session], clock: FakeClock, alg: str
) -> None:
    service = build_service(sessions, clock)
    service.ensure_keys()
    token = sign(service.current(alg))
    decoded = jwt.decode(token, service.verification_key_set(), algorithms=[alg])
    assert decoded.header["kid"] == service.current(alg).kid
    assert decoded.claims["sub"] == "p-1"
    # A key set built from the published JWKS alone (as a relying party would) verifies it too.
    body, _ = service.jwks()
    assert jwt.decode(token, KeySet.import_key_set(json.loads(body)), algorithms=[alg]).claims["sub"] == "p-1"


def test_foreign_signature_does_not_verify(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    service = build_service(sessions, clock)
    service.ensure_keys()
    stranger = RSAKey.generate_key(2048)
    token = jwt.encode({"alg": "RS256", "kid": service.current("RS256").kid}, {"sub": "x"}, stranger)
    with pytest.raises(BadSignatureError):
        jwt.decode(token, service.verification_key_set(), algorithms=["RS256"])


def test_rotation_publishes_at_once_and_signs_after_overlap(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    service = build_service(sessions, clock)
    service.ensure_keys()
    old = service.current("RS256")
    old_es = service.current("ES256")
    old_token = sign(old)

    clock.advance(10)
    [new_kid] = service.rotate("RS256")
    assert new_kid != old.kid
    assert {old.kid, new_kid} <= published_kids(service)  # published immediately
    assert service.current("RS256").kid == old.kid
    assert service.current("ES256").kid == old_es.kid  # other algorithm untouched

    rows = {row.kid: row for row in read_rows(sessions)}
    assert rows[new_kid].activates_at == int(START) + 10 + OVERLAP
    assert rows[old.kid].retired_at == rows[new_kid].activates_at
    assert rows[old.kid].expires_at == rows[new_kid].activates_at + RETENTION
    assert rows[old_es.kid].retired_at is None

    clock.advance(OVERLAP - 1)
    assert service.current("RS256").kid == old.kid
    clock.advance(1)
    assert service.current("RS256").kid == new_kid

    # The old key leaves signing but stays published until every token it signed has expired.
    assert jwt.decode(old_token, service.verification_key_set(), algorithms=["RS256"]).claims["sub"] == "p-1"
    expires_at = rows[old.kid].expires_at
    assert expires_at is not None
    clock.now = expires_at - 1
    assert old.kid in published_kids(service)
    clock.now = expires_at
    assert old.kid not in published_kids(service)
    assert published_kids(service) == {new_kid, old_es.kid}
    assert_public_only(service.jwks()[0])


def test_rotation_of_all_algorithms_and_jwks_never_holds_private_members(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    service = build_service(sessions, clock)
    service.ensure_keys()
    new_kids = service.rotate()
    assert len(new_kids) == 2
    clock.advance(5)
    service.rotate()  # rotate again within the overlap: pending keys are superseded, never sign
    assert len(published_kids(service)) == 6
    assert_public_only(service.jwks()[0])
    clock.advance(OVERLAP + 1)
    for alg in ("RS256", "ES256"):
        assert service.current(alg).kid not in new_kids
    states = sorted(entry["state"] for entry in service.list_keys())
    assert states == ["active", "active", "retired", "retired", "retired", "retired"]


def test_rotation_without_any_key_activates_at_once(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    service = build_service(sessions, clock)
    [kid] = service.rotate("ES256")
    assert service.current("ES256").kid == kid


def test_etag_is_strong_identical_across_nodes_and_changes_on_rotation(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    first, second = build_service(sessions, clock), build_service(sessions, clock)
    first.ensure_keys()
    body, etag = first.jwks()
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    assert second.jwks() == (body, etag)
    assert first.jwks()[0] is body  # precomputed, not rebuilt per request
    first.rotate()
    assert first.jwks()[1] != etag


def test_other_node_sees_rotation_within_cache_seconds(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    node_a, node_b = build_service(sessions, clock), build_service(sessions, clock)
    node_a.ensure_keys()
    old = node_a.current("RS256")
    _, etag_before = node_a.jwks()

    clock.advance(1)
    [new_kid] = node_b.rotate("RS256")
    assert new_kid in published_kids(node_b)
    clock.advance(CACHE - 2)
    assert new_kid not in published_kids(node_a)  # still the cached document
    assert node_a.jwks()[1] == etag_before
    clock.advance(1)
    assert new_kid in published_kids(node_a)
    assert node_a.current("RS256").kid == old.kid

    clock.advance(OVERLAP)
    assert node_a.current("RS256").kid == new_kid
    assert node_b.current("RS256").kid == new_kid


def test_decrypts_each_key_once(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    build_service(sessions, clock).ensure_keys()
    encryptor = CountingEncryptor(KEK)
    service = build_service(sessions, clock, encryptor)
    for _ in range(100):
        service.current("RS256")
        service.current("ES256")
        service.jwks()
    assert encryptor.decryptions == 2
    clock.advance(CACHE * 5)  # several reloads
    for _ in range(10):
        service.current("RS256")
        clock.advance(CACHE)
    assert encryptor.decryptions == 2


def test_concurrent_readers_share_one_reload(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    build_service(sessions, clock).ensure_keys()
    encryptor = CountingEncryptor(KEK)
    service = build_service(sessions, clock, encryptor)
    barrier = threading.Barrier(8)
    kids: list[str] = []

    def read() -> None:
        barrier.wait()
        kids.append(service.current("RS256").kid)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 8 and len(set(kids)) == 1
    assert encryptor.decryptions == 2


def test_list_keys_reports_life_cycle(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    service = build_service(sessions, clock)
    service.ensure_keys()
    old = service.current("RS256").kid
    [new] = service.rotate("RS256")
    entries = {entry["kid"]: entry for entry in service.list_keys()}
    assert entries[old]["state"] == "active" and entries[old]["current"] is True
    assert entries[new]["state"] == "pending" and entries[new]["current"] is False
    assert set(entries[new]) == {
        "kid",
        "alg",
        "created_at",
        "activates_at",
        "retired_at",
        "expires_at",
        "state",
        "current",
    }
    clock.advance(OVERLAP + RETENTION)
    entries = {entry["kid"]: entry for entry in service.list_keys()}
    assert entries[old]["state"] == "expired" and entries[new]["current"] is True


def test_keeps_serving_cached_keys_when_the_database_fails(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    service = build_service(sessions, clock)
    service.ensure_keys()
    kid = service.current("RS256").kid
    body, etag = service.jwks()
    engine = sessions.kw["bind"]
    Base.metadata.tables["signing_keys"].drop(engine)  # every reload now fails with a database error
    try:
        clock.advance(CACHE + 1)
        assert service.current("RS256").kid == kid
        assert service.jwks() == (body, etag)
    finally:
        Base.metadata.create_all(engine)


def test_stored_public_jwk_with_private_member_is_never_published(
    sessions: sessionmaker[Session], clock: FakeClock
) -> None:
    service = build_service(sessions, clock)
    service.ensure_keys()
    kid = service.current("RS256").kid
    leaked = service.current("RS256").private_key.as_dict(private=True, kid=kid, alg="RS256", use="sig")
    with sessions.begin() as session:
        session.execute(update(SigningKeyRow).where(SigningKeyRow.kid == kid).values(public_jwk=dict(leaked)))
    clock.advance(CACHE)
    assert_public_only(service.jwks()[0])
    assert not PRIVATE_MEMBERS & set(service.current("RS256").public_jwk)
