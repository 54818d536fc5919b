"""Licences as use cases: validate and issue, revoke, list a holder's own, verify anyone's."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.certificates.identifiers import subject_problem, uscc_problem
from adapters.certificates.models import Issuer, Licence, as_utc
from adapters.certificates.signing import SignatureProblem, canonical_metadata, sign_licence, verify_signature

CHINA = timezone(timedelta(hours=8), "CST")  # validity dates are calendar days in China
HOLDER_TYPES = ("person", "entity")


@dataclass(frozen=True)
class LicenceType:
    code: str
    name: str  # shown on pages
    holder_types: tuple[str, ...]


LICENCE_TYPES = {
    t.code: t
    for t in (
        LicenceType("business_licence", "营业执照", ("entity",)),
        LicenceType("food_operation_permit", "食品经营许可证", ("entity",)),
        LicenceType("drug_operation_permit", "药品经营许可证", ("entity",)),
        LicenceType("construction_permit", "建筑工程施工许可证", ("entity",)),
        LicenceType("driving_licence", "机动车驾驶证", ("person",)),
        LicenceType("practising_certificate", "执业资格证书", ("person",)),
        LicenceType("residence_permit", "居住证", ("person",)),
        LicenceType("degree_certificate", "学位证书", ("person",)),
    )
}
_NUMBER = re.compile(r"[0-9A-Za-z\-/()（）\u4e00-\u9fff]{1,64}")
_ISSUER_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_NAME = 100
MAX_REASON = 500


class LicenceError(Exception):
    """A refused request: `status` and `error` for the JSON answer, the message for a person."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def invalid(description: str) -> LicenceError:
    return LicenceError(400, "invalid_request", description)


def today() -> date:
    return datetime.now(CHINA).date()


def status_of(licence: Licence, on: date | None = None) -> str:
    """valid | revoked | expired; expiry is computed from valid_until, never stored."""
    if licence.revoked_at is not None:
        return "revoked"
    if licence.valid_until is not None and licence.valid_until < (on or today()):
        return "expired"
    return "valid"


# -- issuing and revoking (a department's service account) ------------------------------------------------


def issue_licence(session: Session, issuer_code: str, body: Any) -> Licence:
    """Validate the request body, store the licence and sign it with the department's key."""
    if not isinstance(body, dict):
        raise invalid("send a JSON object")
    if session.get(Issuer, issuer_code) is None:
        raise LicenceError(403, "unknown_issuer", f"department {issuer_code!r} is not registered here")
    licence_type = _text(body, "licence_type", 64)
    kind = LICENCE_TYPES.get(licence_type)
    if kind is None:
        raise invalid(f"unknown licence_type; use one of {', '.join(sorted(LICENCE_TYPES))}")
    number = _text(body, "number", 64)
    if not _NUMBER.fullmatch(number):
        raise invalid("number: letters, digits, Chinese characters, - / ( ) only, at most 64")
    holder_type = _text(body, "holder_type", 8)
    if holder_type not in kind.holder_types:
        raise invalid(f"a {licence_type} is held by: {', '.join(kind.holder_types)}")
    holder_id = _text(body, "holder_id", 255)
    problem = uscc_problem(holder_id) if holder_type == "entity" else subject_problem(holder_id)
    if problem:
        raise invalid(f"holder_id: {problem}")
    holder_name = _text(body, "holder_name", MAX_NAME)
    valid_from = _date(body, "valid_from", required=True)
    valid_until = _date(body, "valid_until", required=False)
    if valid_from is None:
        raise invalid("valid_from is required")
    if valid_until is not None and valid_until < valid_from:
        raise invalid("valid_until is before valid_from")
    licence = Licence(
        id=str(uuid.uuid4()),
        licence_type=licence_type,
        number=number,
        holder_type=holder_type,
        holder_id=holder_id,
        holder_name=holder_name,
        issuer_code=issuer_code,
        issued_at=datetime.now(UTC),
        valid_from=valid_from,
        valid_until=valid_until,
    )
    try:  # the unique (type, number) constraint decides a race; the caller's transaction rolls back
        session.add(licence)
        session.flush()
    except IntegrityError:
        raise LicenceError(409, "conflict", f"a {licence_type} numbered {number} already exists") from None
    licence.signature = sign_licence(session, licence)
    return licence


def revoke_licence(session: Session, issuer_code: str, licence_id: str, body: Any) -> Licence:
    """Only the department that issued a licence revokes it, once, with a reason."""
    if not isinstance(body, dict):
        raise invalid("send a JSON object")
    reason = _text(body, "reason", MAX_REASON)
    licence = find_licence(session, licence_id)
    if licence is None:
        raise LicenceError(404, "not_found", "no such licence")
    if licence.issuer_code != issuer_code:
        raise LicenceError(403, "not_issuer", "only the issuing department may revoke this licence")
    if licence.revoked_at is not None:
        raise LicenceError(409, "already_revoked", "the licence is already revoked")
    licence.revoked_at = datetime.now(UTC)
    licence.revocation_reason = reason
    session.flush()
    return licence


