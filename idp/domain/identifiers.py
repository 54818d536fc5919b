"""Resident identity numbers (GB 11643-1999) and unified social credit codes (GB 32100-2015)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from idp.domain.errors import InvalidIdentifier

__all__ = [
    "PROVINCE_CODES",
    "USCC_ALPHABET",
    "ResidentIdNumber",
    "UnifiedSocialCreditCode",
    "compute_resident_id_check",
    "compute_uscc_check",
    "looks_like_resident_id",
    "mask_phone",
    "mask_resident_id",
    "parse_resident_id",
    "parse_uscc",
]

_DIGITS = frozenset("0123456789")  # ASCII only: str.isdigit() also accepts "²", "١" and the like

# --- Resident identity number (GB 11643-1999) -------------------------------------------------------

RESIDENT_ID_LENGTH = 18
_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RID_CHECK_CHARS = "10X98765432"  # indexed by S = weighted sum mod 11
EARLIEST_BIRTH_DATE = datetime.date(1900, 1, 1)

# Province-level codes of GB/T 2260 (first two digits of the administrative division code).
PROVINCE_CODES = frozenset(
    {
        "11", "12", "13", "14", "15",
        "21", "22", "23",
        "31", "32", "33", "34", "35", "36", "37",
        "41", "42", "43", "44", "45", "46",
        "50", "51", "52", "53", "54",
        "61", "62", "63", "64", "65",
        "71", "81", "82",
    }
)  # fmt: skip


def _is_digits(text: str) -> bool:
    return bool(text) and all(c in _DIGITS for c in text)


def compute_resident_id_check(first17: str) -> str:
    """Return the check character ("0"-"9" or "X") for the first 17 digits of a resident identity number."""
    if len(first17) != RESIDENT_ID_LENGTH - 1:
        raise InvalidIdentifier(
            "The first part of an identity number must be 17 digits.", code="wrong_length"
        )
    if not _is_digits(first17):
        raise InvalidIdentifier("The first part of an identity number must be 17 digits.", code="non_digit")
    total = sum(int(c) * w for c, w in zip(first17, _RID_WEIGHTS, strict=True))
    return _RID_CHECK_CHARS[total % 11]


def _check_resident_id(value: str, today: datetime.date | None) -> None:
    """Raise InvalidIdentifier unless `value` is canonical and valid; `today=None` skips the future check."""
    if len(value) != RESIDENT_ID_LENGTH:
        raise InvalidIdentifier("An identity number must be 18 characters long.", code="wrong_length")
    if not _is_digits(value[:17]) or not (value[17] in _DIGITS or value[17] == "X"):
        raise InvalidIdentifier(
            "An identity number must be 17 digits followed by a digit or the letter X.", code="non_digit"
        )
    if compute_resident_id_check(value[:17]) != value[17]:
        raise InvalidIdentifier(
            "The check character of the identity number does not match; please check for a typing mistake.",
            code="bad_check_character",
        )
    if value[:2] not in PROVINCE_CODES:
        raise InvalidIdentifier(
            "The identity number does not begin with a known province code.", code="unknown_province"
        )
    try:
        born = datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidIdentifier(
            "The birth date in the identity number is not a real date.", code="impossible_birth_date"
        ) from None
    if born < EARLIEST_BIRTH_DATE:
        raise InvalidIdentifier(
            "The birth date in the identity number is before 1900-01-01.", code="birth_date_too_early"
        )
    if today is not None and born > today:
        raise InvalidIdentifier(
            "The birth date in the identity number is in the future.", code="future_birth_date"
        )


@dataclass(frozen=True, slots=True)
class ResidentIdNumber:
    """A valid, canonical (upper-case X) 18-character resident identity number.

    Its repr is masked so that a stray log line never carries the full number; use `.value` on purpose.
    """

    value: str

    def __post_init__(self) -> None:
        _check_resident_id(self.value, today=None)

    def __repr__(self) -> str:
        return f"ResidentIdNumber({self.masked!r})"

    __str__ = __repr__

    @property
    def division_code(self) -> str:
        """Six-digit administrative division code where the number was first issued."""
        return self.value[:6]

    @property
    def birth_date(self) -> datetime.date:
        v = self.value
        return datetime.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))

    @property
    def sequence(self) -> str:
        """Three-digit sequence code (positions 15-17)."""
        return self.value[14:17]

    @property
    def sex(self) -> Literal["male", "female"]:
        return "male" if int(self.sequence) % 2 == 1 else "female"

    @property
    def masked(self) -> str:
        return mask_resident_id(self.value)


def parse_resident_id(text: str, today: datetime.date | None = None) -> ResidentIdNumber:
    """Normalise (strip, x -> X) and validate a resident identity number; raise InvalidIdentifier if bad."""
    value = text.strip().replace("x", "X")
    _check_resident_id(value, today=today if today is not None else datetime.date.today())
    return ResidentIdNumber(value)


def looks_like_resident_id(text: str) -> bool:
    """True if `text` has the shape of an identity number (17 digits + digit/X); the check is not verified."""
    value = text.strip()
    return (
        len(value) == RESIDENT_ID_LENGTH
        and _is_digits(value[:17])
        and (value[17] in _DIGITS or value[17] in "xX")
    )


# --- Unified social credit code (GB 32100-2015) -----------------------------------------------------

USCC_LENGTH = 18
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, Z, S, V; index = value 0..30
_USCC_VALUES = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28

_USCC_BAD_CHARACTER = (
    "A unified social credit code may contain only digits and the letters A-Y except I, O, S, V and Z."
)


def compute_uscc_check(first17: str) -> str:
    """Return the check character for the first 17 characters of a unified social credit code."""
    if len(first17) != USCC_LENGTH - 1:
        raise InvalidIdentifier(
            "The first part of a unified social credit code must be 17 characters.", code="wrong_length"
        )
    if not all(c in _USCC_VALUES for c in first17):
        raise InvalidIdentifier(_USCC_BAD_CHARACTER, code="bad_character")
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def _check_uscc(value: str) -> None:
    if len(value) != USCC_LENGTH:
        raise InvalidIdentifier(
            "A unified social credit code must be 18 characters long.", code="wrong_length"
        )
    if not all(c in _USCC_VALUES for c in value):
        raise InvalidIdentifier(_USCC_BAD_CHARACTER, code="bad_character")
    if not _is_digits(value[2:8]):
        raise InvalidIdentifier(
            "Characters 3 to 8 of a unified social credit code (the division code) must be digits.",
            code="bad_division_code",
        )
    if compute_uscc_check(value[:17]) != value[17]:
        raise InvalidIdentifier(
            "The check character of the unified social credit code does not match; "
            "please check for a typing mistake.",
            code="bad_check_character",
        )


@dataclass(frozen=True, slots=True)
class UnifiedSocialCreditCode:
    """A valid, canonical (upper-case) 18-character unified social credit code of a legal entity."""

    value: str

    def __post_init__(self) -> None:
        _check_uscc(self.value)

    def __str__(self) -> str:
        return self.value

    @property
    def registration_authority(self) -> str:
        """Registration-authority code (position 1), e.g. "9" for market regulation."""
        return self.value[0]

    @property
    def entity_type(self) -> str:
        """Entity-type code (position 2), e.g. "1" for an enterprise."""
        return self.value[1]

    @property
    def division_code(self) -> str:
        """Six-digit administrative division code of the registering authority (positions 3-8)."""
        return self.value[2:8]

    @property
    def organisation_code(self) -> str:
        """Nine-character organisation code (positions 9-17)."""
        return self.value[8:17]


def parse_uscc(text: str) -> UnifiedSocialCreditCode:
    """Normalise (strip, upper-case ASCII) and validate a unified social credit code."""
    value = text.strip()
    if value.isascii():  # upper-casing non-ASCII could turn e.g. "ﬀ" into "FF"; leave it to be refused
        value = value.upper()
    _check_uscc(value)
    return UnifiedSocialCreditCode(value)


# --- Masking for logs and screens -------------------------------------------------------------------


def mask_resident_id(value: str) -> str:
    """Mask an identity number as first 6 + asterisks + last 4 (`410105********1234`).

    Anything shorter than 18 characters is masked entirely, so a short or truncated value never shows
    most of itself.
    """
    value = value.strip()
    if len(value) < RESIDENT_ID_LENGTH:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]


def mask_phone(value: str) -> str:
    """Mask a phone number as first 3 + asterisks + last 4 (`138****1234`); shorter than 11: all asterisks."""
    value = value.strip()
    if len(value) < 11:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
