"""The catalogue's use cases: search and read items, create, replace and withdraw them, implement them in regions.

The only module that opens transactions; callers get JSON-ready dicts, never ORM rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from adapters.catalogue.models import Item, ItemImplementation, utc_now
from adapters.catalogue.payloads import ImplementationDraft, InvalidInput, ItemDraft, SearchQuery
from adapters.catalogue.vocabulary import ACTIVE, WITHDRAWN


class NotFound(LookupError):
    """No item under that code."""


class Conflict(Exception):
    """The request contradicts the catalogue's current state (taken code, withdrawn item, stale version)."""


@dataclass(frozen=True)
class SearchPage:
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int


class Catalogue:
    """The item catalogue (政务服务事项目录) over one database."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # -- reading ------------------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> SearchPage:
        """Items whose name, code or department contains `text`, of `kind` and `status`, by code."""
        conditions = []
        if query.text:
            pattern = f"%{escape_like(query.text)}%"
            conditions.append(
                or_(
                    Item.name.ilike(pattern, escape="\\"),
                    Item.code.ilike(pattern, escape="\\"),
                    Item.department.ilike(pattern, escape="\\"),
                )
            )
        if query.kind:
            conditions.append(Item.kind == query.kind)
        if query.status:
            conditions.append(Item.status == query.status)
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(Item).where(*conditions)) or 0
            rows = session.scalars(
                select(Item).where(*conditions).order_by(Item.code).offset(query.offset).limit(query.limit)
            ).all()
            return SearchPage([item_summary(row) for row in rows], total, query.offset, query.limit)

    def find(self, code: str) -> dict[str, Any] | None:
        """The whole item with its regional implementations, or None."""
        with self._sessions() as session:
            item = self._load(session, code)
            return item_detail(item) if item else None

    def implementations(self, code: str) -> list[dict[str, Any]]:
        with self._sessions() as session:
            return [implementation_json(row, code) for row in self._require(session, code).implementations]

    # -- writing ------------------------------------------------------------------------------------

    def create(self, draft: ItemDraft, *, actor: str) -> dict[str, Any]:
        try:
            with self._sessions.begin() as session:
                if session.scalar(select(Item.id).where(Item.code == draft.code)) is not None:
                    raise Conflict(f"an item with code {draft.code} already exists")
                item = Item(code=draft.code, status=ACTIVE, version=1, withdrawal_reason="")
                apply_draft(item, draft, actor)
                session.add(item)
                session.flush()
                return item_detail(item, implementations=[])
        except IntegrityError:  # a concurrent create of the same code
            raise Conflict(f"an item with code {draft.code} already exists") from None

    def update(
        self, code: str, draft: ItemDraft, *, actor: str, expected_version: int | None = None
    ) -> dict[str, Any]:
        """Replace the item's description; its code, status and regional implementations stay."""
        with self._sessions.begin() as session:
            item = self._require(session, code, for_update=True)
            if item.status == WITHDRAWN:
                raise Conflict(f"item {code} is withdrawn and can no longer change")
            if expected_version is not None and expected_version != item.version:
                raise Conflict(f"item {code} is at version {item.version}, not {expected_version}")
            above = [
                row.region_code
                for row in item.implementations
                if row.committed_limit_days > draft.statutory_limit_days
            ]
            if above:
                raise Conflict(
                    "regions " + ", ".join(above) + " commit to more working days than the new statutory "
                    f"limit ({draft.statutory_limit_days}); change their implementations first"
                )
            apply_draft(item, draft, actor)
            item.version += 1
            session.flush()
            return item_detail(item)

    def withdraw(self, code: str, *, reason: str, actor: str) -> dict[str, Any]:
        with self._sessions.begin() as session:
            item = self._require(session, code, for_update=True)
            if item.status == WITHDRAWN:
                raise Conflict(f"item {code} is already withdrawn")
            item.status, item.withdrawal_reason = WITHDRAWN, reason
            item.version += 1
            item.updated_at, item.updated_by = utc_now(), actor
            session.flush()
            return item_detail(item)

    def implement(self, code: str, draft: ImplementationDraft, *, actor: str) -> dict[str, Any]:
        """A region takes up the national item: its local committed limit never exceeds the statutory one."""
        try:
            with self._sessions.begin() as session:
                item = self._require(session, code, for_update=True)
                if item.status == WITHDRAWN:
                    raise Conflict(f"item {code} is withdrawn; regions can no longer implement it")
                if draft.committed_limit_days > item.statutory_limit_days:
                    raise InvalidInput(
                        "committed_limit_days",
                        f"the local committed limit ({draft.committed_limit_days}) may not exceed the "
                        f"national statutory limit ({item.statutory_limit_days})",
                    )
                if any(row.region_code == draft.region_code for row in item.implementations):
                    raise Conflict(f"region {draft.region_code} already implements item {code}")
                row = ItemImplementation(
                    region_code=draft.region_code,
                    department=draft.department,
                    committed_limit_days=draft.committed_limit_days,
                    notes=draft.notes,
                    updated_at=utc_now(),
                    updated_by=actor,
                )
                item.implementations.append(row)
                session.flush()
                return implementation_json(row, code)
        except IntegrityError:
            raise Conflict(f"region {draft.region_code} already implements item {code}") from None

    # -- internals ----------------------------------------------------------------------------------

    @staticmethod
    def _load(session: Session, code: str, *, for_update: bool = False) -> Item | None:
        statement = select(Item).where(Item.code == code).options(selectinload(Item.implementations))
        if for_update:
            statement = statement.with_for_update(of=Item)  # PostgreSQL: writers of one item queue up
        return session.scalar(statement)

    def _require(self, session: Session, code: str, *, for_update: bool = False) -> Item:
        item = self._load(session, code, for_update=for_update)
        if item is None:
            raise NotFound(f"no item with code {code}")
        return item


