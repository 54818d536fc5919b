"""Legal entities (法人), agent authorisations and the rule for who may act for an entity, and when."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from idp.domain.errors import DomainError

__all__ = [
    "ALL_POWERS",
    "ENTITY_TYPES",
    "MAX_POWERS",
    "ActingAs",
    "AgentAuthorisation",
    "CannotActForEntity",
    "EntityStatus",
    "InvalidEntityData",
    "LegalEntity",
    "Role",
    "check_can_act",
    "check_entity_active",
    "check_powers",
    "names_match",
    "powers_for_role",
    "validate_entity_type",
]


class EntityStatus(StrEnum):
    """Life cycle of a legal entity in the provider: pending → verified ⇄ suspended → deregistered."""

    PENDING = "pending"  # created, not yet checked against the enterprise register
    VERIFIED = "verified"
    SUSPENDED = "suspended"
    DEREGISTERED = "deregistered"  # final


class Role(StrEnum):
    """The capacity in which a person acts for an entity."""

    LEGAL_REPRESENTATIVE = "legal_representative"  # 法定代表人: every power
    AGENT = "agent"  # 经办人 / 被授权人: explicit powers
    ENTITY_ADMIN = "entity_admin"  # manages the entity's account: explicit powers


# Stronger roles first: when one person holds several valid authorisations for one entity.
ROLE_PRECEDENCE = (Role.LEGAL_REPRESENTATIVE, Role.ENTITY_ADMIN, Role.AGENT)

ENTITY_TYPES = ("enterprise", "institution", "social_organisation", "other")

ALL_POWERS = ("*",)  # the legal representative's powers: everything the entity may do
MAX_POWERS = 32
_POWER = re.compile(r"[a-z][a-z0-9_:.-]{0,63}")


class InvalidEntityData(DomainError):
    """An entity type or a list of powers that cannot be accepted."""

    code = "invalid_entity_data"


class CannotActForEntity(DomainError):
    """A person may not act for this entity now; the code says why, the message says it plainly."""

    code = "cannot_act"


@dataclass(frozen=True)
class LegalEntity:
    """A legal entity (法人) identified by its unified social credit code."""

    id: str
    uscc: str
    name: str
    entity_type: str
    status: EntityStatus
    verified_at: int | None = None


@dataclass(frozen=True)
class AgentAuthorisation:
    """Authority of one person to act for one entity, in one role, for a period, until revoked."""

    id: str
    entity_id: str
    person_id: str
    role: Role
    powers: tuple[str, ...]
    valid_from: int
    valid_until: int | None  # None: until revoked
    granted_by: str
    revoked_at: int | None = None

    def is_active(self, now: int) -> bool:
        """Not revoked, already started and not yet ended (valid_until is exclusive)."""
        return (
            self.revoked_at is None
            and self.valid_from <= now
            and (self.valid_until is None or now < self.valid_until)
        )


@dataclass(frozen=True)
class ActingAs:
    """The entity a person acts for in this login, and with which role and powers."""

    entity_id: str
    uscc: str
    name: str
    role: Role
    powers: tuple[str, ...]

    def allows(self, scope: str) -> bool:
        return "*" in self.powers or scope in self.powers

    def to_claim(self) -> dict[str, Any]:
        """The `entity` claim of ID tokens, access tokens and userinfo (the entity id stays internal)."""
        return {"uscc": self.uscc, "name": self.name, "role": str(self.role), "powers": list(self.powers)}

    @classmethod
    def of(cls, entity: LegalEntity, authorisation: AgentAuthorisation) -> ActingAs:
        return cls(entity.id, entity.uscc, entity.name, authorisation.role, authorisation.powers)


def check_can_act(entity: LegalEntity, authorisation: AgentAuthorisation, now: int) -> None:
    """Raise CannotActForEntity unless `authorisation` lets its person act for `entity` at `now`."""
    if authorisation.entity_id != entity.id:
        raise CannotActForEntity(
            f"This authorisation is for another entity, not for {entity.name}.",
            code="authorisation_mismatch",
        )
    check_entity_active(entity)
    if authorisation.revoked_at is not None:
        raise CannotActForEntity(
            f"Your authorisation to act for {entity.name} has been revoked.", code="authorisation_revoked"
        )
    if now < authorisation.valid_from:
        raise CannotActForEntity(
            f"Your authorisation to act for {entity.name} is not valid yet.",
            code="authorisation_not_yet_valid",
        )
    if authorisation.valid_until is not None and now >= authorisation.valid_until:
        raise CannotActForEntity(
            f"Your authorisation to act for {entity.name} has expired.", code="authorisation_expired"
        )


def check_entity_active(entity: LegalEntity) -> None:
    """Raise CannotActForEntity unless the entity itself can be acted for (verified, not suspended)."""
    if entity.status is EntityStatus.VERIFIED:
        return
    if entity.status is EntityStatus.PENDING:
        raise CannotActForEntity(
            f"{entity.name} is not yet verified against the enterprise register, "
            "so nobody can act for it yet.",
            code="entity_pending",
        )
    if entity.status is EntityStatus.SUSPENDED:
        raise CannotActForEntity(
            f"{entity.name} is suspended, so nobody can act for it at present.", code="entity_suspended"
        )
    raise CannotActForEntity(
        f"{entity.name} has been deregistered, so nobody can act for it.", code="entity_deregistered"
    )


def check_powers(powers: Iterable[str] | str) -> tuple[str, ...]:
    """Validate an agent's powers (scope-like tokens, at most MAX_POWERS); return them sorted, unique.

    A string is read as a space-separated list, as in an OAuth `scope` parameter.
    """
    items = powers.split() if isinstance(powers, str) else list(powers)
    if not items:
        raise InvalidEntityData("Give the agent at least one power.", code="no_powers")
    for power in items:
        if not isinstance(power, str) or not _POWER.fullmatch(power):
            raise InvalidEntityData(
                f"{str(power)[:70]!r} is not a valid power: use a lower-case letter followed by up to 63 "
                "lower-case letters, digits or _ : . -",
                code="invalid_power",
            )
    unique = tuple(sorted(set(items)))
    if len(unique) > MAX_POWERS:
        raise InvalidEntityData(
            f"An agent can hold at most {MAX_POWERS} powers, not {len(unique)}.", code="too_many_powers"
        )
    return unique


def powers_for_role(role: Role, powers: Iterable[str] | str = ()) -> tuple[str, ...]:
    """The powers stored for an authorisation: all of them for the representative, explicit otherwise."""
    if role is Role.LEGAL_REPRESENTATIVE:
        return ALL_POWERS
    return check_powers(powers)


def validate_entity_type(entity_type: str) -> str:
    """Return the entity type if it is one of ENTITY_TYPES; raise InvalidEntityData otherwise."""
    if entity_type not in ENTITY_TYPES:
        raise InvalidEntityData(
            f"Unknown entity type {str(entity_type)[:40]!r}; use one of {', '.join(ENTITY_TYPES)}.",
            code="invalid_entity_type",
        )
    return entity_type


def names_match(a: str | None, b: str | None) -> bool:
    """Whether two names are the same ignoring width (全角/半角) and white space, e.g. （ and (."""
    if not a or not b:
        return False
    return _normalise_name(a) == _normalise_name(b)


def _normalise_name(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name).split())
