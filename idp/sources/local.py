"""The local account source: persons whose password is kept (argon2id) in our own database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from idp.domain.models import Person


class PasswordVerifier(Protocol):
    def verify(self, password_hash: str | None, password: str) -> bool: ...


class LocalAccountSource:
    """Authenticates an identifier (username, resident ID number or phone) and a password."""

    def __init__(
        self,
        find_account: Callable[[str], tuple[Person, str | None] | None],
        verifier: PasswordVerifier,
    ) -> None:
        self._find_account = find_account
        self._verifier = verifier

    def authenticate(self, identifier: str, password: str) -> Person | None:
        found = self._find_account(identifier)
        person, password_hash = found if found is not None else (None, None)
        ok = self._verifier.verify(password_hash, password)  # always runs: no timing oracle
        if not ok or person is None or person.disabled:
            return None
        return person
