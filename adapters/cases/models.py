"""The case service's tables (SQLAlchemy 2 typed models): cases, their events and their attached e-certificates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class CaseRow(Base):
    """A case (办件). The life-cycle fields mirror `lifecycle.Case`; `version` refuses lost updates."""

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    item_code: Mapped[str] = mapped_column(String(20), index=True)
    item_name: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(200))
    applicant_type: Mapped[str] = mapped_column(String(8))  # person | entity
    applicant_id: Mapped[str] = mapped_column(String(255), index=True)  # sub, or the entity's USCC
    applicant_name: Mapped[str] = mapped_column(String(200))
    agent_sub: Mapped[str | None] = mapped_column(String(255))  # the person acting for the entity
    agent_name: Mapped[str | None] = mapped_column(String(200))
    agent_role: Mapped[str | None] = mapped_column(String(32))  # legal_representative | agent
    status: Mapped[str] = mapped_column(String(32), index=True)
    limit_days: Mapped[int] = mapped_column(Integer)
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    corrections: Mapped[list[str]] = mapped_column(JSON, default=list)
    accepted_on: Mapped[date | None] = mapped_column(Date)
    deadline: Mapped[date | None] = mapped_column(Date)
    suspended_on: Mapped[date | None] = mapped_column(Date)
    suspended_from: Mapped[str | None] = mapped_column(String(32))
    postponed_days: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(16))
    rating: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    events: Mapped[list[EventRow]] = relationship(
        back_populates="case", order_by="EventRow.id", cascade="all, delete-orphan"
    )
    attachments: Mapped[list[AttachmentRow]] = relationship(
        back_populates="case", order_by="AttachmentRow.id", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declarative API


class EventRow(Base):
    """Every transition (who, when, reason): the case's record (Art. 12 electronic archiving)."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    from_status: Mapped[str] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    case: Mapped[CaseRow] = relationship(back_populates="events")


class AttachmentRow(Base):
    """An e-certificate attached by reference (Art. 7, Art. 11): nothing uploaded, the verification kept."""

    __tablename__ = "case_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    material: Mapped[str] = mapped_column(String(200))
    licence_type: Mapped[str] = mapped_column(String(64))
    licence_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64))
    type_name: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(64))
    issuer_name: Mapped[str | None] = mapped_column(String(200))
    verified: Mapped[bool] = mapped_column(Boolean)
    verification: Mapped[dict[str, Any]] = mapped_column(JSON)
    attached_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    case: Mapped[CaseRow] = relationship(back_populates="attachments")


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; every stored one is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
