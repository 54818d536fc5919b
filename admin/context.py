"""Names shared by the console and the API."""

from __future__ import annotations

CONSOLE_CLIENT_ID = "admin-console"
CONSOLE_PREFIX = "/admin"
API_PREFIX = "/admin/api/v1"


def console_redirect_uri(issuer: str) -> str:
    return f"{issuer}{CONSOLE_PREFIX}/callback"
