"""`seed-bulk`: synthetic persons and entities stored exactly as the normal paths store them, found by
the normal login, resumable, and refusing bad input plainly (on both backends)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from flows import PORTAL, decode, login_for_code, redeem
from sqlalchemy import func, select

from idp.cli import provision_document
from idp.domain.entities import EntityStatus, Role
from idp.domain.identifiers import (
    compute_resident_id_check,
    compute_uscc_check,
    parse_resident_id,
    parse_uscc,
)
from idp.services.bulk_seed import DEFAULT_SEED, synthetic_entity, synthetic_person
from idp.store.key_encryption import KeyEncryptor, load_or_create_kek
from idp.store.models import AgentAuthorisationRow, AuditEventRow, LegalEntityRow, PersonRow

PASSWORD = "Seed#Password2026"
PERSONS, ENTITIES = 200, 20


def count(services, model) -> int:
    with services.tokens.engine().connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def rows(services, model) -> list:
    with services.tokens.engine().connect() as conn:
        return list(conn.execute(select(model.__table__)))


def seed(run, persons: int = PERSONS, entities: int = ENTITIES, *extra: str):
    return run(
        "seed-bulk",
        "--persons",
        str(persons),
        "--entities",
        str(entities),
        "--password",
        PASSWORD,
        "--batch",
        "64",
        *extra,
    )


@pytest.fixture
def seeded(run, services):
    result = seed(run)
    assert result.exit_code == 0, result.output
    return result


def test_seeds_the_counts_asked_for_and_reports_speed(seeded, services, backend):
    assert count(services, PersonRow) == PERSONS
    assert count(services, LegalEntityRow) == ENTITIES
    assert count(services, AgentAuthorisationRow) == ENTITIES
    method = "COPY" if backend == "postgres" else "executemany"
    assert f"persons: 0 seeded before, {PERSONS:,} added" in seeded.output
    assert f"entities: 0 seeded before, {ENTITIES:,} added" in seeded.output
    assert f"({method}, " in seeded.output and "rows/s" in seeded.output
    assert f"persons: {PERSONS}/{PERSONS} (100%)" in seeded.output
    with services.tokens.engine().connect() as conn:
        event = conn.execute(select(AuditEventRow).where(AuditEventRow.event == "seed.bulk_loaded")).one()
    assert event.actor == "cli" and '"persons_added":200' in event.details


def test_seeded_persons_hold_valid_identifiers_stored_encrypted_with_a_blind_index(
    seeded, services, settings
):
    today = datetime.date.today()
    encryptor = KeyEncryptor(load_or_create_kek(None, Path(settings.key_dir)))
    stored = {row.username: row for row in rows(services, PersonRow)}
    for i in range(PERSONS):
        person = synthetic_person(DEFAULT_SEED, i)
        row = stored[person.username]
        number = encryptor.decrypt(row.id_number_enc, aad=row.id.encode()).decode()
        assert number == person.id_number and number.encode() not in row.id_number_enc
        assert compute_resident_id_check(number[:17]) == number[17]
        assert parse_resident_id(number, today=today).birth_date < today
        assert row.id_number_masked == f"{number[:6]}********{number[-4:]}"
        assert row.id == person.id and row.phone_number == person.phone_number
        found = services.persons.find_by_id_number(number)  # the blind index the service computes
        assert found is not None and found.id == row.id and found.verified


def test_a_seeded_row_has_the_shape_of_a_provisioned_one(seeded, services):
    services.persons.upsert(
        {
            "username": "wangwu",
            "password": "long enough pw",
            "name": "王五",
            "email": "wangwu@example.com",
            "phone_number": "13800000001",
            "id_number": "440305199207182464",
        }
    )
    by_name = {row.username: row for row in rows(services, PersonRow)}
    normal, bulk = by_name["wangwu"], by_name[synthetic_person(DEFAULT_SEED, 7).username]
    columns = PersonRow.__table__.columns.keys()
    assert {c for c in columns if getattr(normal, c) is None} == {
        c for c in columns if getattr(bulk, c) is None
    }
    for column in ("document_type", "verified_by", "email_verified", "self_registered", "disabled"):
        assert getattr(bulk, column) == getattr(normal, column), column
    assert bulk.password_hash.startswith("$argon2id$")
    assert len(bulk.id_number_index) == len(normal.id_number_index) == 64


def test_every_seeded_person_shares_one_password_hash(seeded, services):
    with services.tokens.engine().connect() as conn:
        hashes = conn.execute(select(func.count(func.distinct(PersonRow.password_hash)))).scalar_one()
    assert hashes == 1


@pytest.mark.parametrize("index", [0, 57, PERSONS - 1])
def test_a_seeded_person_logs_in_with_username_mobile_or_identity_number(seeded, services, index):
    person = synthetic_person(DEFAULT_SEED, index)
    for identifier in (person.username, person.phone_number, person.id_number):
        found = services.persons.authenticate(identifier, PASSWORD)
        assert found is not None and found.id == person.id, identifier
    assert services.persons.authenticate(person.username, PASSWORD + "x") is None


def test_a_seeded_person_completes_an_openid_login_over_the_web(seeded, services, client):
    provision_document(services, {"clients": [PORTAL]})
    person = synthetic_person(DEFAULT_SEED, PERSONS - 3)  # not a representative: no second factor
    auth, query = login_for_code(client, person={"username": person.id_number, "password": PASSWORD})
    assert "code" in query, query
    response = redeem(client, query["code"], auth)
    assert response.status_code == 200, response.get_data(as_text=True)
    claims = decode(client, response.get_json()["id_token"]).claims
    assert claims["sub"] == person.id


def test_each_seeded_entity_is_verified_and_represented_by_its_seeded_person(seeded, services):
    for j in (0, ENTITIES - 1):
        synthetic = synthetic_entity(DEFAULT_SEED, j)
        assert parse_uscc(synthetic.uscc).value == synthetic.uscc
        assert compute_uscc_check(synthetic.uscc[:17]) == synthetic.uscc[17]
        entity = services.entities.find_entity_by_uscc(synthetic.uscc)
        assert entity is not None and entity.status is EntityStatus.VERIFIED and entity.id == synthetic.id
        (held,) = services.entities.authorisations_of_entity(entity.id, active_only=True)
        assert held.role is Role.LEGAL_REPRESENTATIVE and held.person_id == synthetic.representative_id
        assert held.granted_by == "provision"
        options = services.entities.acting_options(synthetic.representative_id)
        assert [(o.entity_id, o.role) for o in options] == [(entity.id, Role.LEGAL_REPRESENTATIVE)]
        assert (
            services.entities.acting_as(synthetic.representative_id, entity.id).role
            is Role.LEGAL_REPRESENTATIVE
        )
        assert services.entities.requires_mfa(synthetic.representative_id)
    bystander = synthetic_person(DEFAULT_SEED, ENTITIES)
    assert services.entities.acting_options(bystander.id) == []
    assert not services.entities.requires_mfa(bystander.id)


def test_running_again_changes_nothing_and_a_larger_count_adds_only_the_rest(run, services):
    first = seed(run, 100, 10)
    assert first.exit_code == 0, first.output
    ids_before = {row.username: row.id for row in rows(services, PersonRow)}
    grown = seed(run, PERSONS, ENTITIES)
    assert grown.exit_code == 0, grown.output
    assert "persons: 100 seeded before, 100 added" in grown.output
    assert "entities: 10 seeded before, 10 added" in grown.output
    again = seed(run, PERSONS, ENTITIES)
    assert again.exit_code == 0, again.output
    assert f"persons: {PERSONS:,} seeded before, 0 added" in again.output
    assert f"entities: {ENTITIES:,} seeded before, 0 added" in again.output
    assert count(services, PersonRow) == PERSONS and count(services, LegalEntityRow) == ENTITIES
    assert count(services, AgentAuthorisationRow) == ENTITIES
    after = {row.username: row.id for row in rows(services, PersonRow)}
    assert {k: after[k] for k in ids_before} == ids_before
    assert {row.username: row.id for row in rows(services, PersonRow)} == {
        synthetic_person(DEFAULT_SEED, i).username: synthetic_person(DEFAULT_SEED, i).id
        for i in range(PERSONS)
    }


def test_another_seed_on_a_seeded_database_is_refused(seeded, run, services):
    result = seed(run, PERSONS + 10, ENTITIES, "--seed", "7")
    assert result.exit_code != 0 and "another --seed" in result.output and "Traceback" not in result.output
    assert count(services, PersonRow) == PERSONS


def test_a_collision_with_an_existing_person_is_a_clear_error(run, services):
    clash = synthetic_person(DEFAULT_SEED, 70)
    services.persons.upsert(
        {"username": "lisi", "password": "long enough pw", "phone_number": clash.phone_number}
    )
    result = seed(run, PERSONS, 0)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "seeded persons 64..127 collide" in result.output and "phone_number" in result.output
    assert count(services, PersonRow) == 1 + 64  # the first batch stays, the colliding one is rolled back


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--persons", "-1"), "--persons must be a whole number from 0"),
        (("--persons", "10", "--entities", "-5"), "--entities must be a whole number from 0"),
        (("--persons", "10", "--entities", "11"), "cannot exceed --persons"),
        (("--persons", "10", "--batch", "0"), "--batch must be from 1"),
        (("--persons", "10", "--seed", "-3"), "--seed must be from 0"),
        (("--persons", "10", "--password", "short"), "at least 8 characters"),
        (("--persons", "ten"), "'ten' is not a valid integer"),
        ((), "Missing option '--persons'"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(run, services, args, message):
    result = run("seed-bulk", *args, *(() if "--password" in args else ("--password", PASSWORD)))
    assert result.exit_code != 0, result.output
    assert message in result.output and "Traceback" not in result.output
    assert count(services, PersonRow) == 0
