"""The service's own tables (SQLAlchemy 2): issuing departments, their signing keys, and licences."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Issuer(Base):
    """An issuing department (发证机关); `current_kid` names the key it signs with now."""

    __tablename__ = "issuers"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    current_kid: Mapped[str | None] = mapped_column(String(64), default=None)


class IssuerKey(Base):
    """One ES256 key of a department (its electronic seal, 电子印章). Retired keys stay published so
    that licences signed before a rotation still verify."""

    __tablename__ = "issuer_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer_code: Mapped[str] = mapped_column(ForeignKey("issuers.code"), index=True)
    private_jwk: Mapped[str] = mapped_column(Text)  # sealed under the service's KEK (sealing.py)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Licence(Base):
    """An e-certificate (电子证照). `signature` is a compact JWS over `canonical_metadata(licence)`."""

    __tablename__ = "licences"
    __table_args__ = (UniqueConstraint("licence_type", "number", name="uq_licence_type_number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    licence_type: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64))
    holder_type: Mapped[str] = mapped_column(String(8))  # person | entity
    holder_id: Mapped[str] = mapped_column(String(255), index=True)  # entity: USCC; person: provider sub
    holder_name: Mapped[str] = mapped_column(String(100))
    issuer_code: Mapped[str] = mapped_column(ForeignKey("issuers.code"), index=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date, default=None)  # None: long-term (长期有效)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revocation_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    signature: Mapped[str] = mapped_column(Text, default="")


def as_utc(moment: datetime) -> datetime:
    """SQLite hands timestamps back without a zone; every stored timestamp is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
