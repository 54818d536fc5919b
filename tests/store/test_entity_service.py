"""EntityService on the backend under test: register verification, representatives, agents, acting-as."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from idp.domain.entities import (
    ALL_POWERS,
    ActingAs,
    AgentAuthorisation,
    CannotActForEntity,
    EntityStatus,
    LegalEntity,
    Role,
)
from idp.services.entities import EntityError, EntityService
from idp.sources.base import EntityRecord, SourceUnavailable
from idp.store.db import build_sessionmaker

NOW = 1_750_000_000
HOUR = 3600

# Identifiers that pass their check characters (GB 32100-2015, GB 11643-1999).
USCC_FUZHOU = "91350100M000100Y43"
USCC_BEIJING = "91110108MA01C2D3EG"
USCC_SHENZHEN = "12440300455758122T"
ID_ZHANG = "410105198503121235"
ID_LI = "440305199207182464"
ID_WANG = "310101197801013570"
ID_ZHAO = "11010519491231002X"
ID_UNKNOWN = "110105194912310038"  # valid, held by nobody here

FUZHOU_NAME = "福州示例科技有限公司"
BEIJING_NAME = "北京示例网络技术有限公司"
SHENZHEN_NAME = "深圳市示例研究院"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeRegister:
    """An in-test enterprise register implementing the EntityRegister protocol."""

    def __init__(self, *records: EntityRecord, unavailable: bool = False) -> None:
        self.records = {r.uscc: r for r in records}
        self.unavailable = unavailable
        self.calls: list[str] = []

    def lookup_entity(self, uscc: str) -> EntityRecord | None:
        self.calls.append(uscc)
        if self.unavailable:
            raise SourceUnavailable("connection timed out")
        return self.records.get(uscc)

    def put(self, record: EntityRecord) -> None:
        self.records[record.uscc] = record


def record(
    uscc: str = USCC_FUZHOU,
    name: str = FUZHOU_NAME,
    status: str = "active",
    representative: tuple[str, str] = ("张三", ID_ZHANG),
) -> EntityRecord:
    return EntityRecord(
        uscc=uscc,
        name=name,
        entity_type="enterprise",
        status=status,
        legal_representative_name=representative[0],
        legal_representative_id_number=representative[1],
    )


@dataclasses.dataclass
class World:
    entities: EntityService
    register: FakeRegister
    clock: Clock
    zhang: str  # the register's legal representative of the Fuzhou company
    li: str
    wang: str
    zhao: str

    def build(self, register: FakeRegister | None) -> EntityService:
        """Another service over the same database, with a different register."""
        return EntityService(self.entities._sessions, self.entities._persons, register, clock=self.clock)


@pytest.fixture
def world(services) -> World:
    sessions = build_sessionmaker(services.tokens.engine())
    register = FakeRegister(
        record(),
        record(USCC_BEIJING, BEIJING_NAME, representative=("李四", ID_LI)),
        record(USCC_SHENZHEN, SHENZHEN_NAME, representative=("王五", ID_WANG)),
    )
    clock = Clock()
    people = {}
    for username, name, number in [
        ("zhangsan", "张三", ID_ZHANG),
        ("lisi", "李四", ID_LI),
        ("wangwu", "王五", ID_WANG),
        ("zhaoliu", "赵六", ID_ZHAO),
    ]:
        person = services.persons.upsert(
            {"username": username, "password": "long enough pw", "name": name, "id_number": number}
        )
        people[username] = person.id
    return World(
        entities=EntityService(sessions, services.persons, register, clock=clock),
        register=register,
        clock=clock,
        zhang=people["zhangsan"],
        li=people["lisi"],
        wang=people["wangwu"],
        zhao=people["zhaoliu"],
    )


def verified_fuzhou(world: World) -> LegalEntity:
    """The Fuzhou company, verified; 张三 is its legal representative (from the register)."""
    entity = world.entities.create_entity(USCC_FUZHOU, FUZHOU_NAME)
    return world.entities.verify_entity(entity.id)


def grant(world: World, entity: LegalEntity, person_id: str, **kwargs) -> AgentAuthorisation:
    arguments: dict[str, Any] = {
        "powers": ["cases:apply"],
        "valid_until": None,
        "granted_by_person_id": world.zhang,
    }
    arguments.update(kwargs)
    return world.entities.grant_agent(entity.id, person_id, **arguments)


def cannot_act(world: World, person_id: str, entity_id: str) -> CannotActForEntity:
    with pytest.raises(CannotActForEntity) as exc_info:
        world.entities.acting_as(person_id, entity_id)
    return exc_info.value


def entity_error(call, *args, **kwargs) -> EntityError:
    with pytest.raises(EntityError) as exc_info:
        call(*args, **kwargs)
    return exc_info.value


# -- creating and finding entities -----------------------------------------------------------------


def test_created_entity_is_pending_and_found_by_its_code(world):
    entity = world.entities.create_entity(" 91110108ma01c2d3eg ", BEIJING_NAME)
    assert isinstance(entity, LegalEntity)
    assert entity.uscc == USCC_BEIJING and entity.status is EntityStatus.PENDING
    assert entity.entity_type == "enterprise" and entity.verified_at is None
    assert world.entities.get_entity(entity.id) == entity
    assert world.entities.find_entity_by_uscc(USCC_BEIJING) == entity
    assert world.entities.find_entity_by_uscc(USCC_FUZHOU) is None
    assert world.entities.get_entity("0" * 32) is None


def test_code_with_a_bad_check_character_is_refused_in_plain_words(world):
    error = entity_error(world.entities.create_entity, "91350100M000100Y44", FUZHOU_NAME)
    assert error.code == "bad_check_character"
    assert "check character" in error.message
    assert (
        entity_error(world.entities.find_entity_by_uscc, "91350100M000100Y44").code == "bad_check_character"
    )


def test_code_with_a_forbidden_letter_is_refused(world):
    assert entity_error(world.entities.create_entity, "91350100M000100Y4O", "x").code == "bad_character"


def test_duplicate_code_is_refused(world):
    world.entities.create_entity(USCC_FUZHOU, FUZHOU_NAME)
    error = entity_error(world.entities.create_entity, USCC_FUZHOU.lower(), "another name")
    assert error.code == "duplicate" and "already registered" in error.message


def test_entity_type_and_name_are_checked(world):
    assert entity_error(world.entities.create_entity, USCC_FUZHOU, FUZHOU_NAME, "company").code == (
        "invalid_entity_type"
    )
    assert entity_error(world.entities.create_entity, USCC_FUZHOU, "  ").code == "invalid_name"
    institution = world.entities.create_entity(USCC_SHENZHEN, SHENZHEN_NAME, "institution")
    assert institution.entity_type == "institution"


def test_entities_are_listed_by_name_a_page_at_a_time(world):
    for uscc, name in [(USCC_FUZHOU, "c"), (USCC_BEIJING, "a"), (USCC_SHENZHEN, "b")]:
        world.entities.create_entity(uscc, name)
    assert [e.name for e in world.entities.list_entities()] == ["a", "b", "c"]
    assert [e.name for e in world.entities.list_entities(offset=1, limit=1)] == ["b"]


# -- verification against the enterprise register ---------------------------------------------------


def test_verification_takes_the_representative_from_the_register(world):
    entity = world.entities.create_entity(USCC_FUZHOU, FUZHOU_NAME)
    verified = world.entities.verify_entity(entity.id)
    assert verified.status is EntityStatus.VERIFIED and verified.verified_at == NOW
    assert world.register.calls == [USCC_FUZHOU]
    [representative] = world.entities.authorisations_of_entity(entity.id)
    assert representative.person_id == world.zhang
    assert representative.role is Role.LEGAL_REPRESENTATIVE
    assert representative.powers == ALL_POWERS and representative.granted_by == "register"
    assert world.entities.acting_options(world.zhang) == [
        ActingAs(entity.id, USCC_FUZHOU, FUZHOU_NAME, Role.LEGAL_REPRESENTATIVE, ("*",))
    ]


def test_name_differing_from_the_register_is_refused_and_nothing_changes(world):
    entity = world.entities.create_entity(USCC_FUZHOU, "福州另一家公司")
    error = entity_error(world.entities.verify_entity, entity.id)
    assert error.code == "name_mismatch" and FUZHOU_NAME in error.message
    assert world.entities.get_entity(entity.id) == entity
    assert world.entities.authorisations_of_entity(entity.id) == []


def test_name_may_differ_only_in_full_width_forms(world):
    world.register.put(record(USCC_SHENZHEN, "深圳示例（集团）有限公司", representative=("王五", ID_WANG)))
    entity = world.entities.create_entity(USCC_SHENZHEN, "深圳示例(集团)有限公司")
    assert world.entities.verify_entity(entity.id).status is EntityStatus.VERIFIED


def test_entity_not_in_the_register_is_refused(world):
    entity = world.entities.create_entity(USCC_FUZHOU, FUZHOU_NAME)
    empty = world.build(FakeRegister())
    refused = entity_error(empty.verify_entity, entity.id)
    assert refused.code == "not_in_register" and USCC_FUZHOU in refused.message
    assert world.entities.get_entity(entity.id) == entity


def test_unreachable_register_changes_nothing(world):
    entity = verified_fuzhou(world)
    world.entities.suspend(entity.id)
    world.entities.reinstate(entity.id)
    before = (world.entities.get_entity(entity.id), world.entities.authorisations_of_entity(entity.id))
    world.clock.now += HOUR
    down = world.build(FakeRegister(unavailable=True))
    error = entity_error(down.verify_entity, entity.id)
    assert error.code == "register_unavailable"
    assert "cannot be reached" in error.message and "nothing was changed" in error.message
    assert (
        world.entities.get_entity(entity.id),
        world.entities.authorisations_of_entity(entity.id),
    ) == before

    pending = world.entities.create_entity(USCC_BEIJING, BEIJING_NAME)
    assert entity_error(down.verify_entity, pending.id).code == "register_unavailable"
    assert world.entities.get_entity(pending.id) == pending
    assert world.entities.authorisations_of_entity(pending.id) == []


def test_without_a_register_nothing_can_be_verified(world):
    entity = world.entities.create_entity(USCC_FUZHOU, FUZHOU_NAME)
    error = entity_error(world.build(None).verify_entity, entity.id)
    assert error.code == "no_register" and "No enterprise register" in error.message


def test_entity_suspended_in_the_register_is_suspended_here(world):
    world.register.put(record(status="suspended"))
    entity = world.entities.create_entity(USCC_FUZHOU, FUZHOU_NAME)
    assert world.entities.verify_entity(entity.id).status is EntityStatus.SUSPENDED
    assert world.entities.authorisations_of_entity(entity.id) == []
    # Reinstating an entity that never was verified takes it back to pending, not to verified.
    assert world.entities.reinstate(entity.id).status is EntityStatus.PENDING


def test_entity_deregistered_in_the_register_loses_every_authorisation(world):
    entity = verified_fuzhou(world)
    grant(world, entity, world.li)
    world.register.put(record(status="deregistered"))
    world.clock.now += HOUR
    assert world.entities.verify_entity(entity.id).status is EntityStatus.DEREGISTERED
    assert world.entities.authorisations_of_entity(entity.id, active_only=True) == []
    assert cannot_act(world, world.li, entity.id).code == "entity_deregistered"


def test_unknown_register_status_changes_nothing(world):
    world.register.put(record(status="merged"))
    entity = world.entities.create_entity(USCC_FUZHOU, FUZHOU_NAME)
    assert entity_error(world.entities.verify_entity, entity.id).code == "register_status_unknown"
    assert world.entities.get_entity(entity.id) == entity


def test_representative_whose_name_differs_from_the_register_is_not_installed(world):
    world.register.put(record(representative=("张叁", ID_ZHANG)))
    entity = verified_fuzhou(world)
    assert entity.status is EntityStatus.VERIFIED
    assert world.entities.authorisations_of_entity(entity.id) == []
    assert world.entities.acting_options(world.zhang) == []


def test_representative_without_an_account_leaves_the_entity_without_one(world):
    world.register.put(record(representative=("孙七", ID_UNKNOWN)))
    assert world.entities.authorisations_of_entity(verified_fuzhou(world).id) == []


def test_unusable_representative_number_in_the_register_changes_no_representative(world):
    entity = verified_fuzhou(world)
    world.register.put(record(representative=("张三", "440305199207182465")))  # bad check character
    world.entities.verify_entity(entity.id)
    assert world.entities.acting_as(world.zhang, entity.id).role is Role.LEGAL_REPRESENTATIVE


def test_new_representative_in_the_register_replaces_the_old_one(world):
    entity = verified_fuzhou(world)
    world.register.put(record(representative=("李四", ID_LI)))
    world.clock.now += HOUR
    world.entities.verify_entity(entity.id)
    assert cannot_act(world, world.zhang, entity.id).code == "authorisation_revoked"
    assert world.entities.acting_as(world.li, entity.id).role is Role.LEGAL_REPRESENTATIVE
    assert [a.person_id for a in world.entities.authorisations_of_entity(entity.id, active_only=True)] == [
        world.li
    ]


def test_representative_no_longer_named_by_the_register_loses_authority(world):
    entity = verified_fuzhou(world)
    world.register.put(record(representative=("孙七", ID_UNKNOWN)))
    world.entities.verify_entity(entity.id)
    assert cannot_act(world, world.zhang, entity.id).code == "authorisation_revoked"


def test_reverification_keeps_the_same_representative(world):
    entity = verified_fuzhou(world)
    [first] = world.entities.authorisations_of_entity(entity.id)
    world.clock.now += HOUR
    assert world.entities.verify_entity(entity.id).verified_at == NOW + HOUR
    assert world.entities.authorisations_of_entity(entity.id) == [first]


# -- granting and revoking agents ------------------------------------------------------------------


def test_representative_grants_an_agent_who_can_then_act(world):
    entity = verified_fuzhou(world)
    authorisation = grant(
        world, entity, world.li, powers=["certificates:read", "cases:apply"], valid_until=NOW + 30 * 86_400
    )
    assert authorisation.role is Role.AGENT
    assert authorisation.powers == ("cases:apply", "certificates:read")
    assert authorisation.granted_by == f"person:{world.zhang}"
    assert (authorisation.valid_from, authorisation.valid_until) == (NOW, NOW + 30 * 86_400)
    acting = world.entities.acting_as(world.li, entity.id)
    assert acting.to_claim() == {
        "uscc": USCC_FUZHOU,
        "name": FUZHOU_NAME,
        "role": "agent",
        "powers": ["cases:apply", "certificates:read"],
    }
    assert world.entities.acting_options(world.li) == [acting]
    assert world.entities.authorisations_of_person(world.li) == [authorisation]


def test_agent_cannot_grant(world):
    entity = verified_fuzhou(world)
    grant(world, entity, world.li)
    error = entity_error(grant, world, entity, world.wang, granted_by_person_id=world.li)
    assert error.code == "forbidden" and "Only the legal representative" in error.message


def test_stranger_cannot_grant(world):
    entity = verified_fuzhou(world)
    assert entity_error(grant, world, entity, world.wang, granted_by_person_id=world.zhao).code == "forbidden"
    assert entity_error(grant, world, entity, world.wang, granted_by_person_id=None).code == "forbidden"
    assert world.entities.acting_options(world.wang) == []


def test_representative_of_another_entity_cannot_grant(world):
    fuzhou = verified_fuzhou(world)
    beijing = world.entities.create_entity(USCC_BEIJING, BEIJING_NAME)
    world.entities.verify_entity(beijing.id)  # 李四 represents Beijing
    assert entity_error(grant, world, fuzhou, world.wang, granted_by_person_id=world.li).code == "forbidden"


def test_admin_can_grant(world):
    entity = verified_fuzhou(world)
    authorisation = grant(
        world, entity, world.li, granted_by_person_id=None, by_admin="admin-7", role=Role.ENTITY_ADMIN
    )
    assert authorisation.granted_by == "admin:admin-7" and authorisation.role is Role.ENTITY_ADMIN


def test_grant_is_refused_for_an_entity_not_verified_and_active(world):
    pending = world.entities.create_entity(USCC_BEIJING, BEIJING_NAME)
    error = entity_error(grant, world, pending, world.wang, granted_by_person_id=None, by_admin="a")
    assert error.code == "entity_pending" and "not yet verified" in error.message
    entity = verified_fuzhou(world)
    world.entities.suspend(entity.id)
    assert entity_error(grant, world, entity, world.li).code == "entity_suspended"


def test_grant_checks_its_terms(world):
    entity = verified_fuzhou(world)
    assert entity_error(grant, world, entity, world.li, valid_until=NOW).code == "invalid_validity"
    assert entity_error(grant, world, entity, world.li, valid_until=NOW - 1).code == "invalid_validity"
    assert entity_error(grant, world, entity, world.li, powers=["Cases"]).code == "invalid_power"
    assert entity_error(grant, world, entity, world.li, powers=[]).code == "no_powers"
    assert entity_error(grant, world, entity, world.zhang).code == "self_grant"
    error = entity_error(grant, world, entity, world.li, role=Role.LEGAL_REPRESENTATIVE)
    assert error.code == "invalid_role"
    assert entity_error(grant, world, entity, "0" * 32).code == "person_not_found"
    assert world.entities.authorisations_of_person(world.li) == []


def test_representative_cannot_also_be_an_agent(world):
    entity = verified_fuzhou(world)
    error = entity_error(grant, world, entity, world.zhang, granted_by_person_id=None, by_admin="a")
    assert error.code == "already_representative"


def test_person_without_a_verified_real_name_cannot_be_granted(world, services):
    unverified = services.persons.upsert({"username": "anon", "password": "long enough pw"})
    entity = verified_fuzhou(world)
    assert entity_error(grant, world, entity, unverified.id).code == "person_not_verified"


def test_regrant_replaces_the_previous_authorisation(world):
    entity = verified_fuzhou(world)
    first = grant(world, entity, world.li, powers=["cases:apply"])
    world.clock.now += 60
    second = grant(world, entity, world.li, powers=["certificates:read"], valid_until=NOW + HOUR)
    assert second.id != first.id
    assert world.entities.acting_as(world.li, entity.id).powers == ("certificates:read",)
    history = world.entities.authorisations_of_person(world.li)
    assert [a.id for a in history] == [second.id, first.id]
    assert history[1].revoked_at == NOW + 60
    active = world.entities.authorisations_of_entity(entity.id, active_only=True)
    assert sorted(a.person_id for a in active) == sorted([world.zhang, world.li])


def test_revocation_by_the_representative_takes_effect_on_the_next_token(world):
    entity = verified_fuzhou(world)
    authorisation = grant(world, entity, world.li)
    assert world.entities.acting_as(world.li, entity.id).role is Role.AGENT  # first token
    world.clock.now += 10
    revoked = world.entities.revoke_authorisation(authorisation.id, by_person_id=world.zhang)
    assert revoked.revoked_at == NOW + 10
    refusal = cannot_act(world, world.li, entity.id)  # next token
    assert refusal.code == "authorisation_revoked" and "has been revoked" in refusal.message
    assert world.entities.acting_options(world.li) == []
    world.clock.now += 10
    again = world.entities.revoke_authorisation(authorisation.id, by_person_id=world.zhang)
    assert again == revoked  # revoking twice changes nothing


def test_revocation_by_others(world):
    entity = verified_fuzhou(world)
    authorisation = grant(world, entity, world.li)
    error = entity_error(world.entities.revoke_authorisation, authorisation.id, by_person_id=world.zhao)
    assert error.code == "forbidden"
    assert entity_error(world.entities.revoke_authorisation, authorisation.id, None).code == "forbidden"
    assert world.entities.acting_as(world.li, entity.id)
    # An admin may revoke; so may the agent, giving up their own authority.
    assert world.entities.revoke_authorisation(authorisation.id, None, by_admin="admin-1").revoked_at == NOW
    other = grant(world, entity, world.wang)
    assert world.entities.revoke_authorisation(other.id, by_person_id=world.wang).revoked_at == NOW
    assert world.entities.acting_options(world.wang) == []


def test_representative_authority_is_not_revoked_from_an_account_page(world):
    entity = verified_fuzhou(world)
    [representative] = world.entities.authorisations_of_entity(entity.id)
    error = entity_error(world.entities.revoke_authorisation, representative.id, by_person_id=world.zhang)
    assert error.code == "forbidden"
    assert world.entities.revoke_authorisation(representative.id, None, by_admin="a").revoked_at == NOW


def test_revoking_an_unknown_authorisation(world):
    error = entity_error(world.entities.revoke_authorisation, "0" * 32, by_person_id=world.zhang)
    assert error.code == "not_found"


# -- acting as -------------------------------------------------------------------------------------


def test_expired_authorisation_is_refused(world):
    entity = verified_fuzhou(world)
    grant(world, entity, world.li, valid_until=NOW + HOUR)
    world.clock.now = NOW + HOUR - 1
    assert world.entities.acting_as(world.li, entity.id).role is Role.AGENT
    world.clock.now = NOW + HOUR
    refusal = cannot_act(world, world.li, entity.id)
    assert refusal.code == "authorisation_expired" and "has expired" in refusal.message
    assert world.entities.acting_options(world.li) == []
    assert world.entities.authorisations_of_person(world.li, active_only=True) == []


def test_authorisation_starting_later_is_not_valid_yet(world):
    entity = verified_fuzhou(world)
    grant(world, entity, world.li, valid_from=NOW + HOUR, valid_until=NOW + 2 * HOUR)
    assert cannot_act(world, world.li, entity.id).code == "authorisation_not_yet_valid"
    world.clock.now += HOUR
    assert world.entities.acting_as(world.li, entity.id).role is Role.AGENT


def test_suspended_entity_is_refused_until_reinstated(world):
    entity = verified_fuzhou(world)
    grant(world, entity, world.li)
    assert world.entities.suspend(entity.id).status is EntityStatus.SUSPENDED
    for person in (world.zhang, world.li):
        refusal = cannot_act(world, person, entity.id)
        assert refusal.code == "entity_suspended" and "is suspended" in refusal.message
        assert world.entities.acting_options(person) == []
    assert world.entities.reinstate(entity.id).status is EntityStatus.VERIFIED
    assert world.entities.acting_as(world.li, entity.id).role is Role.AGENT


def test_deregistered_entity_is_final(world):
    entity = verified_fuzhou(world)
    grant(world, entity, world.li)
    assert world.entities.deregister(entity.id).status is EntityStatus.DEREGISTERED
    assert cannot_act(world, world.zhang, entity.id).code == "entity_deregistered"
    assert world.entities.authorisations_of_entity(entity.id, active_only=True) == []
    for change in (world.entities.reinstate, world.entities.suspend, world.entities.deregister):
        assert entity_error(change, entity.id).code == "invalid_transition"
    assert entity_error(world.entities.verify_entity, entity.id).code == "invalid_transition"
    error = entity_error(world.entities.set_legal_representative, entity.id, world.li, "admin:a")
    assert error.code == "entity_deregistered"


def test_invalid_transitions_say_what_is_wrong(world):
    entity = verified_fuzhou(world)
    error = entity_error(world.entities.reinstate, entity.id)
    assert error.code == "invalid_transition" and "not suspended" in error.message
    world.entities.suspend(entity.id)
    assert "already suspended" in entity_error(world.entities.suspend, entity.id).message
    assert "reinstate it" in entity_error(world.entities.verify_entity, entity.id).message
    assert entity_error(world.entities.suspend, "0" * 32).code == "not_found"


def test_pending_entity_cannot_be_acted_for(world):
    entity = world.entities.create_entity(USCC_FUZHOU, FUZHOU_NAME)
    world.entities.set_legal_representative(entity.id, world.zhang, "admin:a")
    refusal = cannot_act(world, world.zhang, entity.id)
    assert refusal.code == "entity_pending" and "not yet verified" in refusal.message
    assert world.entities.acting_options(world.zhang) == []


def test_person_without_authorisation_and_unknown_entity(world):
    entity = verified_fuzhou(world)
    refusal = cannot_act(world, world.zhao, entity.id)
    assert refusal.code == "no_authorisation" and FUZHOU_NAME in refusal.message
    assert entity_error(world.entities.acting_as, world.zhao, "0" * 32).code == "not_found"


def test_acting_options_list_every_entity_by_name(world):
    fuzhou = verified_fuzhou(world)
    shenzhen = world.entities.create_entity(USCC_SHENZHEN, SHENZHEN_NAME, "institution")
    world.entities.verify_entity(shenzhen.id)  # 王五 represents it
    grant(world, fuzhou, world.li)
    grant(world, shenzhen, world.li, granted_by_person_id=world.wang, powers="certificates:read")
    options = world.entities.acting_options(world.li)
    assert [(o.name, o.role) for o in options] == sorted(
        [(FUZHOU_NAME, Role.AGENT), (SHENZHEN_NAME, Role.AGENT)]
    )


# -- representatives set by an admin, and MFA ------------------------------------------------------


def test_one_legal_representative_at_a_time(world):
    entity = verified_fuzhou(world)
    grant(world, entity, world.li)  # 李四 is an agent, then becomes the representative
    world.clock.now += 5
    new = world.entities.set_legal_representative(entity.id, world.li, "admin:a")
    assert (new.role, new.powers, new.granted_by) == (Role.LEGAL_REPRESENTATIVE, ("*",), "admin:a")
    assert cannot_act(world, world.zhang, entity.id).code == "authorisation_revoked"
    assert world.entities.acting_as(world.li, entity.id).role is Role.LEGAL_REPRESENTATIVE
    assert world.entities.authorisations_of_entity(entity.id, active_only=True) == [new]
    assert world.entities.set_legal_representative(entity.id, world.li, "admin:b") == new  # unchanged
    # The old representative can no longer grant; the new one can.
    assert entity_error(grant, world, entity, world.wang).code == "forbidden"
    assert grant(world, entity, world.wang, granted_by_person_id=world.li).role is Role.AGENT


def test_representatives_and_entity_admins_need_a_second_factor(world):
    entity = verified_fuzhou(world)
    agent = grant(world, entity, world.li)
    admin = grant(world, entity, world.wang, role=Role.ENTITY_ADMIN, powers=["entity:manage"])
    assert world.entities.requires_mfa(world.zhang)
    assert world.entities.requires_mfa(world.wang)
    assert not world.entities.requires_mfa(world.li)
    assert not world.entities.requires_mfa(world.zhao)
    world.entities.revoke_authorisation(admin.id, by_person_id=world.zhang)
    assert not world.entities.requires_mfa(world.wang)
    assert agent.revoked_at is None
    world.entities.deregister(entity.id)
    assert not world.entities.requires_mfa(world.zhang)
