"""Legal entities and who may act for them: register verification, representatives, agents, acting-as."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from idp.domain.entities import (
    ROLE_PRECEDENCE,
    ActingAs,
    AgentAuthorisation,
    CannotActForEntity,
    EntityStatus,
    LegalEntity,
    Role,
    check_can_act,
    check_entity_active,
    names_match,
    powers_for_role,
    validate_entity_type,
)
from idp.domain.errors import DomainError
from idp.domain.identifiers import parse_resident_id, parse_uscc
from idp.domain.models import Person
from idp.services.persons import PersonService
from idp.sources.base import EntityRecord, EntityRegister, SourceUnavailable
from idp.store.db import autocommit_reader
from idp.store.models import AgentAuthorisationRow, LegalEntityRow

log = logging.getLogger(__name__)

MAX_NAME_LENGTH = 200
MAX_GRANTED_BY_LENGTH = 64
MAX_PAGE = 200
GRANTED_BY_REGISTER = "register"
_REGISTER_STATUSES = ("active", "suspended", "deregistered")
_GRANTS = AgentAuthorisationRow.__table__
# A person's unrevoked representative and entity-admin authorisations for entities that still exist:
# asked at every login and every SSO authorization, so built once (compiled once, no construction
# per call); whether one is in force now is the domain's `is_active`.
SECOND_FACTOR_GRANTS = (
    select(_GRANTS)
    .join(LegalEntityRow, LegalEntityRow.id == _GRANTS.c.entity_id)
    .where(
        _GRANTS.c.person_id == bindparam("person_id"),
        _GRANTS.c.revoked_at.is_(None),
        _GRANTS.c.role.in_([Role.LEGAL_REPRESENTATIVE.value, Role.ENTITY_ADMIN.value]),
        LegalEntityRow.status != EntityStatus.DEREGISTERED.value,
    )
)


class EntityError(ValueError):
    """An entity operation that cannot be done; `code` is stable, the message is plain words."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __repr__(self) -> str:
        return f"EntityError(code={self.code!r}, message={self.message!r})"


def _from_domain(exc: DomainError) -> EntityError:
    return EntityError(exc.message, code=exc.code)


