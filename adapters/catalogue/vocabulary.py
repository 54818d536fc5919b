"""The catalogue's codes and closed vocabularies: item codes, region codes, kinds of item, with Chinese labels."""

from __future__ import annotations

import re

NATIONAL_CODE_LENGTH = 20
_NATIONAL_CODE = re.compile(r"[0-9A-Z]{20}")
_REGION_CODE = re.compile(r"[0-9]{6}")

# GB/T 2260 provincial-level prefixes (the first two digits of every administrative division code).
PROVINCE_PREFIXES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)

ADMINISTRATIVE_POWER = "administrative_power"
PUBLIC_SERVICE = "public_service"
KIND_LABELS = {ADMINISTRATIVE_POWER: "行政权力事项", PUBLIC_SERVICE: "公共服务事项"}

# The ten categories of administrative power of the State Council's power lists.
SUBTYPE_LABELS = {
    "licensing": "行政许可",
    "penalty": "行政处罚",
    "enforcement": "行政强制",
    "levy": "行政征收",
    "payment": "行政给付",
    "inspection": "行政检查",
    "confirmation": "行政确认",
    "reward": "行政奖励",
    "adjudication": "行政裁决",
    "other": "其他行政权力",
}

ACTIVE = "active"
WITHDRAWN = "withdrawn"
STATUS_LABELS = {ACTIVE: "在用", WITHDRAWN: "已取消"}

_LICENCE_TYPE = re.compile(r"[a-z][a-z0-9_]{1,63}")


def is_national_code(value: str) -> bool:
    """The national item code (事项编码), the same in every region ("same item, same standard, same code").

    Format: exactly 20 characters, each a digit 0-9 or an upper-case Latin letter A-Z (no lower case, no
    spaces or separators), and not all zeros. The code is assigned once by the national catalogue's
    keeper; by convention it reads as a 2-character category code, a 6-character code of the
    responsible State Council department and a 12-character sequence of item and sub-item, e.g.
    ``11000000000000000000``. Only the length and alphabet are enforced: the structure carries no
    check character, and a region never makes up or alters a code, it implements the national one.
    """
    return bool(_NATIONAL_CODE.fullmatch(value)) and value != "0" * NATIONAL_CODE_LENGTH


def is_region_code(value: str) -> bool:
    """A 6-digit administrative division code (行政区划代码, GB/T 2260) of a province, city or county:
    six digits whose first two are a provincial-level prefix, e.g. ``110105`` (北京市朝阳区)."""
    return bool(_REGION_CODE.fullmatch(value)) and value[:2] in PROVINCE_PREFIXES


def is_licence_type(value: str) -> bool:
    """The e-certificate type a material is fetched as (e.g. ``business_licence``): lower-case snake case."""
    return bool(_LICENCE_TYPE.fullmatch(value))
