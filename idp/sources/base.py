"""The identity-source interface: authenticate, look up, verify a real name; one contract, several sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from idp.domain.errors import SourceUnavailable

__all__ = [
    "EntityRecord",
    "EntityRegister",
    "PersonSource",
    "RealNameVerifier",
    "SourcePerson",
    "SourceUnavailable",
]


@dataclass(frozen=True)
class SourcePerson:
    """What a source says about a person; `source_id` is the source's own stable identifier."""

    source: str
    source_id: str
    username: str | None = None
    name: str | None = None
    id_number: str | None = None
    email: str | None = None
    phone_number: str | None = None


@dataclass(frozen=True)
class EntityRecord:
    """What the enterprise register says about a legal entity."""

    uscc: str
    name: str
    entity_type: str
    status: str  # "active" | "suspended" | "deregistered"
    legal_representative_name: str
    legal_representative_id_number: str


class PersonSource(Protocol):
    name: str

    def authenticate(self, identifier: str, password: str) -> SourcePerson | None:
        """The person if the credentials are right, None if not; SourceUnavailable on failure."""

    def lookup(self, identifier: str) -> SourcePerson | None:
        """The person with this identifier, or None; SourceUnavailable on failure."""


class RealNameVerifier(Protocol):
    def verify_real_name(self, name: str, id_number: str) -> bool:
        """True when the population register holds this name with this number; SourceUnavailable on failure."""


class EntityRegister(Protocol):
    def lookup_entity(self, uscc: str) -> EntityRecord | None:
        """The register's record of this entity, or None; SourceUnavailable on failure."""
