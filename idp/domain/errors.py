"""Domain errors: a machine-readable code plus a plain-English message."""

from __future__ import annotations


class DomainError(ValueError):
    """A rule of the domain was broken.

    `code` is stable and machine-readable (for API error bodies and tests); the message is for people
    and must never contain a full identity number or other secret.
    """

    code: str = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidIdentifier(DomainError):
    """A resident identity number or unified social credit code is malformed."""

    code = "invalid_identifier"


class SourceUnavailable(Exception):
    """An identity source (directory, register) failed or timed out. Never treated as success: the
    login or verification is refused with a clear message."""
