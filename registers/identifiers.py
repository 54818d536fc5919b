"""Check characters of the identifiers the registers hold: resident ID numbers and USCCs.

The reference service stands for an external system, so it checks identifiers on its own rather than
importing the provider's domain package.
"""

from __future__ import annotations

import datetime

_RID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RID_CHECK_CHARS = "10X98765432"  # GB 11643-1999, indexed by the weighted sum mod 11
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z


def normalise_resident_id(text: str) -> str | None:
    """The canonical (upper-case X) resident identity number, or None if it is not a valid one."""
    value = text.strip().upper()
    if len(value) != 18 or not value[:17].isascii() or not value[:17].isdigit():
        return None
    total = sum(int(c) * w for c, w in zip(value[:17], _RID_WEIGHTS, strict=True))
    if _RID_CHECK_CHARS[total % 11] != value[17]:
        return None
    try:
        datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None
    return value


def normalise_uscc(text: str) -> str | None:
    """The canonical (upper-case) unified social credit code, or None if it is not a valid one."""
    value = text.strip()
    if not value.isascii():
        return None
    value = value.upper()
    if len(value) != 18 or any(c not in USCC_ALPHABET for c in value):
        return None
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(value[:17]))
    if USCC_ALPHABET[(31 - total % 31) % 31] != value[17]:
        return None
    return value
