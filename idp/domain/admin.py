"""Who may administer what: the admin roles, the actions of the console and API, and the matrix.

Separation of duties follows the "three administrators" rule of GB/T 22239 (等级保护: 系统管理员、
安全管理员、审计管理员): the auditor reads the audit log and nothing else, and nobody who administers
may read the log of their own actions, so `auditor` never combines with another role and no admin
grants or revokes their own roles.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPER_ADMIN = "super_admin"
PLATFORM_ADMIN = "platform_admin"
ENTITY_ADMIN = "entity_admin"
AUDITOR = "auditor"
ROLES = (SUPER_ADMIN, PLATFORM_ADMIN, ENTITY_ADMIN, AUDITOR)

# Bearer tokens of service accounts (client credentials) carry roles as scopes: "admin:<role>".
ADMIN_SCOPE_PREFIX = "admin:"
ADMIN_SCOPES = tuple(f"{ADMIN_SCOPE_PREFIX}{role}" for role in ROLES)

# Sensitive actions need an authentication no older than this (a person re-authenticates first).
REAUTH_SECONDS = 15 * 60

_ADMINS = frozenset({SUPER_ADMIN})
_PLATFORMS = frozenset({SUPER_ADMIN, PLATFORM_ADMIN})
_ENTITIES = frozenset({SUPER_ADMIN, ENTITY_ADMIN})
_AUDIT = frozenset({AUDITOR})

# action -> the roles allowed to perform it
MATRIX: dict[str, frozenset[str]] = {
    "clients.read": _PLATFORMS,
    "clients.write": _PLATFORMS,  # register, edit, disable, enable
    "clients.rotate_secret": _PLATFORMS,
    "clients.grant_admin_scopes": _ADMINS,  # a client that may obtain admin:* scopes is an admin
    "initial_tokens.manage": _PLATFORMS,  # initial access tokens for dynamic registration
    "persons.read": _ADMINS,  # search and view persons (each view is a read of personal data)
    "persons.write": _ADMINS,  # lock, unlock, reset second factor, end sessions
    "entities.read": _ENTITIES,
    "entities.write": _ENTITIES,  # create, verify, suspend, reinstate, representative, agents
    "keys.read": _ADMINS,
    "keys.rotate": _ADMINS,  # rotate and retire signing keys
    "roles.read": _ADMINS,
    "roles.grant": _ADMINS,  # grant and revoke admin roles
    "audit.read": _AUDIT,  # filter and export the audit log
}
ACTIONS = tuple(MATRIX)

# Re-authentication within REAUTH_SECONDS is required for these (issue: secret rotation, key
# rotation, role grants).
SENSITIVE = frozenset({"clients.rotate_secret", "clients.grant_admin_scopes", "keys.rotate", "roles.grant"})


def allowed(roles: frozenset[str] | set[str], action: str) -> bool:
    """Whether any of `roles` may perform `action` (unknown actions are never allowed)."""
    return not MATRIX.get(action, frozenset()).isdisjoint(roles)


def roles_from_scopes(scope: str) -> frozenset[str]:
    """The admin roles a service account's token carries: each `admin:<role>` scope is one role."""
    return frozenset(s.removeprefix(ADMIN_SCOPE_PREFIX) for s in scope.split() if s in ADMIN_SCOPES)


def is_admin_scope(scope: str) -> bool:
    return scope.startswith(ADMIN_SCOPE_PREFIX)


def check_role_combination(roles: frozenset[str] | set[str]) -> str | None:
    """Why this set of roles cannot be held together, or None."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        return f"unknown role: {', '.join(sorted(unknown))}"
    if AUDITOR in roles and len(roles) > 1:
        return "the auditor role cannot be combined with another admin role (separation of duties)"
    return None


@dataclass(frozen=True)
class Actor:
    """Who performs an admin action: a person in the console, or a service account with a token."""

    kind: str  # "person" | "client"
    id: str  # person id or client id
    roles: frozenset[str]
    auth_time: int | None = None  # persons: when they last authenticated
    address: str | None = None
    acr: str | None = None

    def may(self, action: str) -> bool:
        return allowed(self.roles, action)
