"""Holder identifiers: the Unified Social Credit Code check (GB 32100-2015), written here, not imported."""

from __future__ import annotations

import re

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, Z, S, V
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3^(i-1) mod 31
_USCC_SHAPE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")
_SUBJECT = re.compile(r"[\x21-\x7e]{1,255}")  # a provider `sub`: printable ASCII, no spaces


def uscc_problem(value: str) -> str | None:
    """Why `value` is not a valid Unified Social Credit Code, or None when it is."""
    if len(value) != 18:
        return "a Unified Social Credit Code has 18 characters"
    if not _USCC_SHAPE.fullmatch(value):
        return "a Unified Social Credit Code uses digits and upper-case letters other than I, O, Z, S, V"
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(value[:17], USCC_WEIGHTS, strict=True))
    expected = USCC_ALPHABET[(31 - total % 31) % 31]
    if value[17] != expected:
        return "the Unified Social Credit Code's check character is wrong"
    return None


def subject_problem(value: str) -> str | None:
    """Why `value` cannot be a person's `sub` at the provider, or None."""
    return (
        None if _SUBJECT.fullmatch(value) else "a person's holder_id is their sub: 1-255 printable characters"
    )
