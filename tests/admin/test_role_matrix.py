"""The role matrix of idp.domain.admin, proved at the service level: every (role x action) pair.

For each action one representative AdminService call is made by an admin holding exactly one role;
it succeeds for the roles MATRIX allows and raises AdminDenied (recorded as "admin.denied") for the
others. The README's role matrix points here."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from idp.domain.admin import (
    AUDITOR,
    ENTITY_ADMIN,
    MATRIX,
    PLATFORM_ADMIN,
    ROLES,
    SENSITIVE,
    SUPER_ADMIN,
    Actor,
)
from idp.domain.identifiers import compute_uscc_check
from idp.services.admin import AdminDenied, AdminInputError, ReauthRequired
from idp.services.audit import AuditFilter

CONFIDENTIAL = "matrix-confidential"


def uscc(serial: int) -> str:
    first17 = f"91110105{serial:09d}"
    return first17 + compute_uscc_check(first17)


def client_metadata(client_id: str, scope: str = "read") -> dict[str, Any]:
    return {
        "client_id": client_id,
        "client_name": "Matrix platform",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": scope,
    }


# action -> a call that performs it: (services, actor, admins) -> anything
CALLS: dict[str, Callable[[Any, Actor, dict[str, Any]], Any]] = {
    "clients.read": lambda s, a, _: s.admin.list_clients(a),
    "clients.write": lambda s, a, _: s.admin.create_client(a, client_metadata("matrix-new")),
    "clients.rotate_secret": lambda s, a, _: s.admin.rotate_client_secret(a, CONFIDENTIAL),
    "clients.grant_admin_scopes": lambda s, a, _: s.admin.create_client(
        a, client_metadata("matrix-admin-client", "admin:auditor")
    ),
    "initial_tokens.manage": lambda s, a, _: s.admin.issue_initial_token(a, "matrix"),
    "persons.read": lambda s, a, users: s.admin.view_person(a, users["nobody"].person_id),
    "persons.write": lambda s, a, users: s.admin.end_sessions(a, users["nobody"].person_id),
    "entities.read": lambda s, a, _: s.admin.list_entities(a),
    "entities.write": lambda s, a, _: s.admin.create_entity(a, uscc(1), "Matrix Trading Co."),
    "keys.read": lambda s, a, _: s.admin.list_keys(a),
    "keys.rotate": lambda s, a, _: s.admin.rotate_keys(a, "ES256"),
    "roles.read": lambda s, a, _: s.admin.list_admins(a),
    "roles.grant": lambda s, a, users: s.admin.grant_role(a, users["nobody"].person_id, ENTITY_ADMIN),
    "audit.read": lambda s, a, _: s.admin.search_audit(a, AuditFilter()),
}


def test_every_action_has_a_representative_call():
    assert set(CALLS) == set(MATRIX)


@pytest.fixture
def matrix_services(services, admins):
    services.clients.register(client_metadata(CONFIDENTIAL) | {"client_secret": "s" * 40})
    services.keys.ensure_keys()
    return services


@pytest.mark.parametrize(("role", "action"), list(itertools.product(ROLES, MATRIX)))
def test_role_matrix(matrix_services, admins, role: str, action: str):
    services = matrix_services
    actor = admins[role].actor(services)
    assert actor.roles == {role}
    if role in MATRIX[action]:
        CALLS[action](services, actor, admins)
        return
    with pytest.raises(AdminDenied):
        CALLS[action](services, actor, admins)
    assert services.audit.flush()
    denied = services.audit.search(AuditFilter(event="admin.denied", actor=actor.id))
    assert denied, "a refusal is recorded"
    assert all(event["outcome"] == "failure" for event in denied)


def test_a_person_without_a_role_may_do_nothing(matrix_services, admins):
    actor = admins["nobody"].actor(matrix_services)
    for action, call in CALLS.items():
        with pytest.raises(AdminDenied):
            call(matrix_services, actor, admins)
        assert not actor.may(action)


@pytest.mark.parametrize("action", sorted(SENSITIVE))
def test_sensitive_actions_need_a_recent_authentication(matrix_services, admins, action: str):
    """16 minutes after signing in, a super admin must sign in again before a sensitive action."""
    services = matrix_services
    stale = admins[SUPER_ADMIN].actor(services, auth_time=time.time() - 16 * 60)
    with pytest.raises(ReauthRequired):
        CALLS[action](services, stale, admins)
    fresh = admins[SUPER_ADMIN].actor(services, auth_time=time.time() - 14 * 60)
    CALLS[action](services, fresh, admins)


def test_a_person_with_no_known_authentication_time_must_reauthenticate(matrix_services, admins):
    actor = Actor("person", admins[SUPER_ADMIN].person_id, frozenset({SUPER_ADMIN}), None)
    with pytest.raises(ReauthRequired):
        matrix_services.admin.rotate_keys(actor, "ES256")


def test_non_sensitive_actions_do_not_ask_for_reauthentication(matrix_services, admins):
    stale = admins[SUPER_ADMIN].actor(matrix_services, auth_time=time.time() - 3600)
    matrix_services.admin.list_keys(stale)
    matrix_services.admin.view_person(stale, admins["nobody"].person_id)


@pytest.mark.parametrize("action", sorted(SENSITIVE))
def test_a_service_account_is_not_asked_to_reauthenticate(matrix_services, admins, action: str):
    actor = Actor("client", "automation", frozenset({SUPER_ADMIN, PLATFORM_ADMIN}), None, "127.0.0.1")
    CALLS[action](matrix_services, actor, admins)


@pytest.mark.parametrize("other", [SUPER_ADMIN, PLATFORM_ADMIN, ENTITY_ADMIN])
def test_auditor_cannot_be_combined_with_another_role(matrix_services, admins, other: str):
    super_admin = admins[SUPER_ADMIN].actor(matrix_services)
    with pytest.raises(AdminInputError) as raised:
        matrix_services.admin.grant_role(super_admin, admins[AUDITOR].person_id, other)
    assert raised.value.code == "invalid_role"
    holder = admins[other] if other != SUPER_ADMIN else admins[PLATFORM_ADMIN]
    with pytest.raises(AdminInputError) as raised:
        matrix_services.admin.grant_role(super_admin, holder.person_id, AUDITOR)
    assert raised.value.code == "invalid_role"
    assert matrix_services.admin.roles_of(admins[AUDITOR].person_id) == {AUDITOR}
    assert AUDITOR not in matrix_services.admin.roles_of(holder.person_id)


def test_the_bootstrap_cli_cannot_combine_auditor_either(matrix_services, admins):
    with pytest.raises(AdminInputError):
        matrix_services.admin.bootstrap_role(admins[AUDITOR].person_id, SUPER_ADMIN)


def test_nobody_changes_their_own_roles(matrix_services, admins):
    services = matrix_services
    me = admins[SUPER_ADMIN]
    actor = me.actor(services)
    for role in (PLATFORM_ADMIN, ENTITY_ADMIN):
        with pytest.raises(AdminInputError) as raised:
            services.admin.grant_role(actor, me.person_id, role)
        assert raised.value.code == "self_grant"
    with pytest.raises(AdminInputError) as raised:
        services.admin.revoke_role(actor, me.person_id, SUPER_ADMIN)
    assert raised.value.code == "self_grant"
    assert services.admin.roles_of(me.person_id) == {SUPER_ADMIN}
    # by username or ID number the same person is still themself
    with pytest.raises(AdminInputError):
        services.admin.grant_role(actor, me.username, PLATFORM_ADMIN)
    with pytest.raises(AdminInputError):
        services.admin.grant_role(actor, me.id_number, PLATFORM_ADMIN)


def test_a_super_admin_grants_and_revokes_another_admins_role(matrix_services, admins):
    services = matrix_services
    actor = admins[SUPER_ADMIN].actor(services)
    target = admins[PLATFORM_ADMIN].person_id
    services.admin.grant_role(actor, target, ENTITY_ADMIN)
    assert services.admin.roles_of(target) == {PLATFORM_ADMIN, ENTITY_ADMIN}
    assert services.admin.revoke_role(actor, target, ENTITY_ADMIN)
    assert services.admin.roles_of(target) == {PLATFORM_ADMIN}
    assert services.audit.flush()
    events = [e["event"] for e in services.audit.search(AuditFilter(event="admin.role.", subject=target))]
    assert "admin.role.granted" in events and "admin.role.revoked" in events
