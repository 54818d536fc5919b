"""Brute-force protection for password logins: per-account and per-address failure counters.

Counters live in the ephemeral store with TTL windows, so every node sees the same numbers. After a few
failures an account must wait a growing delay before its next attempt; after more it is locked for a
while. The verdict never changes what the login page says: a refused attempt is answered exactly like a
wrong password, so nobody learns whether an account exists or is locked.
"""

from __future__ import annotations

import hashlib
import math
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from idp.store.ephemeral import EphemeralStore


@dataclass(frozen=True)
class Verdict:
    """Whether a login attempt may be checked now; `retry_after` seconds until it may (0 if allowed)."""

    allowed: bool
    retry_after: int = 0


@dataclass(frozen=True)
class ThrottlePolicy:
    """The numbers; all windows in seconds."""

    window: int = 15 * 60  # failures are counted over this window (from the first one)
    delay_after: int = 3  # from this many account failures on, each next attempt waits
    max_delay: int = 60  # ... 2^(n - delay_after) seconds, at most this
    lock_after: int = 10  # this many account failures in the window lock the account
    lock_seconds: int = 15 * 60
    address_limit: int = 50  # this many failures from one address in the window block the address
    address_block_seconds: int = 15 * 60


def normalise_identifier(identifier: str) -> str:
    """The same account however it is typed: NFKC (full-width digits), trimmed, lower case."""
    return unicodedata.normalize("NFKC", identifier).strip().lower()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class LoginThrottle:
    """Growing delays and a temporary lock per account identifier; a higher limit per client address.

    Keys (identifier and address hashed, so the store holds neither):
      login-fail:acct:<h>   failures of this identifier in the current window (counter)
      login-wait:acct:<h>   earliest time of the next attempt (epoch seconds), during a delay
      login-lock:acct:<h>   end of the lock (epoch seconds), while locked
      login-fail:addr:<h>   failures from this address in the current window (counter)
      login-lock:addr:<h>   end of the address block (epoch seconds), while blocked
    """

    def __init__(
        self,
        store: EphemeralStore,
        *,
        clock: Callable[[], float] = time.time,
        policy: ThrottlePolicy | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.policy = policy or ThrottlePolicy()

    def check(self, identifier: str, address: str) -> Verdict:
        """May this attempt be checked now? A refusal must be answered like a wrong password."""
        now = self._clock()
        keys = [
            self._account_key("login-lock", identifier),
            self._account_key("login-wait", identifier),
            self._address_key("login-lock", address),
        ]
        retry_after = max(_seconds_until(raw, now) for raw in self._store.get_many(keys))  # one round trip
        return Verdict(allowed=retry_after == 0, retry_after=retry_after)

    def record_failure(self, identifier: str, address: str) -> None:
        """Count a failed (or refused) attempt; start a delay, a lock or an address block when due."""
        policy, now = self.policy, self._clock()
        if self._account_hash(identifier):
            failures = self._store.incr(self._account_key("login-fail", identifier), policy.window)
            if failures >= policy.lock_after:  # set-if-absent: further attempts do not extend a lock
                self._hold(
                    self._account_key("login-lock", identifier), now, policy.lock_seconds, extend=False
                )
            elif failures >= policy.delay_after:
                delay = min(policy.max_delay, 2 ** (failures - policy.delay_after))
                self._hold(self._account_key("login-wait", identifier), now, delay)
        if self._address_hash(address):
            failures = self._store.incr(self._address_key("login-fail", address), policy.window)
            if failures >= policy.address_limit:
                key = self._address_key("login-lock", address)
                self._hold(key, now, policy.address_block_seconds, extend=False)

    def record_success(self, identifier: str, address: str) -> None:
        """A good password on an allowed attempt: the account starts afresh (the address does not)."""
        self._store.delete(
            *(self._account_key(prefix, identifier) for prefix in ("login-fail", "login-wait"))
        )

    def record(self, identifier: str, address: str, *, succeeded: bool) -> None:
        """`record_success` or `record_failure`, for a one-line call from the login view."""
        if succeeded:
            self.record_success(identifier, address)
        else:
            self.record_failure(identifier, address)

    def is_locked(self, identifier: str) -> bool:
        return self._until(self._account_key("login-lock", identifier), self._clock()) > 0

    def unlock(self, identifier: str) -> None:
        """Admins: lift the lock and the delay of an account identifier and forget its failures."""
        self._store.delete(
            *(self._account_key(prefix, identifier) for prefix in ("login-lock", "login-wait", "login-fail"))
        )

    def unlock_address(self, address: str) -> None:
        """Admins: lift the block of a client address (e.g. a government office behind one NAT)."""
        self._store.delete(*(self._address_key(prefix, address) for prefix in ("login-lock", "login-fail")))

    def _hold(self, key: str, now: float, seconds: int, *, extend: bool = True) -> None:
        """Refuse attempts until now + seconds; with extend=False an existing hold is kept as it is."""
        value, ttl = str(math.ceil(now + seconds)), max(1, seconds)
        if extend:
            self._store.set(key, value, ttl)
        else:
            self._store.add(key, value, ttl)

    def _until(self, key: str, now: float) -> int:
        return _seconds_until(self._store.get(key), now)

    @staticmethod
    def _account_hash(identifier: str) -> str:
        normalised = normalise_identifier(identifier)
        return _digest(normalised) if normalised else ""

    @staticmethod
    def _address_hash(address: str) -> str:
        return _digest(address.strip()) if address and address.strip() else ""

    def _account_key(self, prefix: str, identifier: str) -> str:
        return f"{prefix}:acct:{self._account_hash(identifier) or '-'}"

    def _address_key(self, prefix: str, address: str) -> str:
        return f"{prefix}:addr:{self._address_hash(address) or '-'}"


def _seconds_until(raw: str | None, now: float) -> int:
    """Whole seconds until the epoch time a hold key stores (0: no hold, expired or unreadable)."""
    try:
        until = int(raw) if raw else 0
    except ValueError:
        return 0
    return max(0, math.ceil(until - now))
