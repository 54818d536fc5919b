"""The synthetic records of `seed-bulk`: valid identifiers, unique, deterministic (no database)."""

from __future__ import annotations

import datetime

import pytest

from idp.domain.identifiers import (
    PROVINCE_CODES,
    USCC_ALPHABET,
    compute_resident_id_check,
    parse_resident_id,
    parse_uscc,
)
from idp.services.bulk_seed import (
    DEFAULT_SEED,
    DIVISIONS,
    organisation_code,
    person_id_of,
    synthetic_entity,
    synthetic_person,
)
from idp.services.persons import validate_person_data

N = 20_000


def _gb11714_check(body: str) -> str:
    """An independent statement of the organisation-code check (GB 11714-1997)."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    value = 11 - sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def _uscc_check(first17: str) -> str:
    """An independent statement of the GB 32100 check, from the brief's weights."""
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, weights, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def test_persons_are_valid_and_unique():
    today = datetime.date.today()
    persons = [synthetic_person(DEFAULT_SEED, i) for i in range(N)]
    for p in persons[:: N // 2000]:
        number = parse_resident_id(p.id_number, today=today)  # check character, province, real past date
        assert number.value == p.id_number
        assert compute_resident_id_check(p.id_number[:17]) == p.id_number[17]
        assert p.id_number[:6] in {code for code, _city in DIVISIONS}
        assert number.birth_date < today - datetime.timedelta(days=18 * 366)
        assert len(p.phone_number) == 11 and p.phone_number.isdigit() and p.phone_number.startswith("199")
        assert validate_person_data({"username": p.username, "id_number": p.id_number})[0] == p.username
        assert len(p.id) == 32 and int(p.id, 16) >= 0
        assert p.name and len(p.name) <= 3
    for field in ("id", "username", "phone_number", "id_number", "email"):
        assert len({getattr(p, field) for p in persons}) == N, field


def test_every_division_code_is_in_a_known_province():
    assert {code[:2] for code, _city in DIVISIONS} <= PROVINCE_CODES
    assert len({code for code, _city in DIVISIONS}) == len(DIVISIONS)


def test_entities_are_valid_unique_and_represented_by_the_person_of_the_same_index():
    entities = [synthetic_entity(DEFAULT_SEED, j) for j in range(N)]
    for e in entities[:: N // 2000]:
        assert parse_uscc(e.uscc).value == e.uscc
        assert e.uscc[17] == _uscc_check(e.uscc[:17])
        assert e.uscc[:2] == "91" and e.uscc[2:8] in {code for code, _city in DIVISIONS}
        assert e.uscc[16] == _gb11714_check(e.uscc[8:16])
        assert e.representative_id == synthetic_person(DEFAULT_SEED, e.index).id
        assert 1 <= len(e.name) <= 200
    assert len({e.uscc for e in entities}) == N
    assert len({e.id for e in entities} | {e.authorisation_id for e in entities}) == 2 * N


@pytest.mark.parametrize("body", ["00000000", "12345678", "99999999", "31415926"])
def test_organisation_code_check(body):
    assert organisation_code(body) == body + _gb11714_check(body)


def test_records_depend_on_the_seed_and_index_only():
    assert synthetic_person(7, 123) == synthetic_person(7, 123)
    assert synthetic_entity(7, 45) == synthetic_entity(7, 45)
    assert synthetic_person(7, 123).id_number != synthetic_person(8, 123).id_number
    assert person_id_of(7, 123) == synthetic_person(7, 123).id
