"""Reading what a client sends: JSON bodies and query strings become checked, frozen drafts or InvalidInput."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from adapters.catalogue.vocabulary import (
    ACTIVE,
    ADMINISTRATIVE_POWER,
    KIND_LABELS,
    SUBTYPE_LABELS,
    WITHDRAWN,
    is_licence_type,
    is_national_code,
    is_region_code,
)

MAX_DAYS = 3650  # working days; no statutory limit comes near ten years
MAX_SEARCH_LIMIT = 100
MAX_OFFSET = 1_000_000
MAX_QUERY_LENGTH = 100
MAX_AMOUNT = Decimal("100000000")  # yuan


class InvalidInput(ValueError):
    """The request is refused as it stands; `field` names what to fix (a JSON pointer-like path)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class Material:
    """A required material (申请材料); `licence_type` set means it is an e-certificate the case service fetches."""

    name: str
    required: bool
    licence_type: str | None
    notes: str

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "required": self.required,
            "licence_type": self.licence_type,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Step:
    """One step of the process (办理流程)."""

    name: str
    description: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description}


@dataclass(frozen=True)
class Fee:
    """One charge (收费项目) in yuan, with its legal basis."""

    name: str
    amount_yuan: str
    basis: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "amount_yuan": self.amount_yuan, "basis": self.basis}


@dataclass(frozen=True)
class ItemDraft:
    """A service item as an admin describes it; no fees means free of charge."""

    code: str
    name: str
    kind: str
    subtype: str | None
    department: str
    acceptance_conditions: str
    materials: tuple[Material, ...]
    steps: tuple[Step, ...]
    statutory_limit_days: int
    committed_limit_days: int
    fees: tuple[Fee, ...]


@dataclass(frozen=True)
class ImplementationDraft:
    """A region's implementation (实施清单) of a national item: who handles it there, and how fast."""

    region_code: str
    department: str
    committed_limit_days: int
    notes: str


@dataclass(frozen=True)
class SearchQuery:
    text: str
    kind: str | None
    status: str | None  # None: every status
    offset: int
    limit: int


ITEM_FIELDS = {
    "code",
    "name",
    "kind",
    "subtype",
    "department",
    "acceptance_conditions",
    "materials",
    "steps",
    "statutory_limit_days",
    "committed_limit_days",
    "fees",
}


