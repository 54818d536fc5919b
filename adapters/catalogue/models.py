"""The catalogue's tables (SQLAlchemy 2 typed models): national items and their regional implementations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


def utc_now() -> datetime:
    return datetime.now(UTC)


class Item(Base):
    """A service item (政务服务事项) of the national catalogue, under its national code."""

    __tablename__ = "catalogue_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    subtype: Mapped[str | None] = mapped_column(String(32))
    department: Mapped[str] = mapped_column(String(200))
    acceptance_conditions: Mapped[str] = mapped_column(Text)
    materials: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    statutory_limit_days: Mapped[int]
    committed_limit_days: Mapped[int]
    fees: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # empty: free of charge
    status: Mapped[str] = mapped_column(String(16), index=True)
    withdrawal_reason: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(255))

    implementations: Mapped[list[ItemImplementation]] = relationship(
        back_populates="item", order_by="ItemImplementation.region_code", cascade="all, delete-orphan"
    )


class ItemImplementation(Base):
    """A region's implementation (实施清单) of a national item: same item, same standard, same code."""

    __tablename__ = "catalogue_implementations"
    __table_args__ = (UniqueConstraint("item_id", "region_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("catalogue_items.id", ondelete="CASCADE"), index=True)
    region_code: Mapped[str] = mapped_column(String(6))
    department: Mapped[str] = mapped_column(String(200))
    committed_limit_days: Mapped[int]
    notes: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(255))

    item: Mapped[Item] = relationship(back_populates="implementations")
