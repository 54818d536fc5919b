"""Legal entities and agent authorisations: who may act for an entity, every refusal, powers, the claim."""

from __future__ import annotations

import dataclasses

import pytest

from idp.domain.entities import (
    ALL_POWERS,
    ENTITY_TYPES,
    MAX_POWERS,
    ActingAs,
    AgentAuthorisation,
    CannotActForEntity,
    EntityStatus,
    InvalidEntityData,
    LegalEntity,
    Role,
    check_can_act,
    check_powers,
    names_match,
    powers_for_role,
    validate_entity_type,
)
from idp.domain.errors import DomainError
from idp.domain.identifiers import parse_uscc

NOW = 1_750_000_000
DAY = 86_400

# Passes GB 32100-2015 (check character 3, worked by hand in test_identifiers.py).
USCC = parse_uscc("91350100M000100Y43").value

ENTITY = LegalEntity(
    id="e1", uscc=USCC, name="福州示例科技有限公司", entity_type="enterprise", status=EntityStatus.VERIFIED
)
AGENT = AgentAuthorisation(
    id="a1",
    entity_id="e1",
    person_id="p1",
    role=Role.AGENT,
    powers=("cases:apply", "certificates:read"),
    valid_from=NOW - DAY,
    valid_until=NOW + DAY,
    granted_by="person:p0",
    revoked_at=None,
)


def refusal(entity: LegalEntity, authorisation: AgentAuthorisation, now: int = NOW) -> CannotActForEntity:
    with pytest.raises(CannotActForEntity) as exc_info:
        check_can_act(entity, authorisation, now)
    return exc_info.value


# -- check_can_act ---------------------------------------------------------------------------------


def test_verified_entity_within_a_valid_authorisation_can_be_acted_for():
    check_can_act(ENTITY, AGENT, NOW)
    check_can_act(ENTITY, AGENT, AGENT.valid_from)  # the first second counts
    check_can_act(ENTITY, dataclasses.replace(AGENT, valid_until=None), NOW + 1000 * DAY)  # until revoked


@pytest.mark.parametrize(
    ("status", "code", "words"),
    [
        (EntityStatus.PENDING, "entity_pending", "not yet verified"),
        (EntityStatus.SUSPENDED, "entity_suspended", "is suspended"),
        (EntityStatus.DEREGISTERED, "entity_deregistered", "has been deregistered"),
    ],
)
def test_entity_that_is_not_verified_and_active_is_refused(status, code, words):
    exc = refusal(dataclasses.replace(ENTITY, status=status), AGENT)
    assert exc.code == code
    assert words in exc.message and ENTITY.name in exc.message


def test_revoked_authorisation_is_refused():
    exc = refusal(ENTITY, dataclasses.replace(AGENT, revoked_at=NOW - 1))
    assert exc.code == "authorisation_revoked"
    assert "has been revoked" in exc.message


def test_revocation_in_the_future_is_still_a_revocation():
    assert refusal(ENTITY, dataclasses.replace(AGENT, revoked_at=NOW + 10)).code == "authorisation_revoked"


def test_expired_authorisation_is_refused_from_its_last_second():
    expired = dataclasses.replace(AGENT, valid_until=NOW)
    exc = refusal(ENTITY, expired)
    assert exc.code == "authorisation_expired"
    assert "has expired" in exc.message
    check_can_act(ENTITY, expired, NOW - 1)


def test_authorisation_not_yet_started_is_refused():
    exc = refusal(ENTITY, dataclasses.replace(AGENT, valid_from=NOW + 60))
    assert exc.code == "authorisation_not_yet_valid"
    assert "not valid yet" in exc.message


def test_authorisation_for_another_entity_is_refused():
    exc = refusal(ENTITY, dataclasses.replace(AGENT, entity_id="e2"))
    assert exc.code == "authorisation_mismatch"
    assert "another entity" in exc.message


def test_refusals_are_domain_errors_with_plain_messages():
    exc = refusal(dataclasses.replace(ENTITY, status=EntityStatus.SUSPENDED), AGENT)
    assert isinstance(exc, DomainError) and isinstance(exc, ValueError)
    assert str(exc) == exc.message
    assert "entity_suspended" in repr(exc)