def parse_json_body(raw: bytes, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object: strict JSON (no NaN or Infinity), UTF-8, an object at the top."""
    if not raw.strip():
        if optional:
            return {}
        raise InvalidInput("", "the body must be a JSON object")
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidInput("", "the body is not valid UTF-8 JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput("", "the body must be a JSON object")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_item(body: dict[str, Any], *, path_code: str | None = None) -> ItemDraft:
    """A whole item (POST creates, PUT replaces). With `path_code`, a `code` in the body must repeat it."""
    refuse_unknown_fields(body, ITEM_FIELDS | ({"version"} if path_code else set()), "")
    if path_code is None:
        code = national_code(body.get("code"), "code")
    else:
        code = path_code
        if "code" in body and body["code"] != path_code:
            raise InvalidInput("code", "an item's code never changes; it must match the URL")
    kind = choice(body.get("kind"), "kind", KIND_LABELS)
    subtype = body.get("subtype")
    if kind == ADMINISTRATIVE_POWER:
        subtype = choice(subtype, "subtype", SUBTYPE_LABELS)
    elif subtype is not None:
        raise InvalidInput("subtype", f"only {ADMINISTRATIVE_POWER} items have a subtype")
    statutory = days(body.get("statutory_limit_days"), "statutory_limit_days")
    committed = days(body.get("committed_limit_days"), "committed_limit_days")
    if committed > statutory:
        raise InvalidInput(
            "committed_limit_days",
            f"the committed limit ({committed}) may not exceed the statutory limit ({statutory})",
        )
    return ItemDraft(
        code=code,
        name=text(body.get("name"), "name", 200),
        kind=kind,
        subtype=subtype,
        department=text(body.get("department"), "department", 200),
        acceptance_conditions=text(
            body.get("acceptance_conditions"), "acceptance_conditions", 5000, multiline=True
        ),
        materials=materials(body.get("materials")),
        steps=steps(body.get("steps")),
        statutory_limit_days=statutory,
        committed_limit_days=committed,
        fees=fees(body.get("fees")),
    )


def parse_implementation(body: dict[str, Any]) -> ImplementationDraft:
    """A region implements the item of the URL; the body cannot name (or rename) a code."""
    if "code" in body or "national_code" in body:
        raise InvalidInput(
            "code", "a region implements the national item of the URL and never redefines its code"
        )
    refuse_unknown_fields(body, {"region_code", "department", "committed_limit_days", "notes"}, "")
    region = body.get("region_code")
    if not isinstance(region, str) or not is_region_code(region):
        raise InvalidInput("region_code", "expected a 6-digit administrative division code such as 110105")
    return ImplementationDraft(
        region_code=region,
        department=text(body.get("department"), "department", 200),
        committed_limit_days=days(body.get("committed_limit_days"), "committed_limit_days"),
        notes=text(body.get("notes", ""), "notes", 2000, required=False, multiline=True),
    )


def parse_withdrawal(body: dict[str, Any]) -> str:
    refuse_unknown_fields(body, {"reason"}, "")
    return text(body.get("reason", ""), "reason", 500, required=False, multiline=True)


def parse_expected_version(body: dict[str, Any]) -> int | None:
    """PUT may carry the `version` it read: a lost update is refused instead of silently overwritten."""
    if "version" not in body:
        return None
    value = body["version"]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput("version", "expected a positive integer")
    return value


def parse_search(args: Any) -> SearchQuery:
    """`q`, `kind`, `status` (active by default; `all` for every status), `offset`, `limit` (at most 100)."""
    q = args.get("q", "")
    if len(q) > MAX_QUERY_LENGTH:
        raise InvalidInput("q", f"at most {MAX_QUERY_LENGTH} characters")
    if any(ord(ch) < 32 for ch in q):
        raise InvalidInput("q", "control characters are not allowed")
    kind = args.get("kind") or None
    if kind is not None and kind not in KIND_LABELS:
        raise InvalidInput("kind", f"expected one of {', '.join(KIND_LABELS)}")
    status = args.get("status") or ACTIVE
    if status not in (ACTIVE, WITHDRAWN, "all"):
        raise InvalidInput("status", "expected active, withdrawn or all")
    return SearchQuery(
        text=q.strip(),
        kind=kind,
        status=None if status == "all" else status,
        offset=query_int(args.get("offset"), "offset", 0, 0, MAX_OFFSET),
        limit=query_int(args.get("limit"), "limit", 20, 1, MAX_SEARCH_LIMIT),
    )


# -- field readers -------------------------------------------------------------------------------------


def refuse_unknown_fields(body: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(where or unknown[0], f"unknown field(s): {', '.join(unknown)}")


def national_code(value: Any, field: str) -> str:
    if not isinstance(value, str) or not is_national_code(value):
        raise InvalidInput(field, "expected a national item code: 20 characters, digits and A-Z")
    return value


def text(value: Any, field: str, max_length: int, *, required: bool = True, multiline: bool = False) -> str:
    """A string, trimmed; no control characters (line breaks and tabs only where `multiline`)."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(field, "expected a string")
    value = value.strip()
    if required and not value:
        raise InvalidInput(field, "must not be empty")
    if len(value) > max_length:
        raise InvalidInput(field, f"at most {max_length} characters")
    allowed = "\n\t" if multiline else ""
    if any((ord(ch) < 32 and ch not in allowed) or ord(ch) == 127 for ch in value):
        raise InvalidInput(field, "control characters are not allowed")
    return value.replace("\r\n", "\n") if multiline else value


def choice(value: Any, field: str, allowed: dict[str, str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(field, f"expected one of {', '.join(allowed)}")
    return value


def days(value: Any, field: str) -> int:
    """A time limit in working days (工作日): 0 means handled on the spot (即办)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(field, "expected a whole number of working days")
    if not 0 <= value <= MAX_DAYS:
        raise InvalidInput(field, f"expected 0 to {MAX_DAYS} working days")
    return value


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, "expected true or false")
    return value


def entries(value: Any, field: str, max_entries: int) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise InvalidInput(field, "expected a list")
    if len(value) > max_entries:
        raise InvalidInput(field, f"at most {max_entries} entries")
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise InvalidInput(f"{field}[{index}]", "expected an object")
    return value


def materials(value: Any) -> tuple[Material, ...]:
    result: list[Material] = []
    for index, entry in enumerate(entries(value, "materials", 100)):
        where = f"materials[{index}]"
        refuse_unknown_fields(entry, {"name", "required", "licence_type", "notes"}, where)
        licence_type = entry.get("licence_type")
        if licence_type is not None and (
            not isinstance(licence_type, str) or not is_licence_type(licence_type)
        ):
            raise InvalidInput(
                f"{where}.licence_type", "expected an e-certificate type such as business_licence"
            )
        material = Material(
            name=text(entry.get("name"), f"{where}.name", 200),
            required=boolean(entry.get("required"), f"{where}.required"),
            licence_type=licence_type,
            notes=text(entry.get("notes", ""), f"{where}.notes", 1000, required=False, multiline=True),
        )
        if any(other.name == material.name for other in result):
            raise InvalidInput(f"{where}.name", f"the material {material.name!r} is listed twice")
        result.append(material)
    return tuple(result)


def steps(value: Any) -> tuple[Step, ...]:
    result = []
    for index, entry in enumerate(entries(value, "steps", 50)):
        where = f"steps[{index}]"
        refuse_unknown_fields(entry, {"name", "description"}, where)
        result.append(
            Step(
                name=text(entry.get("name"), f"{where}.name", 100),
                description=text(
                    entry.get("description", ""), f"{where}.description", 1000, required=False, multiline=True
                ),
            )
        )
    if not result:
        raise InvalidInput("steps", "an item has at least one process step")
    return tuple(result)


def fees(value: Any) -> tuple[Fee, ...]:
    """`"free"` (不收费), or a list of charges; an empty list is free too."""
    if value == "free":
        return ()
    result = []
    for index, entry in enumerate(entries(value, "fees", 20)):
        where = f"fees[{index}]"
        refuse_unknown_fields(entry, {"name", "amount_yuan", "basis"}, where)
        result.append(
            Fee(
                name=text(entry.get("name"), f"{where}.name", 200),
                amount_yuan=amount(entry.get("amount_yuan"), f"{where}.amount_yuan"),
                basis=text(entry.get("basis", ""), f"{where}.basis", 500, required=False, multiline=True),
            )
        )
    return tuple(result)


def amount(value: Any, field: str) -> str:
    """Yuan with at most two decimals, as a number or a decimal string; kept as a string ("50.00")."""
    if isinstance(value, bool) or not isinstance(value, int | float | str) or len(str(value)) > 20:
        raise InvalidInput(field, 'expected an amount in yuan such as 50 or "12.50"')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(field, 'expected an amount in yuan such as 50 or "12.50"') from None
    if not number.is_finite() or number < 0 or number > MAX_AMOUNT:
        raise InvalidInput(field, f"expected 0 to {MAX_AMOUNT} yuan")
    if number != number.quantize(Decimal("0.01")):
        raise InvalidInput(field, "at most two decimals (fen)")
    return str(number.quantize(Decimal("0.01")))


def query_int(value: str | None, field: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise InvalidInput(field, f"expected a whole number from {low} to {high}")
    number = int(value)
    if not low <= number <= high:
        raise InvalidInput(field, f"expected a whole number from {low} to {high}")
    return number
