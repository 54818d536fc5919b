"""Who applies: the signed-in person, or the legal entity (法人) they act for, with the person as agent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

APPLY_POWER = "cases:apply"  # the entity's grant to apply for it; "*" = the legal representative


class NotPermitted(Exception):
    """The person may not do this for this applicant (HTTP 403)."""

    def __init__(self, error: str, description: str, label: str) -> None:
        super().__init__(description)
        self.error, self.description, self.label = error, description, label


@dataclass(frozen=True)
class Applicant:
    """`kind` person (id = sub) or entity (id = USCC); for an entity, the acting person is the agent."""

    kind: str
    id: str
    name: str
    agent_sub: str | None = None
    agent_name: str | None = None
    agent_role: str | None = None

    @property
    def actor(self) -> str:
        """How the events name whoever acted: the person's sub."""
        return f"applicant:{self.agent_sub or self.id}"


def applicant_of(claims: Mapping[str, Any]) -> Applicant:
    """From ID-token / userinfo claims or a bearer token's claims; NotPermitted for an agent without power."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise NotPermitted("invalid_token", "the token names no person", "无法确认申请人身份。")
    name = str(claims.get("name") or sub)[:200]
    entity = claims.get("entity")
    if entity is None:
        return Applicant("person", sub, name)
    if not isinstance(entity, dict) or not isinstance(entity.get("uscc"), str) or not entity["uscc"]:
        raise NotPermitted("invalid_entity", "the entity claim names no entity", "所代表的法人信息不完整。")
    if not has_apply_power(entity):
        raise NotPermitted(
            "insufficient_power",
            f"the entity has not granted the power {APPLY_POWER}",
            f"您未获得{entity.get('name') or entity['uscc']}授予的办事权限（{APPLY_POWER}），不能以该单位名义申请。",
        )
    return Applicant(
        "entity",
        entity["uscc"],
        str(entity.get("name") or entity["uscc"])[:200],
        agent_sub=sub,
        agent_name=name,
        agent_role=str(entity.get("role") or "agent")[:32],
    )


def has_apply_power(entity: Mapping[str, Any]) -> bool:
    powers = entity.get("powers") or []
    return isinstance(powers, list) and (APPLY_POWER in powers or "*" in powers)
