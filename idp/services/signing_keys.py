"""Signing keys: creation, rotation with overlap, the cached current key and the published JWKS."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from joserfc.jwk import ECKey, JWKRegistry, KeySet, RSAKey
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from idp.store import signing_keys as repo
from idp.store.key_encryption import KeyEncryptor
from idp.store.models import SigningKeyRow

log = logging.getLogger(__name__)

SUPPORTED_ALGS: tuple[str, ...] = ("RS256", "ES256")
RSA_KEY_BITS = 2048
EC_CURVE = "P-256"
# JWK members that carry private material (RFC 7518 §6.2.2, §6.3.2, §6.4); never published.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

PrivateJwk = RSAKey | ECKey


class NoSigningKeyError(RuntimeError):
    """No key of the requested algorithm signs now (ensure_keys has not run, or all were retired)."""


class KeyRetirementError(ValueError):
    """A key that cannot be retired, with a message for the operator."""


@dataclass(frozen=True)
class SigningKey:
    """A decrypted key that signs; `public_jwk` carries kid, alg and use="sig"."""

    kid: str
    alg: str
    private_key: PrivateJwk = field(repr=False)
    public_jwk: dict[str, Any]


@dataclass(frozen=True)
class _CachedKey:
    kid: str
    alg: str
    created_at: int
    activates_at: int
    retired_at: int | None
    expires_at: int | None
    signing_key: SigningKey | None  # None once retired at load time: only its public part is kept

    def signs_at(self, now: float) -> bool:
        return self.activates_at <= now and (self.retired_at is None or self.retired_at > now)


@dataclass(frozen=True)
class _Snapshot:
    keys: tuple[_CachedKey, ...]
    jwks_json: bytes
    etag: str
    key_set: KeySet
    refresh_at: float


class SigningKeyService:
    """Keys live in the database, private parts encrypted; each node caches them for `cache_seconds`.

    A rotation publishes the new key at once and lets it sign only after `overlap_seconds`, so every
    node and every relying party's JWKS cache has it before the first token it signs appears.
    """

    def __init__(
        self,
        sessionmaker: sessionmaker[Session],
        encryptor: KeyEncryptor,
        *,
        overlap_seconds: int,
        retention_seconds: int,
        cache_seconds: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if cache_seconds < 0:
            raise ValueError("cache_seconds must not be negative")
        if overlap_seconds <= cache_seconds:
            raise ValueError(
                f"overlap_seconds ({overlap_seconds}) must exceed cache_seconds ({cache_seconds}), "
                "or a node could sign with a key that other nodes do not publish yet"
            )
        if retention_seconds <= 0:
            raise ValueError("retention_seconds must be positive (the longest lifetime of a signed token)")
        self._sessionmaker = sessionmaker
        self._encryptor = encryptor
        self._overlap = overlap_seconds
        self._retention = retention_seconds
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    # -- writing -----------------------------------------------------------------------------------

    def ensure_keys(self) -> None:
        """Create an immediately active key for each algorithm that has none active or pending."""
        with self._sessionmaker() as session:
            now = self._now()
            missing = list_algs_without_key(repo.list_published_signing_keys(session, now), now)
        if not missing:
            return
        # Generate outside the transaction: RSA generation is slow and the lock below is global.
        generated = {alg: generate_private_jwk(alg) for alg in missing}
        try:
            with self._sessionmaker.begin() as session:
                repo.lock_signing_keys(session)
                now = self._now()
                # Re-read under the lock: another process may have created them meanwhile.
                for alg in list_algs_without_key(
                    repo.list_published_signing_keys(session, now), now, missing
                ):
                    repo.add_signing_key(session, self._build_row(generated[alg], now, activates_at=now))
                    log.info("created %s signing key %s", alg, generated[alg].thumbprint())
        except IntegrityError:
            log.warning("concurrent signing-key creation detected; using the keys already stored")
        with self._sessionmaker() as session:
            now = self._now()
            still_missing = list_algs_without_key(repo.list_published_signing_keys(session, now), now)
        if still_missing:
            raise NoSigningKeyError(f"could not create signing keys for {', '.join(still_missing)}")
        self._invalidate_cache()

    def rotate(self, alg: str | None = None) -> list[str]:
        """Publish a new key per algorithm that signs after the overlap; retire its predecessors then.

        Returns the new kids. The predecessors stay published for `retention_seconds` after retiring.
        """
        algs = list(SUPPORTED_ALGS) if alg is None else [check_alg(alg)]
        generated = {a: generate_private_jwk(a) for a in algs}
        new_kids: list[str] = []
        with self._sessionmaker.begin() as session:
            repo.lock_signing_keys(session)
            now = self._now()
            published = repo.list_published_signing_keys(session, now)
            for a in algs:
                same_alg = [row for row in published if row.alg == a]
                signing_now = any(_row_signs_at(row, now) for row in same_alg)
                # With no key signing now (never initialised) there is nothing to overlap with.
                activates_at = now + self._overlap if signing_now else now
                new_row = self._build_row(generated[a], now, activates_at=activates_at)
                for row in same_alg:
                    if row.retired_at is None or row.retired_at > activates_at:
                        repo.set_signing_key_retirement(
                            session,
                            row.kid,
                            retired_at=activates_at,
                            expires_at=activates_at + self._retention,
                        )
                repo.add_signing_key(session, new_row)
                new_kids.append(new_row.kid)
                log.info("rotated %s: new key %s signs from %d", a, new_row.kid, activates_at)
        self._invalidate_cache()
        return new_kids

    def retire(self, kid: str) -> dict[str, Any]:
        """Stop signing with `kid` now; it stays in the JWKS until the tokens it signed have expired.

        Refused (KeyRetirementError) for an unknown or already retired key, and for the only key of
        its algorithm that signs now: rotate first so that another key takes over."""
        with self._sessionmaker.begin() as session:
            repo.lock_signing_keys(session)
            now = self._now()
            rows = repo.list_signing_keys(session)
            row = next((r for r in rows if r.kid == kid), None)
            if row is None:
                raise KeyRetirementError("There is no signing key with this kid.")
            if row.retired_at is not None and row.retired_at <= now:
                raise KeyRetirementError("This key is already retired.")
            others = [r for r in rows if r.alg == row.alg and r.kid != kid and _row_signs_at(r, now)]
            if row.activates_at <= now and not others:
                raise KeyRetirementError(
                    f"This is the only {row.alg} key that signs now: rotate first, then retire it."
                )
            repo.set_signing_key_retirement(session, kid, retired_at=now, expires_at=now + self._retention)
        self._invalidate_cache()
        log.info("retired signing key %s", kid)
        return next(k for k in self.list_keys() if k["kid"] == kid)

    # -- reading (cached) --------------------------------------------------------------------------

    def current(self, alg: str) -> SigningKey:
        """The key that signs now: active, not retired, the most recently activated."""
        check_alg(alg)
        now = self._clock()
        candidates = [k for k in self._load_snapshot().keys if k.alg == alg and k.signs_at(now)]
        if not candidates:
            raise NoSigningKeyError(f"no {alg} signing key is active; run ensure_keys() first")
        newest = max(candidates, key=lambda k: (k.activates_at, k.created_at, k.kid))
        assert newest.signing_key is not None  # decrypted at load for every key not yet retired
        return newest.signing_key

    def jwks(self) -> tuple[bytes, str]:
        """The JWKS document (public keys of every published key) and its strong ETag."""
        snapshot = self._load_snapshot()
        return snapshot.jwks_json, snapshot.etag

    def verification_key_set(self) -> KeySet:
        """Public keys of every published key, for verifying our own tokens (e.g. id_token_hint)."""
        return self._load_snapshot().key_set

    def list_keys(self) -> list[dict[str, Any]]:
        """Every stored key with its life-cycle times and state, read from the database (not cached)."""
        now = self._now()
        with self._sessionmaker() as session:
            rows = repo.list_signing_keys(session)
        signing = {row.kid for alg in SUPPORTED_ALGS if (row := pick_signing_row(rows, alg, now)) is not None}
        return [
            {
                "kid": row.kid,
                "alg": row.alg,
                "created_at": row.created_at,
                "activates_at": row.activates_at,
                "retired_at": row.retired_at,
                "expires_at": row.expires_at,
                "state": describe_state(row, now),
                "current": row.kid in signing,
            }
            for row in rows
        ]

    # -- internals ---------------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock())

    def _invalidate_cache(self) -> None:
        with self._lock:
            self._snapshot = None

    def _load_snapshot(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and self._clock() < snapshot.refresh_at:
            return snapshot
        with self._lock:
            snapshot = self._snapshot
            now = self._clock()
            if snapshot is not None and now < snapshot.refresh_at:
                return snapshot  # another thread reloaded while we waited
            try:
                snapshot = self._read_snapshot(now, previous=snapshot)
            except DBAPIError:
                if snapshot is None:
                    raise
                # Keep serving the keys we have through a database outage; retry after cache_seconds.
                log.exception("reloading signing keys failed; serving the cached keys")
                snapshot = replace(snapshot, refresh_at=now + max(self._cache_seconds, 1))
            self._snapshot = snapshot
            return snapshot

    def _read_snapshot(self, now: float, previous: _Snapshot | None) -> _Snapshot:
        with self._sessionmaker() as session:
            rows = repo.list_published_signing_keys(session, int(now))
        decrypted = {k.kid: k.signing_key for k in previous.keys if k.signing_key} if previous else {}
        keys: list[_CachedKey] = []
        for row in rows:
            signing_key: SigningKey | None = None
            if row.retired_at is None or row.retired_at > now:
                signing_key = decrypted.get(row.kid) or self._decrypt_row(row)
            keys.append(
                _CachedKey(
                    kid=row.kid,
                    alg=row.alg,
                    created_at=row.created_at,
                    activates_at=row.activates_at,
                    retired_at=row.retired_at,
                    expires_at=row.expires_at,
                    signing_key=signing_key,
                )
            )
        public_jwks = [strip_private_members(row.public_jwk) for row in rows]
        # Sorted keys and compact separators: every node serves identical bytes, hence the same ETag.
        body = json.dumps({"keys": public_jwks}, sort_keys=True, separators=(",", ":")).encode()
        # Reload no later than the next expiry, so an expired key leaves the JWKS on time.
        expiries = [row.expires_at for row in rows if row.expires_at is not None]
        refresh_at = min([now + self._cache_seconds, *expiries])
        return _Snapshot(
            keys=tuple(keys),
            jwks_json=body,
            etag='"' + hashlib.sha256(body).hexdigest() + '"',
            key_set=KeySet([JWKRegistry.import_key(jwk) for jwk in public_jwks]),
            refresh_at=refresh_at,
        )

    def _decrypt_row(self, row: SigningKeyRow) -> SigningKey:
        private_json = self._encryptor.decrypt(row.private_enc, aad=row.kid.encode("utf-8"))
        private_key = import_private_jwk(json.loads(private_json))
        if private_key.thumbprint() != row.kid:
            raise ValueError(f"signing key {row.kid}: stored private key does not match its kid")
        return SigningKey(
            kid=row.kid,
            alg=row.alg,
            private_key=private_key,
            public_jwk=strip_private_members(row.public_jwk),
        )

    def _build_row(self, private_key: PrivateJwk, now: int, *, activates_at: int) -> SigningKeyRow:
        kid = private_key.thumbprint()  # RFC 7638 JWK thumbprint
        alg = alg_for_key(private_key)
        params = {"kid": kid, "alg": alg, "use": "sig"}
        private_json = json.dumps(private_key.as_dict(private=True, **params), sort_keys=True).encode()
        return SigningKeyRow(
            kid=kid,
            alg=alg,
            public_jwk=dict(private_key.as_dict(private=False, **params)),
            private_enc=self._encryptor.encrypt(private_json, aad=kid.encode("utf-8")),
            created_at=now,
            activates_at=activates_at,
            retired_at=None,
            expires_at=None,
        )


def check_alg(alg: str) -> str:
    """Return `alg` if we sign with it, else raise ValueError."""
    if alg not in SUPPORTED_ALGS:
        raise ValueError(
            f"unsupported signing algorithm {alg!r}; expected one of {', '.join(SUPPORTED_ALGS)}"
        )
    return alg


def generate_private_jwk(alg: str) -> PrivateJwk:
    """A fresh private key for `alg`: RSA 2048 for RS256, EC P-256 for ES256."""
    if check_alg(alg) == "RS256":
        return RSAKey.generate_key(RSA_KEY_BITS, private=True)
    return ECKey.generate_key(EC_CURVE, private=True)


def import_private_jwk(data: dict[str, Any]) -> PrivateJwk:
    """A joserfc private key from its JWK dict."""
    key = JWKRegistry.import_key(data)
    if not isinstance(key, RSAKey | ECKey) or not key.is_private:
        raise ValueError("stored signing key is not a private RSA or EC key")
    return key


def list_algs_without_key(
    rows: Iterable[SigningKeyRow], now: int, algs: Iterable[str] = SUPPORTED_ALGS
) -> list[str]:
    """Algorithms among `algs` with no key that is active or pending at `now` (i.e. not retired)."""
    covered = {row.alg for row in rows if row.retired_at is None or row.retired_at > now}
    return [alg for alg in algs if alg not in covered]


def pick_signing_row(rows: Iterable[SigningKeyRow], alg: str, now: int) -> SigningKeyRow | None:
    """The row of `alg` that signs at `now`: the most recently activated of those not retired."""
    candidates = [row for row in rows if row.alg == alg and _row_signs_at(row, now)]
    return max(candidates, key=lambda r: (r.activates_at, r.created_at, r.kid), default=None)


def alg_for_key(key: PrivateJwk) -> str:
    return "RS256" if isinstance(key, RSAKey) else "ES256"


def strip_private_members(jwk: dict[str, Any]) -> dict[str, Any]:
    """A copy of `jwk` without any private member, whatever the stored document holds."""
    return {name: value for name, value in jwk.items() if name not in PRIVATE_MEMBERS}


def describe_state(row: SigningKeyRow, now: int) -> str:
    """pending (published, not signing yet) | active | retired (published, no longer signs) | expired."""
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    if row.retired_at is not None and row.retired_at <= now:
        return "retired"
    if row.activates_at > now:
        return "pending"
    return "active"


def _row_signs_at(row: SigningKeyRow, now: float) -> bool:
    return row.activates_at <= now and (row.retired_at is None or row.retired_at > now)
