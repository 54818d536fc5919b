"""The admin role matrix as data: scopes to roles, role combinations, unknown actions."""

from __future__ import annotations

import pytest

from idp.domain.admin import (
    ACTIONS,
    AUDITOR,
    MATRIX,
    ROLES,
    SENSITIVE,
    SUPER_ADMIN,
    allowed,
    check_role_combination,
    roles_from_scopes,
)


def test_service_account_scopes_name_roles_and_nothing_else():
    scope = "openid admin:auditor admin:root admin: admin:super_admin catalogue:read"
    assert roles_from_scopes(scope) == {AUDITOR, SUPER_ADMIN}
    assert roles_from_scopes("") == frozenset()


def test_only_the_auditor_reads_the_audit_log_and_reads_nothing_else():
    assert [a for a in ACTIONS if allowed({AUDITOR}, a)] == ["audit.read"]
    assert not allowed({SUPER_ADMIN}, "audit.read")


def test_unknown_actions_are_never_allowed():
    assert not allowed(set(ROLES), "clients.delete_everything")


def test_sensitive_actions_are_actions_of_the_matrix():
    assert SENSITIVE <= set(MATRIX)


@pytest.mark.parametrize(
    ("roles", "problem"),
    [
        ({SUPER_ADMIN}, None),
        ({SUPER_ADMIN, "platform_admin", "entity_admin"}, None),
        ({AUDITOR}, None),
        ({AUDITOR, "entity_admin"}, "separation of duties"),
        ({"root"}, "unknown role"),
    ],
)
def test_role_combinations(roles, problem):
    result = check_role_combination(roles)
    assert (result is None) if problem is None else (problem in result)
