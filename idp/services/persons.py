"""Persons: creation and update, lookup by username, phone or resident ID number (blind index)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Select, Table, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from idp.domain.documents import RESIDENT_ID, IdentityDocument, parse_document
from idp.domain.errors import DomainError
from idp.domain.identifiers import looks_like_resident_id, mask_resident_id, parse_resident_id
from idp.domain.models import Person
from idp.services.passwords import PasswordHashing
from idp.sources.base import PersonSource, SourcePerson
from idp.sources.local import LocalAccountSource
from idp.store.db import LIKE_ESCAPE, autocommit_reader, contains_pattern
from idp.store.key_encryption import KeyEncryptor
from idp.store.models import PersonRow

PERSONS: Table = PersonRow.__table__  # type: ignore[assignment]
# What a Person holds, by id: built once (compiled once), and only the columns it needs. Neither the
# password hash nor the sealed ID number leaves the database for a userinfo answer.
PERSON_COLUMNS = tuple(
    PERSONS.c[name]
    for name in (
        "id", "username", "name", "email", "email_verified", "phone_number", "id_number_masked",
        "verified_at", "totp_enabled_at", "disabled",
    )
)  # fmt: skip
GET_PERSON = select(*PERSON_COLUMNS).where(PERSONS.c.id == bindparam("person_id"))
# The account a login names, with its password hash: by username or mobile number, and by the ID
# number's blind index when the identifier looks like one. Built once, like GET_PERSON: a login
# otherwise spends more building and caching the statement than PostgreSQL spends running it.
_BY_NAME_OR_PHONE = (
    PERSONS.c.username == bindparam("identifier"),
    PERSONS.c.phone_number == bindparam("identifier"),
)
_ACCOUNT: Select[Any] = select(*PERSON_COLUMNS, PERSONS.c.password_hash).limit(1)
FIND_ACCOUNT = _ACCOUNT.where(or_(*_BY_NAME_OR_PHONE))
FIND_ACCOUNT_OR_ID = _ACCOUNT.where(or_(*_BY_NAME_OR_PHONE, PERSONS.c.id_number_index == bindparam("index")))

MAX_PAGE = 200

MIN_PASSWORD_LENGTH = 8


class PersonError(ValueError):
    """Person data that cannot be stored, with a plain message."""


class ContactInUse(PersonError):
    """Self-registration: the email address or mobile number already belongs to an account."""


class IdNumberInUse(PersonError):
    """Real-name verification: another person already holds this identity number."""


@dataclass(frozen=True)
class SealedIdNumber:
    """An identity number in its stored form: AES-GCM ciphertext bound to the person's id, the HMAC
    blind index that lookups use, and the masked form shown on screens."""

    encrypted: bytes
    index: str
    masked: str

    def __repr__(self) -> str:  # the ciphertext and index say nothing, but keep log lines short
        return f"SealedIdNumber({self.masked!r})"


class PersonService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        hashing: PasswordHashing,
        encryptor: KeyEncryptor,
        clock: Callable[[], float] = time.time,
        external_source: PersonSource | None = None,
    ) -> None:
        self._sessions = sessions
        self._reader = autocommit_reader(sessions)
        self._external = external_source
        self._hashing = hashing
        self._encryptor = encryptor
        self._index_key = encryptor.derive("id-number-blind-index")
        self._clock = clock
        self.source = LocalAccountSource(self._find_account, hashing)

    def authenticate(self, identifier: str, password: str) -> Person | None:
        """Check the credentials at the configured source. An external source's failure raises
        SourceUnavailable (the login is refused with a clear message, never let through)."""
        if self._external is None:
            return self.source.authenticate(identifier.strip(), password)
        found = self._external.authenticate(identifier.strip(), password)
        return self._link_external(found) if found is not None else None

    def _link_external(self, found: SourcePerson) -> Person | None:
        """The local person for an external identity, created or refreshed from what the source says."""
        now = int(self._clock())
        for _attempt in range(2):  # two first logins at once: the loser re-reads the winner's row
            try:
                with self._sessions.begin() as session:
                    row = session.scalar(
                        select(PersonRow).where(
                            PersonRow.external_source == found.source,
                            PersonRow.external_id == found.source_id,
                        )
                    )
                    if row is None:
                        row = PersonRow(
                            id=uuid.uuid4().hex,
                            username=f"{found.source}:{found.source_id}"[:64],
                            external_source=found.source,
                            external_id=found.source_id,
                            created_at=now,
                        )
                        session.add(row)
                    row.name = found.name or row.name
                    row.email = found.email or row.email
                    row.updated_at = now
                    if found.id_number and row.id_number_index is None:
                        number = _valid_id_number(found.id_number)
                        if number is not None:
                            sealed = self.seal_id_number(row.id, number)
                            row.id_number_enc, row.id_number_index = sealed.encrypted, sealed.index
                            row.id_number_masked = sealed.masked
                            row.verified_at, row.verified_by = now, found.source
                    session.flush()
                    return None if row.disabled else _to_person(row)
            except IntegrityError:
                continue
        return None

    def get(self, person_id: str) -> Person | None:
        # Core in autocommit, not an ORM session: userinfo and every token issuance read a person,
        # and the session's BEGIN/ROLLBACK round trips and identity map cost more than the SELECT.
        with self._reader.connect() as conn:
            row = conn.execute(GET_PERSON, {"person_id": person_id}).first()
        return _to_person(row) if row is not None else None

    def search(self, query: str, offset: int = 0, limit: int = 50) -> list[Person]:
        """Persons matching `query` for an admin: a resident ID number (exact, through the blind
        index), a mobile number or username (exact), or part of a name or username; by username."""
        query = query.strip()[:128]
        offset, limit = max(0, offset), min(max(1, limit), MAX_PAGE)
        statement = select(PersonRow).order_by(PersonRow.username)
        if query:
            if looks_like_resident_id(query):
                statement = statement.where(PersonRow.id_number_index == self._blind_index(query.upper()))
            else:
                pattern = contains_pattern(query)
                statement = statement.where(
                    or_(
                        PersonRow.phone_number == query,
                        PersonRow.username.ilike(pattern, escape=LIKE_ESCAPE),
                        PersonRow.name.ilike(pattern, escape=LIKE_ESCAPE),
                    )
                )
        with self._sessions() as session:
            return [_to_person(row) for row in session.scalars(statement.offset(offset).limit(limit))]

    def set_disabled(self, person_id: str, disabled: bool) -> Person | None:
        """Lock (disabled) or unlock a person; None if there is no such person."""
        with self._sessions.begin() as session:
            row = session.get(PersonRow, person_id)
            if row is None:
                return None
            if row.disabled != disabled:
                row.disabled = disabled
                row.updated_at = int(self._clock())
            return _to_person(row)

    def find_by_id_number(self, id_number: str) -> Person | None:
        """The person holding this resident identity number (blind-index lookup), or None."""
        with self._sessions() as session:
            row = session.scalar(
                select(PersonRow).where(PersonRow.id_number_index == self._blind_index(id_number.upper()))
            )
            return _to_person(row) if row is not None else None

    def upsert(self, data: dict[str, Any]) -> Person:
        """Create or update a person by username (provisioning); password optional on update."""
        username, document = validate_person_data(data)
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
            if document is not None:
                sealed = self.seal_id_number(row.id, document.number, masked=document.masked)
                row.id_number_enc, row.id_number_index = sealed.encrypted, sealed.index
                row.id_number_masked = sealed.masked
                row.document_type = document.document_type
                row.verified_at, row.verified_by = now, "operator"
            for name in ("name", "email", "phone_number"):
                if name in data:
                    setattr(row, name, data[name] or None)
            row.updated_at = now
            session.flush()
            return _to_person(row)

    # -- self-service accounts (registration, passwords, real-name verification) -------------------

    def find_for_recovery(self, identifier: str) -> Person | None:
        """The person a password-reset request names: username, mobile number, identity number, or an
        email address that exactly one person has."""
        identifier = identifier.strip()
        found = self._find_account(identifier)
        if found is not None:
            return found[0]
        if "@" not in identifier or len(identifier) > 254:
            return None
        with self._sessions() as session:
            rows = session.scalars(
                select(PersonRow).where(func.lower(PersonRow.email) == identifier.lower()).limit(2)
            ).all()
            return _to_person(rows[0]) if len(rows) == 1 else None

    def contact_in_use(self, *, email: str | None = None, phone_number: str | None = None) -> bool:
        """Whether an account already has this email address (as email or username) or mobile number."""
        with self._sessions() as session:
            return self._contact_taken(session, email, phone_number)

    def register_self(
        self, *, email: str | None, phone_number: str | None, name: str | None, password: str
    ) -> Person:
        """Create a self-registered (level 1) account whose contact was proven by a one-time link.

        The person signs in with the email address (which becomes the username) or the mobile number;
        a phone-only account gets a generated username. ContactInUse if an account has the contact."""
        if not email and not phone_number:
            raise PersonError("an email address or a mobile number is required")
        if email and len(email) <= 64:
            username = email.lower()
        else:
            username = "u" + secrets.token_hex(6)
        password_hash = self._hashing.hash(password)
        now = int(self._clock())
        try:
            with self._sessions.begin() as session:
                if self._contact_taken(session, email, phone_number):
                    raise ContactInUse("the email address or mobile number is already in use")
                row = PersonRow(
                    id=uuid.uuid4().hex,
                    username=username,
                    password_hash=password_hash,
                    name=name or None,
                    email=email.lower() if email else None,
                    email_verified=bool(email),  # the registration link reached it
                    phone_number=phone_number or None,
                    self_registered=True,
                    password_changed_at=now,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                return _to_person(row)
        except IntegrityError:  # a concurrent registration of the same contact won
            raise ContactInUse("the email address or mobile number is already in use") from None

    def _contact_taken(self, session: Session, email: str | None, phone_number: str | None) -> bool:
        conditions = []
        if email:
            conditions += [func.lower(PersonRow.email) == email.lower(), PersonRow.username == email.lower()]
        if phone_number:
            conditions += [PersonRow.phone_number == phone_number, PersonRow.username == phone_number]
        if not conditions:
            return False
        return session.scalar(select(PersonRow.id).where(or_(*conditions)).limit(1)) is not None

    def check_password(self, person_id: str, password: str) -> bool:
        """Whether this is the person's password (the hash always runs, even for an unknown id)."""
        with self._sessions() as session:
            row = session.get(PersonRow, person_id)
            password_hash = row.password_hash if row is not None and not row.disabled else None
        return self._hashing.verify(password_hash, password)

    def set_password(self, person_id: str, password: str) -> int:
        """Replace the password; returns the new `password_changed_at`."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise PersonError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
        password_hash = self._hashing.hash(password)
        now = int(self._clock())
        with self._sessions.begin() as session:
            row = session.get(PersonRow, person_id)
            if row is None:
                raise PersonError("no such person")
            row.password_hash = password_hash
            row.password_changed_at = now
            row.updated_at = now
        return now

    def password_changed_at(self, person_id: str) -> int | None:
        """When the password was last set (None if never recorded or no such person)."""
        with self._sessions() as session:
            return session.scalar(select(PersonRow.password_changed_at).where(PersonRow.id == person_id))

    def mark_verified(self, person_id: str, *, name: str, id_number: str, verified_by: str) -> Person:
        """Record a real-name verification: the name, the identity number (encrypted, blind index,
        masked) and when and by which source. IdNumberInUse if another person holds the number."""
        number = parse_resident_id(id_number).value
        index = self._blind_index(number)
        now = int(self._clock())
        try:
            with self._sessions.begin() as session:
                holder = session.scalar(select(PersonRow.id).where(PersonRow.id_number_index == index))
                if holder is not None and holder != person_id:
                    raise IdNumberInUse("another person holds this identity number")
                row = session.get(PersonRow, person_id)
                if row is None:
                    raise PersonError("no such person")
                sealed = self.seal_id_number(person_id, number)
                row.id_number_enc, row.id_number_index = sealed.encrypted, sealed.index
                row.id_number_masked = sealed.masked
                row.document_type = "resident_id"
                row.name = name
                row.verified_at, row.verified_by = now, verified_by
                row.updated_at = now
                session.flush()
                return _to_person(row)
        except IntegrityError:  # a concurrent verification of the same number won
            raise IdNumberInUse("another person holds this identity number") from None

    def seal_id_number(self, person_id: str, number: str, *, masked: str | None = None) -> SealedIdNumber:
        """The stored form of a person's (normalised, valid) identity number: what every write of
        `id_number_enc`/`id_number_index`/`id_number_masked` uses, bulk seeding included."""
        return SealedIdNumber(
            encrypted=self._encryptor.encrypt(number.encode(), aad=person_id.encode()),
            index=self._blind_index(number),
            masked=masked if masked is not None else mask_resident_id(number),
        )

    def hash_password(self, password: str) -> str:
        """The argon2id hash of a password with this service's parameters (the one login verifies)."""
        return self._hashing.hash(password)

    def _blind_index(self, id_number: str) -> str:
        return hmac.new(self._index_key, id_number.encode(), hashlib.sha256).hexdigest()

    def _find_account(self, identifier: str) -> tuple[Person, str | None] | None:
        if not identifier or len(identifier) > 128:
            return None
        params = {"identifier": identifier}
        statement = FIND_ACCOUNT
        if looks_like_resident_id(identifier):
            params["index"], statement = self._blind_index(identifier.upper()), FIND_ACCOUNT_OR_ID
        with self._reader.connect() as conn:
            row = conn.execute(statement, params).first()
        return (_to_person(row), row.password_hash) if row is not None else None


def validate_person_data(data: dict[str, Any]) -> tuple[str, IdentityDocument | None]:
    """Check provisioning data; returns the username and the identity document (`id_number` of
    `document_type`, default the resident ID card), normalised."""
    username = data.get("username")
    if not isinstance(username, str) or not 1 <= len(username.strip()) <= 64:
        raise PersonError("username must be 1-64 characters")
    username = username.strip()
    if looks_like_resident_id(username) or username.isdigit():
        raise PersonError("username must not be a number (it would clash with ID or phone login)")
    for name in ("password", "id_number", "document_type", "name", "email", "phone_number"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise PersonError(f"{name} must be a string")
    if data.get("password") and len(data["password"]) < MIN_PASSWORD_LENGTH:
        raise PersonError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    document = None
    if data.get("id_number"):
        try:
            document = parse_document(data.get("document_type") or RESIDENT_ID, data["id_number"])
        except DomainError as exc:
            raise PersonError(f"id_number: {exc}") from None
    elif data.get("document_type"):
        raise PersonError("document_type needs id_number")
    return username, document


def _valid_id_number(text: str) -> str | None:
    try:
        return parse_resident_id(text).value
    except DomainError:
        return None


def _to_person(row: PersonRow | Row[Any]) -> Person:
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
