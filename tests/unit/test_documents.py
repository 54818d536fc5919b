"""Identity documents other than the resident ID card: each type's rule, refusals, masking."""

from __future__ import annotations

import pytest

from idp.domain.documents import parse_document
from idp.domain.errors import InvalidIdentifier
from idp.domain.identifiers import compute_resident_id_check


def new_foreign_pr() -> str:
    first17 = "93311019850312001"
    return first17 + compute_resident_id_check(first17)


@pytest.mark.parametrize(
    ("document_type", "number"),
    [
        ("resident_id", "410105198503121235"),
        ("passport", "E12345678"),
        ("passport", "g1234567"),  # normalised to upper case
        ("hk_macao_permit", "H12345678"),
        ("hk_macao_permit", "M1234567890"),
        ("taiwan_permit", "12345678"),
        ("foreign_permanent_residence", "USA330685100001"),
    ],
)
def test_valid_documents(document_type, number):
    document = parse_document(document_type, number)
    assert document.document_type == document_type and document.number == number.upper()


def test_new_foreign_permanent_residence_card_uses_the_gb11643_check():
    number = new_foreign_pr()
    assert parse_document("foreign_permanent_residence", number).number == number
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    with pytest.raises(InvalidIdentifier) as refused:
        parse_document("foreign_permanent_residence", wrong)
    assert refused.value.code == "bad_check_character"


@pytest.mark.parametrize(
    ("document_type", "number", "code"),
    [
        ("resident_id", "410105198503121234", "bad_check_character"),
        ("passport", "E1", "bad_document_number"),
        ("passport", "E123-45678", "bad_document_number"),
        ("hk_macao_permit", "X12345678", "bad_document_number"),
        ("taiwan_permit", "1234567", "bad_document_number"),
        ("foreign_permanent_residence", "US330685100001", "bad_document_number"),
        ("driving_licence", "123", "unknown_document_type"),
    ],
)
def test_refusals_have_codes_and_plain_messages(document_type, number, code):
    with pytest.raises(InvalidIdentifier) as refused:
        parse_document(document_type, number)
    assert refused.value.code == code and number not in str(refused.value)


def test_masking_never_shows_the_whole_number():
    assert parse_document("resident_id", "410105198503121235").masked == "410105********1235"
    assert parse_document("passport", "E12345678").masked == "E1*****78"
    assert "E12345678" not in repr(parse_document("passport", "E12345678"))