def apply_draft(item: Item, draft: ItemDraft, actor: str) -> None:
    item.name, item.kind, item.subtype = draft.name, draft.kind, draft.subtype
    item.department = draft.department
    item.acceptance_conditions = draft.acceptance_conditions
    item.materials = [material.as_json() for material in draft.materials]
    item.steps = [step.as_json() for step in draft.steps]
    item.statutory_limit_days = draft.statutory_limit_days
    item.committed_limit_days = draft.committed_limit_days
    item.fees = [fee.as_json() for fee in draft.fees]
    item.updated_at, item.updated_by = utc_now(), actor


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC; SQLite gives naive datetimes back, which were stored as UTC."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def item_summary(item: Item) -> dict[str, Any]:
    return {
        "code": item.code,
        "name": item.name,
        "kind": item.kind,
        "subtype": item.subtype,
        "department": item.department,
        "statutory_limit_days": item.statutory_limit_days,
        "committed_limit_days": item.committed_limit_days,
        "status": item.status,
        "version": item.version,
        "updated_at": timestamp(item.updated_at),
    }


def item_detail(item: Item, implementations: list[ItemImplementation] | None = None) -> dict[str, Any]:
    rows = item.implementations if implementations is None else implementations
    return {
        **item_summary(item),
        "acceptance_conditions": item.acceptance_conditions,
        "materials": list(item.materials),
        "steps": list(item.steps),
        "fees": list(item.fees) or "free",
        "withdrawal_reason": item.withdrawal_reason or None,
        "implementations": [implementation_json(row, item.code) for row in rows],
    }


def implementation_json(row: ItemImplementation, code: str) -> dict[str, Any]:
    return {
        "code": code,
        "region_code": row.region_code,
        "department": row.department,
        "committed_limit_days": row.committed_limit_days,
        "notes": row.notes,
        "updated_at": timestamp(row.updated_at),
    }
