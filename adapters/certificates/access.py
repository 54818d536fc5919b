"""Who a verified bearer token speaks for: the holder whose licences it reads, the department it issues for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.certificates.licences import LicenceError

READ_SCOPE = "certificates:read"
ISSUE_SCOPE = "certificates:issue"
READ_POWER = "certificates:read"  # an agent's power to read the entity's licences; "*" = representative


def holder_of(claims: Mapping[str, Any]) -> tuple[str, str]:
    """("entity", uscc) when the person acts for a legal entity (法人), ("person", sub) otherwise."""
    if "entity" not in claims:
        return "person", str(claims["sub"])
    entity = claims["entity"]
    if not isinstance(entity, dict) or not isinstance(entity.get("uscc"), str) or not entity["uscc"]:
        raise LicenceError(403, "invalid_entity", "the token's entity claim names no entity")
    powers = entity.get("powers") or []
    if READ_POWER not in powers and "*" not in powers:
        raise LicenceError(403, "insufficient_power", f"the entity has not granted the power {READ_POWER}")
    return "entity", entity["uscc"]


def department_of(claims: Mapping[str, Any], issuer_clients: Mapping[str, str]) -> str:
    """The issuing department behind a service-account token (client credentials: sub = client_id)."""
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or claims.get("sub") != client_id or "act" in claims:
        raise LicenceError(403, "not_a_service_account", "issuing needs a department's service-account token")
    code = issuer_clients.get(client_id)
    if code is None:
        raise LicenceError(403, "not_a_department", f"client {client_id!r} issues for no department")
    return code


def actor_of(claims: Mapping[str, Any]) -> str | None:
    """RFC 8693 §4.1: the service acting for the subject of an exchanged token (the case service)."""
    act = claims.get("act")
    return str(act.get("sub")) if isinstance(act, dict) and act.get("sub") else None
