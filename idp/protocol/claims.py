"""Claims about a person released per scope (OIDC Core §5.4), for ID tokens and userinfo."""

from __future__ import annotations

from typing import Any

from idp.domain.models import Person
from idp.domain.scopes import is_resource_scope as is_resource_scope

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "preferred_username"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
}
SUPPORTED_SCOPES = ("openid", "profile", "email", "phone", "entity")  # entity: acting for a legal entity
# Resource scopes, `<service>:<permission>`: see idp/domain/scopes.py (re-exported here).


def claims_for_scope(person: Person, scope: str) -> dict[str, Any]:
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": person.id}
    if "profile" in scopes:
        claims["preferred_username"] = person.username
        if person.name:
            claims["name"] = person.name
    if "email" in scopes and person.email:
        claims["email"] = person.email
        claims["email_verified"] = person.email_verified
    if "phone" in scopes and person.phone_number:
        claims["phone_number"] = person.phone_number
        claims["phone_number_verified"] = False
    return claims