def test_authorisation_is_active_only_within_its_period_and_unrevoked():
    assert AGENT.is_active(NOW)
    assert not AGENT.is_active(AGENT.valid_from - 1)
    assert not AGENT.is_active(AGENT.valid_until or 0)
    assert not dataclasses.replace(AGENT, revoked_at=NOW).is_active(NOW)


# -- powers ----------------------------------------------------------------------------------------


def test_powers_are_returned_sorted_and_unique():
    assert check_powers(["cases:apply", "certificates:read", "cases:apply"]) == (
        "cases:apply",
        "certificates:read",
    )
    assert check_powers("profile cases.read-all x_1") == ("cases.read-all", "profile", "x_1")


@pytest.mark.parametrize(
    "power",
    ["Cases", "1cases", "_x", "cases apply", "*", "cases/apply", "办件", "a" * 65, ""],
)
def test_power_that_is_not_a_scope_like_token_is_refused(power):
    with pytest.raises(InvalidEntityData) as exc_info:
        check_powers([power])
    assert exc_info.value.code == "invalid_power"
    assert "is not a valid power" in exc_info.value.message


def test_longest_power_is_accepted():
    assert check_powers(["a" * 64]) == ("a" * 64,)


def test_at_most_32_powers():
    assert len(check_powers([f"p{i}" for i in range(MAX_POWERS)])) == MAX_POWERS
    with pytest.raises(InvalidEntityData) as exc_info:
        check_powers([f"p{i}" for i in range(MAX_POWERS + 1)])
    assert exc_info.value.code == "too_many_powers"
    assert "at most 32 powers" in exc_info.value.message


@pytest.mark.parametrize("empty", [[], "", "   "])
def test_an_agent_needs_at_least_one_power(empty):
    with pytest.raises(InvalidEntityData) as exc_info:
        check_powers(empty)
    assert exc_info.value.code == "no_powers"


def test_legal_representative_holds_every_power_agents_hold_explicit_ones():
    assert powers_for_role(Role.LEGAL_REPRESENTATIVE, ["ignored"]) == ALL_POWERS == ("*",)
    assert powers_for_role(Role.AGENT, ["cases:apply"]) == ("cases:apply",)
    assert powers_for_role(Role.ENTITY_ADMIN, "b a") == ("a", "b")
    with pytest.raises(InvalidEntityData):
        powers_for_role(Role.AGENT, ["*"])


# -- acting as and its claim -----------------------------------------------------------------------


def test_to_claim_carries_uscc_name_role_and_powers():
    acting = ActingAs.of(ENTITY, AGENT)
    assert acting.to_claim() == {
        "uscc": "91350100M000100Y43",
        "name": "福州示例科技有限公司",
        "role": "agent",
        "powers": ["cases:apply", "certificates:read"],
    }
    assert type(acting.to_claim()["role"]) is str  # JSON-serialisable, not the enum


def test_representative_claim_and_powers():
    representative = dataclasses.replace(AGENT, role=Role.LEGAL_REPRESENTATIVE, powers=ALL_POWERS)
    acting = ActingAs.of(ENTITY, representative)
    assert acting.to_claim()["role"] == "legal_representative"
    assert acting.to_claim()["powers"] == ["*"]
    assert acting.allows("anything:at_all")


def test_agent_is_allowed_only_its_powers():
    acting = ActingAs.of(ENTITY, AGENT)
    assert acting.allows("cases:apply")
    assert not acting.allows("cases:withdraw")


# -- entity types and names ------------------------------------------------------------------------


def test_entity_types():
    assert ENTITY_TYPES == ("enterprise", "institution", "social_organisation", "other")
    for entity_type in ENTITY_TYPES:
        assert validate_entity_type(entity_type) == entity_type
    with pytest.raises(InvalidEntityData) as exc_info:
        validate_entity_type("company")
    assert exc_info.value.code == "invalid_entity_type"
    assert "enterprise, institution" in exc_info.value.message


def test_names_match_ignoring_full_width_forms_and_spaces():
    assert names_match("深圳示例（集团）有限公司", "深圳示例(集团)有限公司")
    assert names_match(" 张三 ", "张三")
    assert not names_match("张三", "李四")
    assert not names_match(None, "张三")
    assert not names_match("", "")


def test_values_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ENTITY.status = EntityStatus.SUSPENDED  # type: ignore[misc]
