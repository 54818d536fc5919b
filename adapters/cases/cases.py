"""Cases as use cases: apply, act on a case (staff or applicant), read; one transaction each."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from adapters.cases.applicants import Applicant
from adapters.cases.database import Database
from adapters.cases.lifecycle import (
    ACTION_LABELS,
    STATUS_LABELS,
    Case,
    Event,
    InvalidCaseInput,
    InvalidTransition,
    Status,
    optional_text,
)
from adapters.cases.materials import CatalogueClient, CertificateClient, Gathered, Item
from adapters.cases.models import AttachmentRow, CaseRow, EventRow, as_utc

STAFF_ACTIONS = (
    "request_corrections",
    "accept",
    "reject",
    "review",
    "decide",
    "deliver",
    "suspend",
    "resume",
    "postpone",
)
APPLICANT_ACTIONS = ("resubmit", "rate")


class CaseNotFound(Exception):
    """No such case, or not one this caller may see (HTTP 404: never reveal another's)."""


class ConcurrentUpdate(Exception):
    """Someone else changed the case meanwhile (HTTP 409); read it again and retry."""


class CaseService:
    def __init__(
        self,
        db: Database,
        catalogue: CatalogueClient,
        certificates: CertificateClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db, self.catalogue, self.certificates, self.clock = db, catalogue, certificates, clock

    # -- the applicant ---------------------------------------------------------------------------------

    def apply(self, applicant: Applicant, item_code: str, subject_token: str | None) -> dict[str, Any]:
        """Read the item, gather and verify the e-certificates, then write the case in one transaction."""
        item = self.catalogue.fetch_item(item_code)
        gathered = self.certificates.gather(item, subject_token, applicant)
        now = self.clock()
        case, event = Case.submit(
            limit_days=item.committed_limit_days, missing=gathered.missing, actor=applicant.actor, at=now
        )
        with self.db.transaction() as session:
            row = CaseRow(
                id=str(uuid.uuid4()),
                item_code=item.code,
                item_name=item.name[:200],
                department=item.department[:200],
                applicant_type=applicant.kind,
                applicant_id=applicant.id,
                applicant_name=applicant.name,
                agent_sub=applicant.agent_sub,
                agent_name=applicant.agent_name,
                agent_role=applicant.agent_role,
                created_at=now,
                updated_at=now,
            )
            store_state(row, case)
            session.add(row)
            attach(row, gathered, now)
            record(row, event)
            session.flush()
            return case_json(row)

    def resubmit(
        self, case_id: str, applicant: Applicant, subject_token: str | None, note: Any
    ) -> dict[str, Any]:
        """After a correction notice: the e-certificates are fetched again (the applicant may have
        obtained the missing ones meanwhile) and the case goes back to pre-review."""
        note_text = optional_text(note, "note")
        with self.db.transaction() as session:
            row = self._own(session, case_id, applicant)
            case = case_of(row)
            item_code = row.item_code
        if case.status is not Status.CORRECTIONS_REQUESTED:
            raise InvalidTransition("resubmit", case.status)
        item: Item = self.catalogue.fetch_item(item_code)
        gathered = self.certificates.gather(item, subject_token, applicant)

        def resubmit(session: Session, row: CaseRow, case: Case, now: datetime) -> tuple[Case, Event]:
            for old in list(row.attachments):
                row.attachments.remove(old)
            session.flush()
            attach(row, gathered, now)
            return case.resubmit(missing=gathered.missing, actor=applicant.actor, at=now, note=note_text)

        return self._transition(case_id, resubmit, applicant)

    def rate(self, case_id: str, applicant: Applicant, score: Any, comment: Any) -> dict[str, Any]:
        return self._transition(
            case_id,
            lambda _s, _r, case, now: case.rate(
                parse_score(score), actor=applicant.actor, at=now, comment=comment
            ),
            applicant,
        )

    def cases_of(self, applicant: Applicant) -> list[dict[str, Any]]:
        with self.db.transaction() as session:
            rows = session.scalars(
                select(CaseRow)
                .where(CaseRow.applicant_type == applicant.kind, CaseRow.applicant_id == applicant.id)
                .order_by(CaseRow.created_at.desc())
            )
            return [case_json(row, full=False) for row in rows]

    def case_for(self, case_id: str, applicant: Applicant) -> dict[str, Any]:
        with self.db.transaction() as session:
            return case_json(self._own(session, case_id, applicant))

    # -- department officers (cases:handle) ------------------------------------------------------------

    def act(self, case_id: str, action: str, body: Mapping[str, Any], actor: str) -> dict[str, Any]:
        """A staff action with its JSON body: {reason}, {items}, {outcome, reason}, {days, reason}."""
        if action not in STAFF_ACTIONS:
            raise CaseNotFound(action)
        reason = body.get("reason")

        def step(_s: Session, _r: CaseRow, case: Case, now: datetime) -> tuple[Case, Event]:
            match action:
                case "request_corrections":
                    return case.request_corrections(body.get("items"), actor=actor, at=now)
                case "accept":
                    return case.accept(actor=actor, at=now, reason=reason)
                case "reject":
                    return case.reject(reason, actor=actor, at=now)
                case "review":
                    return case.review(actor=actor, at=now, reason=reason)
                case "decide":
                    return case.decide(body.get("outcome"), reason, actor=actor, at=now)
                case "deliver":
                    return case.deliver(actor=actor, at=now, reason=reason)
                case "suspend":
                    return case.suspend(reason, actor=actor, at=now)
                case "resume":
                    return case.resume(reason, actor=actor, at=now)
                case _:
                    return case.postpone(body.get("days"), reason, actor=actor, at=now)

        return self._transition(case_id, step, None)

    def all_cases(self, status: str | None) -> list[dict[str, Any]]:
        if status is not None and status not in {s.value for s in Status}:
            raise InvalidCaseInput("status", f"one of {', '.join(s.value for s in Status)}")
        with self.db.transaction() as session:
            query = select(CaseRow).order_by(CaseRow.created_at.desc()).limit(500)
            if status:
                query = query.where(CaseRow.status == status)
            return [case_json(row, full=False) for row in session.scalars(query)]

    def case(self, case_id: str) -> dict[str, Any]:
        with self.db.transaction() as session:
            row = session.get(CaseRow, canonical(case_id))
            if row is None:
                raise CaseNotFound(case_id)
            return case_json(row)

    # -- shared ----------------------------------------------------------------------------------------

    def _own(self, session: Session, case_id: str, applicant: Applicant) -> CaseRow:
        row = session.get(CaseRow, canonical(case_id))
        if row is None or (row.applicant_type, row.applicant_id) != (applicant.kind, applicant.id):
            raise CaseNotFound(case_id)
        return row

    def _transition(
        self,
        case_id: str,
        step: Callable[[Session, CaseRow, Case, datetime], tuple[Case, Event]],
        applicant: Applicant | None,
    ) -> dict[str, Any]:
        try:
            with self.db.transaction() as session:
                if applicant is not None:
                    row = self._own(session, case_id, applicant)
                else:
                    found = session.get(CaseRow, canonical(case_id))
                    if found is None:
                        raise CaseNotFound(case_id)
                    row = found
                now = self.clock()
                case, event = step(session, row, case_of(row), now)
                store_state(row, case)
                row.updated_at = now
                record(row, event)
                session.flush()
                return case_json(row)
        except StaleDataError:
            raise ConcurrentUpdate(case_id) from None


def canonical(case_id: str) -> str:
    try:
        return str(uuid.UUID(case_id))
    except (ValueError, TypeError, AttributeError):
        raise CaseNotFound(case_id) from None


def parse_score(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidCaseInput("score", "a whole number from 1 to 5")


# -- rows <-> the life cycle ------------------------------------------------------------------------------


def case_of(row: CaseRow) -> Case:
    return Case(
        status=Status(row.status),
        limit_days=row.limit_days,
        missing=tuple(row.missing or ()),
        corrections=tuple(row.corrections or ()),
        accepted_on=row.accepted_on,
        deadline=row.deadline,
        suspended_on=row.suspended_on,
        suspended_from=Status(row.suspended_from) if row.suspended_from else None,
        postponed_days=row.postponed_days or 0,
        outcome=row.outcome,
        rating=row.rating,
    )


def store_state(row: CaseRow, case: Case) -> None:
    row.status = case.status.value
    row.limit_days = case.limit_days
    row.missing = list(case.missing)
    row.corrections = list(case.corrections)
    row.accepted_on = case.accepted_on
    row.deadline = case.deadline
    row.suspended_on = case.suspended_on
    row.suspended_from = case.suspended_from.value if case.suspended_from else None
    row.postponed_days = case.postponed_days
    row.outcome = case.outcome
    row.rating = case.rating


def record(row: CaseRow, event: Event) -> None:
    row.events.append(
        EventRow(
            action=event.action,
            actor=event.actor[:255],
            at=event.at,
            from_status=event.from_status.value,
            to_status=event.to_status.value,
            reason=event.reason,
            details=dict(event.details),
        )
    )


def attach(row: CaseRow, gathered: Gathered, now: datetime) -> None:
    for licence in gathered.attached:
        row.attachments.append(
            AttachmentRow(
                material=licence.material[:200],
                licence_type=licence.licence_type[:64],
                licence_id=licence.licence_id[:64],
                number=licence.number[:64],
                type_name=licence.type_name[:100],
                issuer=licence.issuer[:64],
                issuer_name=(licence.issuer_name or None) and str(licence.issuer_name)[:200],
                verified=bool(licence.verification.get("valid")),
                verification=licence.verification,
                attached_at=now,
            )
        )


def day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def case_json(row: CaseRow, *, full: bool = True) -> dict[str, Any]:
    case = case_of(row)
    body: dict[str, Any] = {
        "id": row.id,
        "item": {"code": row.item_code, "name": row.item_name, "department": row.department},
        "applicant": {"type": row.applicant_type, "id": row.applicant_id, "name": row.applicant_name},
        "agent": {"sub": row.agent_sub, "name": row.agent_name, "role": row.agent_role}
        if row.agent_sub
        else None,
        "status": row.status,
        "status_label": STATUS_LABELS[case.status],
        "limit_days": row.limit_days,
        "accepted_on": day(row.accepted_on),
        "deadline": day(row.deadline),
        "outcome": row.outcome,
        "created_at": as_utc(row.created_at).isoformat(),
        "updated_at": as_utc(row.updated_at).isoformat(),
    }
    if not full:
        return body
    body.update(
        missing=list(case.missing),
        corrections=list(case.corrections),
        suspended_on=day(row.suspended_on),
        postponed_days=row.postponed_days,
        rating=row.rating,
        may_rate=case.may_rate,
        attachments=[
            {
                "material": a.material,
                "licence_type": a.licence_type,
                "licence_id": a.licence_id,
                "number": a.number,
                "type_name": a.type_name,
                "issuer": a.issuer,
                "issuer_name": a.issuer_name,
                "verified": a.verified,
                "verification": a.verification,
            }
            for a in row.attachments
        ],
        events=[
            {
                "action": e.action,
                "action_label": ACTION_LABELS.get(e.action, e.action),
                "actor": e.actor,
                "at": as_utc(e.at).isoformat(),
                "from_status": e.from_status,
                "to_status": e.to_status,
                "reason": e.reason,
                "details": e.details,
            }
            for e in row.events
        ],
    )
    return body