# -- reading ----------------------------------------------------------------------------------------------


def find_licence(session: Session, licence_id: str) -> Licence | None:
    try:
        canonical_id = str(uuid.UUID(licence_id))
    except (ValueError, TypeError, AttributeError):
        return None
    return session.get(Licence, canonical_id)


def licences_of(session: Session, holder_type: str, holder_id: str) -> list[Licence]:
    query = (
        select(Licence)
        .where(Licence.holder_type == holder_type, Licence.holder_id == holder_id)
        .order_by(Licence.issued_at.desc(), Licence.id)
    )
    return list(session.scalars(query))


def issuer_names(session: Session) -> dict[str, str]:
    return {row.code: row.name for row in session.scalars(select(Issuer))}


def licence_json(licence: Licence, issuer_name: str | None = None) -> dict[str, Any]:
    """The holder's view: everything, with the signature to present elsewhere (e.g. to a case service)."""
    return {
        **canonical_metadata(licence),
        "type_name": type_name(licence.licence_type),
        "issuer_name": issuer_name,
        "issued_at": as_utc(licence.issued_at).isoformat(),
        "status": status_of(licence),
        "revoked_at": as_utc(licence.revoked_at).isoformat() if licence.revoked_at else None,
        "revocation_reason": licence.revocation_reason,
        "signature": licence.signature,
    }


def type_name(code: str) -> str:
    kind = LICENCE_TYPES.get(code)
    return kind.name if kind else code


# -- public verification ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    """The answer to "may I rely on this licence?": `valid` only if every check passed."""

    valid: bool
    problems: tuple[str, ...]
    licence: Licence | None
    status: str | None

    def as_json(self, issuer_name: str | None) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "status": self.status,
            "problems": list(self.problems),
            "licence": public_view(self.licence, issuer_name) if self.licence else None,
        }


def verify(session: Session, *, licence_id: str | None = None, document: str | None = None) -> Verification:
    """Check a licence given by id (its stored signature) or as the JWS a holder presents: the
    department's signature, that the record still says what was signed, the status and the dates."""
    licence = find_licence(session, licence_id) if licence_id else None
    if licence_id and licence is None:
        return Verification(False, ("no such licence",), None, None)
    value = document if document is not None else (licence.signature if licence else "")
    try:
        signed = verify_signature(session, value)
    except SignatureProblem as exc:
        return Verification(False, (str(exc),), licence, status_of(licence) if licence else None)
    if licence is None:
        licence = find_licence(session, str(signed.get("id")))
        if licence is None:
            return Verification(
                False, ("the signature is valid, but no such licence is on record",), None, None
            )
    problems = []
    if signed != canonical_metadata(licence):
        problems.append("the licence on record differs from what the department signed")
    status = status_of(licence)
    if status == "revoked":
        problems.append(f"the licence was revoked: {licence.revocation_reason}")
    elif status == "expired":
        problems.append("the licence has expired")
    if licence.valid_from > today():
        problems.append("the licence is not valid yet")
    return Verification(not problems, tuple(problems), licence, status)


def public_view(licence: Licence, issuer_name: str | None) -> dict[str, Any]:
    """What anyone may see when checking a licence. A person's sub and full name stay private."""
    person = licence.holder_type == "person"
    return {
        "id": licence.id,
        "type": licence.licence_type,
        "type_name": type_name(licence.licence_type),
        "number": licence.number,
        "holder_type": licence.holder_type,
        "holder_id": None if person else licence.holder_id,
        "holder_name": mask_name(licence.holder_name) if person else licence.holder_name,
        "issuer": licence.issuer_code,
        "issuer_name": issuer_name,
        "valid_from": licence.valid_from.isoformat(),
        "valid_until": licence.valid_until.isoformat() if licence.valid_until else None,
        "status": status_of(licence),
    }


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)


# -- parsing ------------------------------------------------------------------------------------------


def _text(body: dict[str, Any], name: str, max_length: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"{name} is required (a non-empty string)")
    value = value.strip()
    if len(value) > max_length:
        raise invalid(f"{name} is longer than {max_length} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise invalid(f"{name} contains control characters")
    return value


def _date(body: dict[str, Any], name: str, *, required: bool) -> date | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise invalid(f"{name} must be a date, YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise invalid(f"{name} must be a real date, YYYY-MM-DD") from None
    if len(value) != 10 or not 1900 <= parsed.year <= 2199:
        raise invalid(f"{name} must be a date between 1900 and 2199, YYYY-MM-DD")
    return parsed


def check_issuer_code(code: str) -> str:
    if not _ISSUER_CODE.fullmatch(code):
        raise invalid("a department code is 1-32 letters, digits, _ or -")
    return code
