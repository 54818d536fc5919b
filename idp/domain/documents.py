"""Identity documents by type code: the resident ID card (GB 11643) and the other documents a person
may be known by (passport, Mainland travel permits, foreign permanent residence ID card)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from idp.domain.errors import InvalidIdentifier
from idp.domain.identifiers import compute_resident_id_check, mask_resident_id, parse_resident_id

RESIDENT_ID = "resident_id"  # 居民身份证
PASSPORT = "passport"  # 护照
HK_MACAO_PERMIT = "hk_macao_permit"  # 港澳居民来往内地通行证
TAIWAN_PERMIT = "taiwan_permit"  # 台湾居民来往大陆通行证
FOREIGN_PERMANENT_RESIDENCE = "foreign_permanent_residence"  # 外国人永久居留身份证

DOCUMENT_TYPES = (RESIDENT_ID, PASSPORT, HK_MACAO_PERMIT, TAIWAN_PERMIT, FOREIGN_PERMANENT_RESIDENCE)

_PATTERNS = {
    PASSPORT: (re.compile(r"^[A-Z0-9]{5,17}$"), "a passport number is 5-17 letters and digits"),
    HK_MACAO_PERMIT: (
        re.compile(r"^[HM]\d{8}(\d{2})?$"),
        "a Hong Kong or Macao permit number is H or M and 8 or 10 digits",
    ),
    TAIWAN_PERMIT: (re.compile(r"^\d{8}(\d{2})?$"), "a Taiwan permit number is 8 or 10 digits"),
}
_OLD_FOREIGN_PR = re.compile(r"^[A-Z]{3}\d{12}$")  # 2004 card: nationality letters + 12 digits
_NEW_FOREIGN_PR = re.compile(r"^9\d{16}[0-9X]$")  # 2023 card: 18 characters, GB 11643 check character


@dataclass(frozen=True)
class IdentityDocument:
    document_type: str
    number: str

    @property
    def masked(self) -> str:
        if self.document_type == RESIDENT_ID:
            return mask_resident_id(self.number)
        keep = 2 if len(self.number) > 6 else 0
        return (
            self.number[:keep] + "*" * (len(self.number) - 2 * keep) + (self.number[-keep:] if keep else "")
        )

    def __repr__(self) -> str:  # never the full number in a log line
        return f"IdentityDocument({self.document_type!r}, {self.masked!r})"


def parse_document(document_type: str, text: str) -> IdentityDocument:
    """Validate a document number for its type; refusals say what is wrong in plain words."""
    number = text.strip().upper()
    if document_type == RESIDENT_ID:
        return IdentityDocument(RESIDENT_ID, parse_resident_id(number).value)
    if document_type == FOREIGN_PERMANENT_RESIDENCE:
        if _OLD_FOREIGN_PR.match(number):
            return IdentityDocument(document_type, number)
        if not _NEW_FOREIGN_PR.match(number):
            raise InvalidIdentifier(
                "A foreign permanent residence ID number is 3 letters and 12 digits, or 18 characters starting with 9.",
                code="bad_document_number",
            )
        if compute_resident_id_check(number[:17]) != number[17]:
            raise InvalidIdentifier(
                "The check character of the permanent residence ID number does not match.",
                code="bad_check_character",
            )
        return IdentityDocument(document_type, number)
    if document_type not in _PATTERNS:
        raise InvalidIdentifier(
            f"Unknown document type; use one of: {', '.join(DOCUMENT_TYPES)}.", code="unknown_document_type"
        )
    pattern, rule = _PATTERNS[document_type]
    if not pattern.match(number):
        raise InvalidIdentifier(f"The document number is not valid: {rule}.", code="bad_document_number")
    return IdentityDocument(document_type, number)