class EntityService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        persons: PersonService,
        register: EntityRegister | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._reader = autocommit_reader(sessions)
        self._persons = persons
        self._register = register
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    # -- entities ---------------------------------------------------------------------------------

    def create_entity(self, uscc: str, name: str, entity_type: str = "enterprise") -> LegalEntity:
        """Record a legal entity, pending verification against the enterprise register."""
        try:
            code = parse_uscc(uscc).value
            validate_entity_type(entity_type)
        except DomainError as exc:
            raise _from_domain(exc) from None
        name = name.strip() if isinstance(name, str) else ""
        if not 1 <= len(name) <= MAX_NAME_LENGTH:
            raise EntityError(f"The entity name must be 1-{MAX_NAME_LENGTH} characters.", code="invalid_name")
        now = self._now()
        try:
            with self._sessions.begin() as session:
                if session.scalar(select(LegalEntityRow.id).where(LegalEntityRow.uscc == code)):
                    raise _duplicate(code)
                row = LegalEntityRow(
                    id=uuid.uuid4().hex,
                    uscc=code,
                    name=name,
                    entity_type=entity_type,
                    status=EntityStatus.PENDING.value,
                    verified_at=None,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                return _to_entity(row)
        except IntegrityError:  # a concurrent create of the same code won the insert
            raise _duplicate(code) from None

    def get_entity(self, entity_id: str) -> LegalEntity | None:
        with self._sessions.begin() as session:
            row = session.get(LegalEntityRow, entity_id)
            return _to_entity(row) if row is not None else None

    def find_entity_by_uscc(self, uscc: str) -> LegalEntity | None:
        """The entity with this code, or None; a malformed code raises EntityError saying what is wrong."""
        try:
            code = parse_uscc(uscc).value
        except DomainError as exc:
            raise _from_domain(exc) from None
        with self._sessions.begin() as session:
            row = session.scalar(select(LegalEntityRow).where(LegalEntityRow.uscc == code))
            return _to_entity(row) if row is not None else None

    def list_entities(self, offset: int = 0, limit: int = 50) -> list[LegalEntity]:
        offset, limit = max(0, offset), min(max(1, limit), MAX_PAGE)
        with self._sessions.begin() as session:
            rows = session.scalars(
                select(LegalEntityRow)
                .order_by(LegalEntityRow.name, LegalEntityRow.uscc)
                .offset(offset)
                .limit(limit)
            )
            return [_to_entity(row) for row in rows]

    def verify_entity(self, entity_id: str) -> LegalEntity:
        """Check the entity against the enterprise register and take its status and representative.

        The register is called outside any transaction; if it fails, nothing changes.
        """
        entity = self._require_entity(entity_id)
        _refuse_verification_from(entity.status)
        if self._register is None:
            raise EntityError(
                "No enterprise register is configured, so entities cannot be verified.",
                code="no_register",
            )
        try:
            record = self._register.lookup_entity(entity.uscc)
        except SourceUnavailable:
            log.warning("enterprise register unavailable while verifying entity %s", entity.id)
            raise EntityError(
                "The enterprise register cannot be reached just now; nothing was changed. "
                "Please try again later.",
                code="register_unavailable",
            ) from None
        if record is None or record.uscc.strip().upper() != entity.uscc:
            raise EntityError(
                f"The enterprise register has no entity with the code {entity.uscc}.",
                code="not_in_register",
            )
        if not names_match(record.name, entity.name):
            raise EntityError(
                f"The name recorded here ({entity.name}) differs from the name in the enterprise register "
                f"({record.name}); correct the name first.",
                code="name_mismatch",
            )
        if record.status not in _REGISTER_STATUSES:
            raise EntityError(
                f"The enterprise register gives an unknown status ({record.status[:20]}); nothing was changed.",
                code="register_status_unknown",
            )
        representative = self._registered_representative(record)
        now = self._now()
        with self._sessions.begin() as session:
            row = self._lock_entity(session, entity_id)
            _refuse_verification_from(EntityStatus(row.status))  # changed while we asked the register?
            if record.status in (EntityStatus.SUSPENDED, EntityStatus.DEREGISTERED):
                row.status = EntityStatus(record.status).value
                if record.status == EntityStatus.DEREGISTERED:
                    self._revoke_all(session, entity_id, now)
            else:
                row.status = EntityStatus.VERIFIED.value
                row.verified_at = now
                self._apply_registered_representative(session, entity_id, record, representative, now)
            row.updated_at = now
            session.flush()
            return _to_entity(row)

    def verify_by_operator(self, entity_id: str) -> LegalEntity:
        """Record a pending entity as verified on the operator's word (provisioning where no enterprise
        register is configured); the caller audits it. A verified entity is left as it is."""
        now = self._now()
        with self._sessions.begin() as session:
            row = self._lock_entity(session, entity_id)
            _refuse_verification_from(EntityStatus(row.status))
            if row.status != EntityStatus.VERIFIED:
                row.status = EntityStatus.VERIFIED.value
                row.verified_at = now
                row.updated_at = now
            session.flush()
            return _to_entity(row)

    def suspend(self, entity_id: str) -> LegalEntity:
        """Stop everyone acting for the entity until reinstated; authorisations are kept."""
        return self._transition(
            entity_id,
            lambda row: EntityStatus.SUSPENDED,
            refused={
                EntityStatus.SUSPENDED: "The entity is already suspended.",
                EntityStatus.DEREGISTERED: "A deregistered entity cannot be suspended.",
            },
        )

    def reinstate(self, entity_id: str) -> LegalEntity:
        """Lift a suspension: back to verified (or to pending, if it never was verified)."""
        return self._transition(
            entity_id,
            lambda row: EntityStatus.VERIFIED if row.verified_at is not None else EntityStatus.PENDING,
            refused={
                EntityStatus.PENDING: _NOT_SUSPENDED,
                EntityStatus.VERIFIED: _NOT_SUSPENDED,
                EntityStatus.DEREGISTERED: "A deregistered entity cannot be reinstated.",
            },
        )

    def deregister(self, entity_id: str) -> LegalEntity:
        """Final: the entity no longer exists; every authorisation for it is revoked."""
        return self._transition(
            entity_id,
            lambda row: EntityStatus.DEREGISTERED,
            refused={EntityStatus.DEREGISTERED: "The entity is already deregistered."},
        )

    def _transition(
        self,
        entity_id: str,
        target: Callable[[LegalEntityRow], EntityStatus],
        *,
        refused: dict[EntityStatus, str],
    ) -> LegalEntity:
        """Move the entity to `target(row)` unless its current status is one of `refused` (the message)."""
        now = self._now()
        with self._sessions.begin() as session:
            row = self._lock_entity(session, entity_id)
            current = EntityStatus(row.status)
            if current in refused:
                raise EntityError(refused[current], code="invalid_transition")
            new = target(row)
            row.status = new.value
            row.updated_at = now
            if new is EntityStatus.DEREGISTERED:
                self._revoke_all(session, entity_id, now)
            session.flush()
            return _to_entity(row)

    # -- representatives and agents ---------------------------------------------------------------

    def set_legal_representative(self, entity_id: str, person_id: str, granted_by: str) -> AgentAuthorisation:
        """Make `person_id` the entity's one legal representative, revoking the previous one's authority.

        Their other authorisations for the entity (as agent or admin) are revoked too: they hold every
        power now. Setting the current representative again changes nothing.
        """
        _check_granted_by(granted_by)
        self._require_eligible_person(person_id)
        now = self._now()
        with self._sessions.begin() as session:
            row = self._lock_entity(session, entity_id)
            if row.status == EntityStatus.DEREGISTERED:
                raise EntityError(
                    f"{row.name} has been deregistered; it can have no representative.",
                    code="entity_deregistered",
                )
            return self._install_representative(session, entity_id, person_id, granted_by, now)

    def grant_agent(
        self,
        entity_id: str,
        person_id: str,
        powers: Iterable[str] | str,
        valid_until: int | None,
        granted_by_person_id: str | None,
        by_admin: str | None = None,
        *,
        role: Role = Role.AGENT,
        valid_from: int | None = None,
    ) -> AgentAuthorisation:
        """Give a person explicit powers to act for the entity, replacing any earlier grant to them.

        Only the entity's current legal representative (`granted_by_person_id`) or an admin (`by_admin`)
        may grant, only for a verified entity, and only until a time in the future (None: until revoked).
        """
        if role not in (Role.AGENT, Role.ENTITY_ADMIN):
            raise EntityError(
                "Authority can be granted as agent or entity_admin; a legal representative is set from "
                "the register or by an admin.",
                code="invalid_role",
            )
        role = Role(role)
        try:
            normalised = powers_for_role(role, powers)
        except DomainError as exc:
            raise _from_domain(exc) from None
        now = self._now()
        starts = now if valid_from is None else valid_from
        if valid_until is not None and valid_until <= max(now, starts):
            raise EntityError("The authorisation must end at a time in the future.", code="invalid_validity")
        if granted_by_person_id is not None and granted_by_person_id == person_id:
            raise EntityError("A person cannot grant authority to themselves.", code="self_grant")
        self._require_eligible_person(person_id)
        with self._sessions.begin() as session:
            entity_row = self._lock_entity(session, entity_id)
            entity = _to_entity(entity_row)
            granted_by = self._check_granter(session, entity, granted_by_person_id, by_admin, now)
            try:
                check_entity_active(entity)
            except CannotActForEntity as exc:
                raise EntityError(exc.message, code=exc.code) from None
            held = self._active_rows(session, entity_id=entity_id, person_id=person_id, now=now)
            if any(r.role == Role.LEGAL_REPRESENTATIVE for r in held):
                raise EntityError(
                    "This person is the entity's legal representative and already holds every power.",
                    code="already_representative",
                )
            for previous in held:  # one delegated authorisation per person and entity: the new one
                previous.revoked_at = now
            row = AgentAuthorisationRow(
                id=uuid.uuid4().hex,
                entity_id=entity_id,
                person_id=person_id,
                role=role.value,
                powers=" ".join(normalised),
                valid_from=starts,
                valid_until=valid_until,
                granted_by=granted_by,
                revoked_at=None,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return _to_authorisation(row)

    def revoke_authorisation(
        self, authorisation_id: str, by_person_id: str | None, by_admin: str | None = None
    ) -> AgentAuthorisation:
        """End an authorisation now. Allowed to the entity's representative, to an admin, and to the
        holder of an agent or admin authorisation giving it up; revoking twice changes nothing.

        A representative cannot revoke their own authority here: an admin or the register replaces them.
        """
        now = self._now()
        with self._sessions.begin() as session:
            found = session.get(AgentAuthorisationRow, authorisation_id)
            if found is None:
                raise EntityError("There is no such authorisation.", code="not_found")
            self._lock_entity(session, found.entity_id)
            row = session.get(AgentAuthorisationRow, authorisation_id, populate_existing=True)
            assert row is not None  # authorisations are never deleted
            if by_admin:
                _check_granted_by(f"admin:{by_admin}")
            elif by_person_id is None:
                raise EntityError("Say who is revoking the authorisation.", code="forbidden")
            elif row.role == Role.LEGAL_REPRESENTATIVE:
                raise EntityError(
                    "A legal representative's authority is changed by an admin or from the enterprise "
                    "register, not revoked from an account page.",
                    code="forbidden",
                )
            elif by_person_id != row.person_id and not self._is_representative(
                session, row.entity_id, by_person_id, now
            ):
                raise EntityError(
                    "Only the entity's legal representative or an admin can revoke this authorisation.",
                    code="forbidden",
                )
            if row.revoked_at is None:
                row.revoked_at = now
            session.flush()
            return _to_authorisation(row)

    # -- acting for an entity ---------------------------------------------------------------------

    def acting_options(self, person_id: str) -> list[ActingAs]:
        """The entities this person can act for now, with their strongest role, sorted by name."""
        now = self._now()
        with self._sessions.begin() as session:
            pairs = session.execute(
                select(AgentAuthorisationRow, LegalEntityRow)
                .join(LegalEntityRow, LegalEntityRow.id == AgentAuthorisationRow.entity_id)
                .where(
                    AgentAuthorisationRow.person_id == person_id,
                    AgentAuthorisationRow.revoked_at.is_(None),
                    LegalEntityRow.status == EntityStatus.VERIFIED.value,
                )
            ).all()
            candidates = [(_to_entity(e), _to_authorisation(a)) for a, e in pairs]
        best: dict[str, ActingAs] = {}
        for entity, authorisation in candidates:
            try:
                check_can_act(entity, authorisation, now)
            except CannotActForEntity:
                continue
            option = ActingAs.of(entity, authorisation)
            held = best.get(entity.id)
            if held is None or _rank(option.role) < _rank(held.role):
                best[entity.id] = option
        return sorted(best.values(), key=lambda o: (o.name, o.uscc))

    def acting_as(self, person_id: str, entity_id: str) -> ActingAs:
        """What the person may do for the entity now; CannotActForEntity (or EntityError) says why not.

        Called when the person picks an entity and again on every token, so a revocation, an expiry or
        a suspension takes effect on the next token.
        """
        now = self._now()
        with self._sessions.begin() as session:
            entity_row = session.get(LegalEntityRow, entity_id)
            if entity_row is None:
                raise EntityError("There is no such entity.", code="not_found")
            entity = _to_entity(entity_row)
            authorisations = [
                _to_authorisation(r)
                for r in session.scalars(
                    select(AgentAuthorisationRow)
                    .where(
                        AgentAuthorisationRow.person_id == person_id,
                        AgentAuthorisationRow.entity_id == entity_id,
                    )
                    .order_by(
                        AgentAuthorisationRow.created_at.desc(), AgentAuthorisationRow.valid_from.desc()
                    )
                )
            ]
        if not authorisations:
            raise CannotActForEntity(
                f"You hold no authorisation to act for {entity.name}.", code="no_authorisation"
            )
        refusal: CannotActForEntity | None = None
        usable: list[AgentAuthorisation] = []
        for authorisation in authorisations:  # newest first: its refusal is the one worth showing
            try:
                check_can_act(entity, authorisation, now)
            except CannotActForEntity as exc:
                refusal = refusal or exc
                continue
            usable.append(authorisation)
        if not usable:
            assert refusal is not None
            raise refusal
        return ActingAs.of(entity, min(usable, key=lambda a: _rank(a.role)))

    def requires_mfa(self, person_id: str) -> bool:
        """True when the person holds an active representative or entity-admin authorisation for an
        entity that still exists (not deregistered): they must use a second factor. Asked at every
        login and authorization, so a Core read in autocommit (no ORM session, no BEGIN/ROLLBACK)."""
        now = self._now()
        with self._reader.connect() as conn:
            rows = conn.execute(SECOND_FACTOR_GRANTS, {"person_id": person_id}).all()
        return any(_to_authorisation(r).is_active(now) for r in rows)

    def authorisations_of_entity(
        self, entity_id: str, *, active_only: bool = False
    ) -> list[AgentAuthorisation]:
        """The entity's authorisations, newest first (all of them, or only those in force now)."""
        return self._authorisations(AgentAuthorisationRow.entity_id == entity_id, active_only)

    def authorisations_of_person(
        self, person_id: str, *, active_only: bool = False
    ) -> list[AgentAuthorisation]:
        """The person's authorisations, newest first (all of them, or only those in force now)."""
        return self._authorisations(AgentAuthorisationRow.person_id == person_id, active_only)

    def _authorisations(self, condition: ColumnElement[bool], active_only: bool) -> list[AgentAuthorisation]:
        now = self._now()
        with self._sessions.begin() as session:
            rows = session.scalars(
                select(AgentAuthorisationRow)
                .where(condition)
                .order_by(AgentAuthorisationRow.created_at.desc(), AgentAuthorisationRow.id)
            )
            found = [_to_authorisation(r) for r in rows]
        return [a for a in found if a.is_active(now)] if active_only else found

    # -- inside a transaction ---------------------------------------------------------------------

    def _require_entity(self, entity_id: str) -> LegalEntity:
        entity = self.get_entity(entity_id)
        if entity is None:
            raise EntityError("There is no such entity.", code="not_found")
        return entity

    def _lock_entity(self, session: Session, entity_id: str) -> LegalEntityRow:
        """The entity row, locked for the transaction (PostgreSQL), so changes to one entity's
        authorisations happen one at a time and there is never more than one representative."""
        row = session.scalar(select(LegalEntityRow).where(LegalEntityRow.id == entity_id).with_for_update())
        if row is None:
            raise EntityError("There is no such entity.", code="not_found")
        return row

    def _require_eligible_person(self, person_id: str) -> Person:
        person = self._persons.get(person_id)
        if person is None:
            raise EntityError("There is no such person.", code="person_not_found")
        if person.disabled:
            raise EntityError("This person's account is disabled.", code="person_disabled")
        if not person.verified:
            raise EntityError(
                "Only a person whose real name has been verified can act for an entity.",
                code="person_not_verified",
            )
        return person

    def _active_rows(
        self, session: Session, *, entity_id: str, person_id: str | None = None, now: int
    ) -> list[AgentAuthorisationRow]:
        """Authorisations for the entity not revoked and not ended (including ones that start later)."""
        query = select(AgentAuthorisationRow).where(
            AgentAuthorisationRow.entity_id == entity_id, AgentAuthorisationRow.revoked_at.is_(None)
        )
        if person_id is not None:
            query = query.where(AgentAuthorisationRow.person_id == person_id)
        return [r for r in session.scalars(query) if r.valid_until is None or now < r.valid_until]

    def _is_representative(self, session: Session, entity_id: str, person_id: str, now: int) -> bool:
        return any(
            _to_authorisation(r).is_active(now) and r.role == Role.LEGAL_REPRESENTATIVE
            for r in self._active_rows(session, entity_id=entity_id, person_id=person_id, now=now)
        )

    def _check_granter(
        self,
        session: Session,
        entity: LegalEntity,
        granted_by_person_id: str | None,
        by_admin: str | None,
        now: int,
    ) -> str:
        """Who grants, as stored in `granted_by`; refuse anyone but the representative or an admin."""
        if by_admin:
            granted_by = f"admin:{by_admin}"
            _check_granted_by(granted_by)
            return granted_by
        if granted_by_person_id and self._is_representative(session, entity.id, granted_by_person_id, now):
            return f"person:{granted_by_person_id}"
        raise EntityError(
            f"Only the legal representative of {entity.name} or an admin can grant authority to act for it.",
            code="forbidden",
        )

    def _install_representative(
        self, session: Session, entity_id: str, person_id: str, granted_by: str, now: int
    ) -> AgentAuthorisation:
        current = self._active_rows(session, entity_id=entity_id, now=now)
        for row in current:
            if row.role == Role.LEGAL_REPRESENTATIVE and row.person_id == person_id and row.valid_from <= now:
                return _to_authorisation(row)  # already the representative
        for row in current:  # the old representative, and the new one's lesser authorisations
            if row.role == Role.LEGAL_REPRESENTATIVE or row.person_id == person_id:
                row.revoked_at = now
        row = AgentAuthorisationRow(
            id=uuid.uuid4().hex,
            entity_id=entity_id,
            person_id=person_id,
            role=Role.LEGAL_REPRESENTATIVE.value,
            powers=" ".join(powers_for_role(Role.LEGAL_REPRESENTATIVE)),
            valid_from=now,
            valid_until=None,
            granted_by=granted_by,
            revoked_at=None,
            created_at=now,
        )
        session.add(row)
        session.flush()
        return _to_authorisation(row)

    def _registered_representative(self, record: EntityRecord) -> tuple[str | None, Person | None] | None:
        """Who the register names as representative: (person id holding that number, eligible person).

        None when the register gives no usable identity number, so nothing can be concluded.
        """
        try:
            number = parse_resident_id(record.legal_representative_id_number or "").value
        except DomainError:
            return None
        holder = self._persons.find_by_id_number(number)
        if holder is None:
            return (None, None)
        eligible = (
            holder
            if names_match(holder.name, record.legal_representative_name) and not holder.disabled
            else None
        )
        return (holder.id, eligible)

    def _apply_registered_representative(
        self,
        session: Session,
        entity_id: str,
        record: EntityRecord,
        representative: tuple[str | None, Person | None] | None,
        now: int,
    ) -> None:
        """The register is the authority on who represents the entity: install the person it names (if
        they hold an account with the same name) and end a representative it no longer names."""
        if representative is None:
            return
        holder_id, eligible = representative
        if eligible is not None:
            self._install_representative(session, entity_id, eligible.id, GRANTED_BY_REGISTER, now)
            return
        for row in self._active_rows(session, entity_id=entity_id, now=now):
            if row.role == Role.LEGAL_REPRESENTATIVE and row.person_id != holder_id:
                row.revoked_at = now

    def _revoke_all(self, session: Session, entity_id: str, now: int) -> None:
        for row in self._active_rows(session, entity_id=entity_id, now=now):
            row.revoked_at = now


def _rank(role: Role) -> int:
    return ROLE_PRECEDENCE.index(role)


def _duplicate(code: str) -> EntityError:
    return EntityError(f"An entity with the code {code} is already registered.", code="duplicate")


def _check_granted_by(granted_by: str) -> None:
    if not granted_by or len(granted_by) > MAX_GRANTED_BY_LENGTH:
        raise EntityError(
            f"Who grants must be given in 1-{MAX_GRANTED_BY_LENGTH} characters.", code="invalid_granted_by"
        )


def _refuse_verification_from(status: EntityStatus) -> None:
    if status is EntityStatus.DEREGISTERED:
        raise EntityError(
            "The entity has been deregistered; it cannot be verified.", code="invalid_transition"
        )
    if status is EntityStatus.SUSPENDED:
        raise EntityError(
            "The entity is suspended; reinstate it instead of verifying it again.", code="invalid_transition"
        )


_NOT_SUSPENDED = "The entity is not suspended, so there is nothing to reinstate."


def _to_entity(row: LegalEntityRow) -> LegalEntity:
    return LegalEntity(
        id=row.id,
        uscc=row.uscc,
        name=row.name,
        entity_type=row.entity_type,
        status=EntityStatus(row.status),
        verified_at=row.verified_at,
    )


def _to_authorisation(row: AgentAuthorisationRow | Row[Any]) -> AgentAuthorisation:
    return AgentAuthorisation(
        id=row.id,
        entity_id=row.entity_id,
        person_id=row.person_id,
        role=Role(row.role),
        powers=tuple(row.powers.split()),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        granted_by=row.granted_by,
        revoked_at=row.revoked_at,
    )
