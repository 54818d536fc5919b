"""Resident identity numbers, unified social credit codes, masking: real vectors and every refusal."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from idp.domain.errors import DomainError, InvalidIdentifier
from idp.domain.identifiers import (
    USCC_ALPHABET,
    ResidentIdNumber,
    UnifiedSocialCreditCode,
    compute_resident_id_check,
    compute_uscc_check,
    looks_like_resident_id,
    mask_phone,
    mask_resident_id,
    parse_resident_id,
    parse_uscc,
)

TODAY = datetime.date(2025, 6, 1)

# GB 11643-1999 worked example. By hand: digits 1 1 0 1 0 5 1 9 4 9 1 2 3 1 0 0 2 times weights
# 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 give 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167;
# 167 mod 11 = 2; "10X98765432"[2] = "X".
STANDARD_RESIDENT_ID = "11010519491231002X"

# Published example of a unified social credit code. By hand: values 9 1 3 5 0 1 0 0 M=21 0 0 0 1 0 0
# Y=30 4 times weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28 give
# 9+3+27+135+26+420+8+900+112 = 1640; 1640 mod 31 = 28; 31 - 28 = 3.
PUBLISHED_USCC = "91350100M000100Y43"


def refusal_code(exc_info: pytest.ExceptionInfo[InvalidIdentifier]) -> str:
    return exc_info.value.code


# --- errors -------------------------------------------------------------------------------------------


def test_domain_error_carries_code_and_message() -> None:
    err = InvalidIdentifier("An identity number must be 18 characters long.", code="wrong_length")
    assert isinstance(err, DomainError)
    assert isinstance(err, ValueError)
    assert err.code == "wrong_length"
    assert err.message == str(err) == "An identity number must be 18 characters long."


def test_domain_error_default_codes() -> None:
    assert DomainError("x").code == "domain_error"
    assert InvalidIdentifier("x").code == "invalid_identifier"


# --- resident identity number: check character ------------------------------------------------------


@pytest.mark.parametrize(
    ("first17", "expected"),
    [  # one vector for each weighted-sum remainder S = 0..10
        ("11010519491231001", "1"),
        ("11010519491231007", "0"),
        ("11010519491231002", "X"),
        ("11010519491231008", "9"),
        ("11010519491231003", "8"),
        ("11010519491231009", "7"),
        ("11010519491231004", "6"),
        ("11010519491231018", "5"),
        ("11010519491231005", "4"),
        ("11010519491231019", "3"),
        ("11010519491231006", "2"),
    ],
)
def test_compute_resident_id_check_covers_every_check_character(first17: str, expected: str) -> None:
    assert compute_resident_id_check(first17) == expected


@pytest.mark.parametrize(
    ("first17", "code"),
    [
        ("1101051949123100", "wrong_length"),
        ("110105194912310021", "wrong_length"),
        ("1101051949123100A", "non_digit"),
    ],
)
def test_compute_resident_id_check_refuses_bad_input(first17: str, code: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc_info:
        compute_resident_id_check(first17)
    assert refusal_code(exc_info) == code


# --- resident identity number: accepted --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "division", "born", "sex"),
    [
        (STANDARD_RESIDENT_ID, "110105", datetime.date(1949, 12, 31), "female"),
        ("410105198503121235", "410105", datetime.date(1985, 3, 12), "male"),
        ("440305199207182464", "440305", datetime.date(1992, 7, 18), "female"),
        ("310101197801013570", "310101", datetime.date(1978, 1, 1), "male"),
        ("110105200002290013", "110105", datetime.date(2000, 2, 29), "male"),  # 2000 is a leap year
        ("11010520240229002X", "110105", datetime.date(2024, 2, 29), "female"),
        ("11010519000101001X", "110105", datetime.date(1900, 1, 1), "male"),  # earliest allowed
        ("710100198001010016", "710100", datetime.date(1980, 1, 1), "male"),
        ("810000198001010030", "810000", datetime.date(1980, 1, 1), "male"),
        ("820000198001010024", "820000", datetime.date(1980, 1, 1), "female"),
        ("650100198001010052", "650100", datetime.date(1980, 1, 1), "male"),
    ],
)
def test_parse_resident_id_accepts_valid_numbers(
    text: str, division: str, born: datetime.date, sex: str
) -> None:
    rid = parse_resident_id(text, today=TODAY)
    assert rid.value == text
    assert rid.division_code == division
    assert rid.birth_date == born
    assert rid.sex == sex
    assert rid.sequence == text[14:17]


@pytest.mark.parametrize(
    "text",
    ["11010519491231002x", "  11010519491231002X  ", "\t11010519491231002x\n", "\u300011010519491231002x"],
)
def test_parse_resident_id_normalises_whitespace_and_lowercase_x(text: str) -> None:
    assert parse_resident_id(text, today=TODAY).value == STANDARD_RESIDENT_ID


def test_birth_date_equal_to_today_is_accepted() -> None:
    rid = parse_resident_id("440305202406150080", today=datetime.date(2024, 6, 15))
    assert rid.birth_date == datetime.date(2024, 6, 15)


def test_parse_resident_id_defaults_today_to_the_real_date() -> None:
    assert parse_resident_id(STANDARD_RESIDENT_ID).birth_date == datetime.date(1949, 12, 31)


# --- resident identity number: refused ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "wrong_length"),
        ("11010519491231002", "wrong_length"),  # 17
        ("11010519491231002X0", "wrong_length"),  # 19
        ("110105491231002", "wrong_length"),  # first-generation 15-digit number
        ("11010519491231A02X", "non_digit"),
        ("11010519491231002Y", "non_digit"),  # last character neither digit nor X
        ("X10105194912310021", "non_digit"),  # X only allowed last
        ("11010519491231002²", "non_digit"),  # "²".isdigit() is True in Python; must still be refused
        (
            "\uff11\uff11\uff10\uff11\uff10\uff15\uff11\uff19\uff14\uff19\uff11\uff12\uff13\uff11\uff10\uff10\uff12X",
            "non_digit",
        ),  # full-width digits
        ("110105194912310021", "bad_check_character"),  # standard example with check 1 instead of X
        ("110105198503121236", "bad_check_character"),
        ("99010519800101001X", "unknown_province"),  # check character correct, province 99 unknown
        ("100105198001010014", "unknown_province"),  # check character correct, province 10 unknown
        ("110105190002290017", "impossible_birth_date"),  # 1900 is not a leap year
        ("110105202302300016", "impossible_birth_date"),  # 30 February
        ("110105190013010017", "impossible_birth_date"),  # month 13
        ("110105190001000014", "impossible_birth_date"),  # day 00
        ("11010500000101001X", "impossible_birth_date"),  # year 0000
        ("110105189912310015", "birth_date_too_early"),
    ],
)
def test_parse_resident_id_refusals(text: str, code: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc_info:
        parse_resident_id(text, today=TODAY)
    assert refusal_code(exc_info) == code
    assert exc_info.value.message  # a plain-English message is always present


def test_refusal_vectors_fail_only_their_own_check() -> None:
    # Refusals past the check-character stage really carry a correct check character.
    for text in ["99010519800101001X", "110105190002290017", "110105202302300016", "110105189912310015"]:
        assert compute_resident_id_check(text[:17]) == text[17]


def test_future_birth_date_is_refused_against_given_today() -> None:
    text = "440305202406150080"  # born 2024-06-15
    with pytest.raises(InvalidIdentifier) as exc_info:
        parse_resident_id(text, today=datetime.date(2024, 6, 14))
    assert refusal_code(exc_info) == "future_birth_date"
    assert "future" in exc_info.value.message


def test_refusal_messages_are_distinct_and_never_echo_the_number() -> None:
    cases = {
        "wrong_length": "1101051949123100",
        "non_digit": "11010519491231A02X",
        "bad_check_character": "110105194912310021",
        "unknown_province": "99010519800101001X",
        "impossible_birth_date": "110105190002290017",
        "birth_date_too_early": "110105189912310015",
        "future_birth_date": "440305202406150080",
    }
    messages = set()
    for code, text in cases.items():
        with pytest.raises(InvalidIdentifier) as exc_info:
            parse_resident_id(text, today=datetime.date(2024, 1, 1))
        assert refusal_code(exc_info) == code
        assert text[:17] not in exc_info.value.message
        messages.add(exc_info.value.message)
    assert len(messages) == len(cases)


def test_bad_check_message_does_not_reveal_expected_character() -> None:
    with pytest.raises(InvalidIdentifier) as exc_info:
        parse_resident_id("110105194912310021", today=TODAY)
    assert exc_info.value.message.startswith("The check character of the identity number does not match")
    assert "X" not in exc_info.value.message


@pytest.mark.parametrize("valid", [STANDARD_RESIDENT_ID, "410105198503121235", "440305199207182464"])
def test_every_single_character_substitution_is_caught(valid: str) -> None:
    for position in range(18):
        for replacement in "0123456789X":
            if replacement == valid[position] or (replacement == "X" and position < 17):
                continue
            mutated = valid[:position] + replacement + valid[position + 1 :]
            with pytest.raises(InvalidIdentifier) as exc_info:
                parse_resident_id(mutated, today=TODAY)
            assert refusal_code(exc_info) == "bad_check_character", mutated


def test_resident_id_dataclass_is_frozen_validated_and_masked_in_repr() -> None:
    rid = parse_resident_id("410105198503121235", today=TODAY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rid.value = "440305199207182464"  # type: ignore[misc]
    assert repr(rid) == "ResidentIdNumber('410105********1235')"
    assert str(rid) == repr(rid)
    assert "198503" not in f"{rid}"
    assert rid.masked == "410105********1235"
    assert rid == ResidentIdNumber("410105198503121235")
    with pytest.raises(InvalidIdentifier) as exc_info:
        ResidentIdNumber("410105198503121236")
    assert refusal_code(exc_info) == "bad_check_character"
    with pytest.raises(InvalidIdentifier):  # direct construction does not normalise
        ResidentIdNumber("11010519491231002x")


# --- looks_like_resident_id --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (STANDARD_RESIDENT_ID, True),
        ("11010519491231002x", True),
        ("110105194912310021", True),  # shape only: bad check character still looks like one
        (" 410105198503121235 ", True),
        ("13812341234", False),  # phone
        ("zhangsan", False),  # username
        ("zhang.san@example.cn", False),
        ("1101051949123100XX", False),
        ("11010519491231002", False),
        ("11010519491231002X0", False),
        ("", False),
    ],
)
def test_looks_like_resident_id(text: str, expected: bool) -> None:
    assert looks_like_resident_id(text) is expected


# --- unified social credit code ----------------------------------------------------------------------


def test_uscc_weights_are_powers_of_three_mod_31() -> None:
    # Only position 1 set to value 1: sum = weight 1 = 1, check = 31 - 1 = 30 -> "Y".
    assert compute_uscc_check("10000000000000000") == "Y"
    # Only position 17 set to 1: weight 28, check = 31 - 28 = 3.
    assert compute_uscc_check("00000000000000001") == "3"
    # All zeros: sum 0, 31 - 0 = 31 becomes 0.
    assert compute_uscc_check("00000000000000000") == "0"


@pytest.mark.parametrize(
    ("first17", "expected"),
    [
        ("91350100M000100Y4", "3"),
        ("91350100M00010022", "0"),
        ("91350100M00010006", "A"),
        ("91350100M00010001", "T"),
        ("91350100M00010012", "Y"),
        ("91110108MA01C2D3E", "G"),
        ("12440300455758122", "T"),
    ],
)
def test_compute_uscc_check(first17: str, expected: str) -> None:
    assert compute_uscc_check(first17) == expected


@pytest.mark.parametrize(
    ("text", "authority", "entity_type", "division", "organisation"),
    [
        (PUBLISHED_USCC, "9", "1", "350100", "M000100Y4"),
        ("91110108MA01C2D3EG", "9", "1", "110108", "MA01C2D3E"),
        ("12440300455758122T", "1", "2", "440300", "455758122"),
        ("91350100M000100220", "9", "1", "350100", "M00010022"),  # check value 31 -> 0
    ],
)
def test_parse_uscc_accepts_valid_codes(
    text: str, authority: str, entity_type: str, division: str, organisation: str
) -> None:
    code = parse_uscc(text)
    assert code.value == text
    assert str(code) == text
    assert code.registration_authority == authority
    assert code.entity_type == entity_type
    assert code.division_code == division
    assert code.organisation_code == organisation


@pytest.mark.parametrize("text", ["91350100m000100y43", "  91350100M000100Y43\n", "91350100m000100Y43"])
def test_parse_uscc_normalises_case_and_whitespace(text: str) -> None:
    assert parse_uscc(text).value == PUBLISHED_USCC


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "wrong_length"),
        ("91350100M000100Y4", "wrong_length"),
        ("91350100M000100Y430", "wrong_length"),
        ("91350100I000100Y43", "bad_character"),
        ("91350100O000100Y43", "bad_character"),
        ("91350100Z000100Y43", "bad_character"),
        ("91350100S000100Y43", "bad_character"),
        ("91350100V000100Y43", "bad_character"),
        ("91350100M000100-43", "bad_character"),
        ("91350100M000100\u00dd43", "bad_character"),  # non-ASCII letter
        ("9135A100M000100Y4Y", "bad_division_code"),  # check character correct, division has a letter
        ("91350100M000100Y44", "bad_check_character"),
        ("91350100M000100Y34", "bad_check_character"),  # adjacent transposition
    ],
)
def test_parse_uscc_refusals(text: str, code: str) -> None:
    with pytest.raises(InvalidIdentifier) as exc_info:
        parse_uscc(text)
    assert refusal_code(exc_info) == code
    assert exc_info.value.message


def test_parse_uscc_does_not_upper_case_non_ascii_into_a_valid_code() -> None:
    assert parse_uscc("FF350100M000100Y4H").value == "FF350100M000100Y4H"
    # "\ufb00" (the "ff" ligature) upper-cases to "FF": it must not be turned into the valid code above.
    with pytest.raises(InvalidIdentifier):
        parse_uscc("\ufb00350100M000100Y4T")


def test_uscc_division_refusal_vector_has_correct_check() -> None:
    assert compute_uscc_check("9135A100M000100Y4") == "Y"


@pytest.mark.parametrize("valid", [PUBLISHED_USCC, "91110108MA01C2D3EG"])
def test_every_single_character_uscc_substitution_is_caught(valid: str) -> None:
    for position in range(18):
        for replacement in USCC_ALPHABET:
            if replacement == valid[position]:
                continue
            mutated = valid[:position] + replacement + valid[position + 1 :]
            with pytest.raises(InvalidIdentifier) as exc_info:
                parse_uscc(mutated)
            expected = "bad_division_code" if 2 <= position < 8 and not replacement.isdigit() else None
            assert refusal_code(exc_info) == (expected or "bad_check_character"), mutated


def test_compute_uscc_check_refuses_bad_input() -> None:
    with pytest.raises(InvalidIdentifier) as exc_info:
        compute_uscc_check("91350100M000100Y")
    assert refusal_code(exc_info) == "wrong_length"
    with pytest.raises(InvalidIdentifier) as exc_info:
        compute_uscc_check("91350100O000100Y4")
    assert refusal_code(exc_info) == "bad_character"


def test_uscc_dataclass_is_frozen_and_validated() -> None:
    code = parse_uscc(PUBLISHED_USCC)
    with pytest.raises(dataclasses.FrozenInstanceError):
        code.value = "x"  # type: ignore[misc]
    assert code == UnifiedSocialCreditCode(PUBLISHED_USCC)
    with pytest.raises(InvalidIdentifier):
        UnifiedSocialCreditCode("91350100m000100y43")  # direct construction does not normalise


# --- masking -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("410105198503121234", "410105********1234"),
        (STANDARD_RESIDENT_ID, "110105********002X"),
        (" 440305199207182464\n", "440305********2464"),
        ("123456789", "*********"),
        ("", ""),
        ("1234567890", "**********"),  # shorter than 18: never reveal most of it
        ("110105491231002", "***************"),
    ],
)
def test_mask_resident_id(value: str, masked: str) -> None:
    assert mask_resident_id(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812341234", "138****1234"),
        ("+8613812341234", "+86*******1234"),
        ("1381234", "*******"),
        ("", ""),
    ],
)
def test_mask_phone(value: str, masked: str) -> None:
    assert mask_phone(value) == masked
