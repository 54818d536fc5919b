"""Persons: creation and update, lookup by username, phone or resident ID number (blind index)."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from idp.domain.errors import DomainError
from idp.domain.identifiers import looks_like_resident_id, mask_resident_id, parse_resident_id
from idp.domain.models import Person
from idp.services.passwords import PasswordHashing
from idp.sources.local import LocalAccountSource
from idp.store.key_encryption import KeyEncryptor
from idp.store.models import PersonRow

MIN_PASSWORD_LENGTH = 8


class PersonError(ValueError):
    """Person data that cannot be stored, with a plain message."""


class PersonService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        hashing: PasswordHashing,
        encryptor: KeyEncryptor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._hashing = hashing
        self._encryptor = encryptor
        self._index_key = encryptor.derive("id-number-blind-index")
        self._clock = clock
        self.source = LocalAccountSource(self._find_account, hashing)

    def authenticate(self, identifier: str, password: str) -> Person | None:
        return self.source.authenticate(identifier.strip(), password)

    def get(self, person_id: str) -> Person | None:
        with self._sessions() as session:
            row = session.get(PersonRow, person_id)
            return _to_person(row) if row is not None else None

    def find_by_id_number(self, id_number: str) -> Person | None:
        """The person holding this resident identity number (blind-index lookup), or None."""
        with self._sessions() as session:
            row = session.scalar(
                select(PersonRow).where(PersonRow.id_number_index == self._blind_index(id_number.upper()))
            )
            return _to_person(row) if row is not None else None

    def upsert(self, data: dict[str, Any]) -> Person:
        """Create or update a person by username (provisioning); password optional on update."""
        username, id_number = validate_person_data(data)
        now = int(self._clock())
        with self._sessions.begin() as session:
            row = session.scalar(select(PersonRow).where(PersonRow.username == username))
            if row is None:
                if not data.get("password"):
                    raise PersonError("password is required for a new person")
                row = PersonRow(id=uuid.uuid4().hex, username=username, created_at=now)
                session.add(row)
            if data.get("password"):
                row.password_hash = self._hashing.hash(data["password"])
            if id_number:
                number = id_number
                row.id_number_enc = self._encryptor.encrypt(number.encode(), aad=row.id.encode())
                row.id_number_index = self._blind_index(number)
                row.id_number_masked = mask_resident_id(number)
                row.verified_at, row.verified_by = now, "operator"
            for name in ("name", "email", "phone_number"):
                if name in data:
                    setattr(row, name, data[name] or None)
            row.updated_at = now
            session.flush()
            return _to_person(row)

    def _blind_index(self, id_number: str) -> str:
        return hmac.new(self._index_key, id_number.encode(), hashlib.sha256).hexdigest()

    def _find_account(self, identifier: str) -> tuple[Person, str | None] | None:
        if not identifier or len(identifier) > 128:
            return None
        conditions = [PersonRow.username == identifier, PersonRow.phone_number == identifier]
        if looks_like_resident_id(identifier):
            conditions.append(PersonRow.id_number_index == self._blind_index(identifier.upper()))
        with self._sessions() as session:
            row = session.scalars(select(PersonRow).where(or_(*conditions)).limit(1)).first()
            return (_to_person(row), row.password_hash) if row is not None else None


def validate_person_data(data: dict[str, Any]) -> tuple[str, str | None]:
    """Check provisioning data; returns the username and the normalised identity number."""
    username = data.get("username")
    if not isinstance(username, str) or not 1 <= len(username.strip()) <= 64:
        raise PersonError("username must be 1-64 characters")
    username = username.strip()
    if looks_like_resident_id(username) or username.isdigit():
        raise PersonError("username must not be a number (it would clash with ID or phone login)")
    for name in ("password", "id_number", "name", "email", "phone_number"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise PersonError(f"{name} must be a string")
    if data.get("password") and len(data["password"]) < MIN_PASSWORD_LENGTH:
        raise PersonError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    id_number = None
    if data.get("id_number"):
        try:
            id_number = parse_resident_id(data["id_number"]).value
        except DomainError as exc:
            raise PersonError(f"id_number: {exc}") from None
    return username, id_number


def _to_person(row: PersonRow) -> Person:
    return Person(
        id=row.id,
        username=row.username,
        name=row.name,
        email=row.email,
        email_verified=row.email_verified,
        phone_number=row.phone_number,
        id_number_masked=row.id_number_masked,
        verified=row.verified_at is not None,
        mfa_enabled=row.totp_enabled_at is not None,
        disabled=row.disabled,
    )
