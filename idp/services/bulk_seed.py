"""Bulk seeding of synthetic persons and legal entities, for load and scale tests (`seed-bulk`).

Every record is valid and stored exactly as the normal paths store it: persons as `PersonService.upsert`
writes a provisioned, real-name verified person (identity number AES-GCM encrypted under the person's id,
HMAC blind index, masked form, `verified_by="operator"`); entities as provisioning writes a verified
entity and installs its legal representative (`granted_by="provision"`). So the normal login finds a
seeded person by username, mobile number or identity number, and the entity services see the entities.

* **Synthetic, deterministic.** Person `i` and entity `j` are functions of (`seed`, index) alone:
  username `seed-00000042`, a unique mobile number `199xxxxxxxx`, a unique resident identity number
  (real county-level division code, real past birth date, sequence, GB 11643 check character), a
  name; entity `j` has a unique USCC (registration authority 9, type 1, division code, organisation code
  with its GB 11714 check character, GB 32100 check character) and seeded person `j` as its legal
  representative. Uniqueness comes from bijections of the index (`(a·i + b) mod m`, `a` coprime to
  `m`), not from luck. Only timestamps and the AES-GCM nonces (random, as they must be) differ between
  runs.
* **One password hash.** argon2id costs about 24 ms per hash, hours for a million persons, so the
  password is hashed once (with the configured parameters) and that hash is stored for every seeded
  person. Logins verify it at the normal cost. This is load data, never real accounts.
* **Resumable, never duplicating.** `--persons N` and `--entities M` are the totals wanted. Seeded
  rows are found by their deterministic usernames and codes (a binary search over index lookups) and
  only the missing indexes are written: running the command twice changes nothing, and
  `--persons 1000000` after `--persons 10000` adds the other 990 000. Each batch is one transaction,
  so an interrupted run leaves whole batches and the next run goes on from there. A database seeded
  with another `--seed` is refused (its identity numbers would collide).
* **Fast.** PostgreSQL: COPY through psycopg 3 (`idp.store.bulk`); SQLite: executemany.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import math
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement, Connection, Engine, Table, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute

from idp.domain.entities import EntityStatus, Role, powers_for_role
from idp.domain.identifiers import compute_resident_id_check, compute_uscc_check, mask_resident_id
from idp.services.persons import MIN_PASSWORD_LENGTH, PersonService
from idp.store.bulk import insert_rows, uses_copy
from idp.store.models import AgentAuthorisationRow, LegalEntityRow, PersonRow

USERNAME_PREFIX = "seed-"
PHONE_PREFIX = "199"
EMAIL_DOMAIN = "example.com"  # RFC 2606: never delivered anywhere
MAX_PERSONS = 100_000_000  # the mobile numbers' space (8 free digits)
MAX_ENTITIES = 10_000_000
MAX_SEED = 2**63 - 1
DEFAULT_SEED = 11643
DEFAULT_BATCH = 10_000
MAX_BATCH = 100_000
GRANTED_BY = "provision"  # what provisioning records as the granter of a representative
VERIFIED_BY = "operator"  # what `PersonService.upsert` records for an identity number it is given

# Real county-level administrative division codes (GB/T 2260) and their cities.
DIVISIONS: tuple[tuple[str, str], ...] = (
    ("110101", "北京"), ("110102", "北京"), ("110105", "北京"), ("110106", "北京"), ("110108", "北京"),
    ("120101", "天津"), ("120104", "天津"), ("130102", "石家庄"), ("130104", "石家庄"), ("140105", "太原"),
    ("150102", "呼和浩特"), ("210102", "沈阳"), ("210202", "大连"), ("220102", "长春"), ("230102", "哈尔滨"),
    ("310101", "上海"), ("310104", "上海"), ("310105", "上海"), ("310115", "上海"), ("320102", "南京"),
    ("320505", "苏州"), ("330102", "杭州"), ("330106", "杭州"), ("340102", "合肥"), ("350102", "福州"),
    ("350203", "厦门"), ("360102", "南昌"), ("370102", "济南"), ("370202", "青岛"), ("410102", "郑州"),
    ("410105", "郑州"), ("420102", "武汉"), ("420106", "武汉"), ("430102", "长沙"), ("430104", "长沙"),
    ("440103", "广州"), ("440106", "广州"), ("440303", "深圳"), ("440305", "深圳"), ("450102", "南宁"),
    ("460105", "海口"), ("500103", "重庆"), ("510104", "成都"), ("510107", "成都"), ("520102", "贵阳"),
    ("530102", "昆明"), ("540102", "拉萨"), ("610102", "西安"), ("610113", "西安"), ("620102", "兰州"),
    ("630102", "西宁"), ("640104", "银川"), ("650102", "乌鲁木齐"),
)  # fmt: skip
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红玲芬燕鹏辉建国文斌宇浩凯晨欣怡子涵梓轩雨"
TRADE_NAMES = ("华信", "恒通", "瑞丰", "鑫源", "泰和", "宏远", "中科", "东方", "新元", "博雅", "天成", "嘉禾")
INDUSTRIES = ("科技", "贸易", "建设", "物流", "餐饮", "咨询", "制造", "电子", "医药", "文化", "农业", "能源")

BIRTH_FROM = datetime.date(1940, 1, 1)
BIRTH_UNTIL = datetime.date(2005, 12, 31)  # adults, and long past
_BIRTH_DAYS = (BIRTH_UNTIL - BIRTH_FROM).days + 1
_ID_SPACE = len(DIVISIONS) * _BIRTH_DAYS * 1000  # division x birth date x 3-digit sequence
_PHONE_SPACE = 10**8
_ORG_SPACE = 10**8  # 8-digit body of the organisation code
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)  # GB 11714-1997


def _coprime(modulus: int, start: int) -> int:
    """The first multiplier >= start that is coprime to modulus: i -> (a*i + b) mod m is a bijection."""
    while math.gcd(start, modulus) != 1:
        start += 1
    return start


_ID_STEP = _coprime(_ID_SPACE, 2654435761)
_PHONE_STEP = _coprime(_PHONE_SPACE, 40503 * 977)
_ORG_STEP = _coprime(_ORG_SPACE, 7919 * 7927)


class BulkSeedError(ValueError):
    """Bulk seeding cannot be done as asked; the message says why in plain words."""


@dataclass(frozen=True)
class SyntheticPerson:
    index: int
    id: str
    username: str
    name: str
    email: str
    phone_number: str
    id_number: str


@dataclass(frozen=True)
class SyntheticEntity:
    index: int
    id: str
    uscc: str
    name: str
    representative_id: str  # seeded person `index`
    authorisation_id: str


@dataclass(frozen=True)
class SeedProgress:
    kind: str  # "persons" | "entities"
    done: int  # seeded rows of this kind in the database now
    total: int
    rows_per_second: float  # written by this run so far


@dataclass(frozen=True)
class SeedReport:
    persons_before: int
    persons_added: int
    entities_before: int
    entities_added: int
    person_seconds: float
    entity_seconds: float
    method: str  # "COPY" | "executemany"


def _digest(seed: int, index: int, kind: bytes, size: int = 16) -> bytes:
    return hashlib.blake2b(struct.pack("<QQ", seed, index), digest_size=size, person=kind).digest()


@functools.lru_cache(maxsize=64)
def _offset(seed: int, label: str, modulus: int) -> int:
    return (
        int.from_bytes(hashlib.blake2b(f"{seed}:{label}".encode(), digest_size=8).digest(), "big") % modulus
    )


def _uuid_hex(raw: bytes) -> str:
    """A version-4-shaped UUID (like `uuid.uuid4().hex`) from 16 bytes."""
    return uuid.UUID(bytes=raw, version=4).hex


def username_of(index: int) -> str:
    return f"{USERNAME_PREFIX}{index:08d}"


def person_id_of(seed: int, index: int) -> str:
    return _uuid_hex(_digest(seed, index, b"idp-seed-person"))


def synthetic_person(seed: int, index: int) -> SyntheticPerson:
    """Seeded person `index` (0-based) of `seed`: valid, and unique among the persons of that seed."""
    raw = _digest(seed, index, b"idp-seed-person")
    position = (_ID_STEP * index + _offset(seed, "id-number", _ID_SPACE)) % _ID_SPACE
    position, sequence = divmod(position, 1000)
    division, day = divmod(position, _BIRTH_DAYS)
    born = BIRTH_FROM + datetime.timedelta(days=day)
    first17 = f"{DIVISIONS[division][0]}{born:%Y%m%d}{sequence:03d}"
    phone = (_PHONE_STEP * index + _offset(seed, "phone", _PHONE_SPACE)) % _PHONE_SPACE
    given = GIVEN[raw[1] % len(GIVEN)] + (GIVEN[raw[2] % len(GIVEN)] if raw[3] & 1 else "")
    username = username_of(index)
    return SyntheticPerson(
        index=index,
        id=_uuid_hex(raw),
        username=username,
        name=SURNAMES[raw[0] % len(SURNAMES)] + given,
        email=f"{username}@{EMAIL_DOMAIN}",
        phone_number=f"{PHONE_PREFIX}{phone:08d}",
        id_number=first17 + compute_resident_id_check(first17),
    )


def organisation_code(body: str) -> str:
    """An organisation code (GB 11714-1997): 8 digits and their check character."""
    check = 11 - sum(int(c) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True)) % 11
    return body + ("X" if check == 10 else "0" if check == 11 else str(check))


def uscc_of(seed: int, index: int) -> str:
    raw = _digest(seed, index, b"idp-seed-entity", 32)
    body = (_ORG_STEP * index + _offset(seed, "organisation", _ORG_SPACE)) % _ORG_SPACE
    first17 = "91" + DIVISIONS[raw[0] % len(DIVISIONS)][0] + organisation_code(f"{body:08d}")
    return first17 + compute_uscc_check(first17)


def synthetic_entity(seed: int, index: int) -> SyntheticEntity:
    """Seeded legal entity `index`: a verified enterprise represented by seeded person `index`."""
    raw = _digest(seed, index, b"idp-seed-entity", 32)
    city = DIVISIONS[raw[0] % len(DIVISIONS)][1]
    trade = TRADE_NAMES[raw[1] % len(TRADE_NAMES)]
    industry = INDUSTRIES[raw[2] % len(INDUSTRIES)]
    return SyntheticEntity(
        index=index,
        id=_uuid_hex(raw[:16]),
        uscc=uscc_of(seed, index),
        name=f"{city}{trade}{industry}有限公司（压测{index:07d}）",
        representative_id=person_id_of(seed, index),
        authorisation_id=_uuid_hex(raw[16:]),
    )


PERSON_COLUMNS = (
    "id", "username", "password_hash", "name", "email", "email_verified", "phone_number",
    "id_number_enc", "id_number_index", "id_number_masked", "document_type", "verified_at", "verified_by",
    "self_registered", "disabled", "created_at", "updated_at",
)  # fmt: skip
ENTITY_COLUMNS = ("id", "uscc", "name", "entity_type", "status", "verified_at", "created_at", "updated_at")
AUTHORISATION_COLUMNS = (
    "id", "entity_id", "person_id", "role", "powers", "valid_from", "valid_until", "granted_by",
    "revoked_at", "created_at",
)  # fmt: skip
_REPRESENTATIVE_POWERS = " ".join(powers_for_role(Role.LEGAL_REPRESENTATIVE))
PERSONS = cast(Table, PersonRow.__table__)
ENTITIES = cast(Table, LegalEntityRow.__table__)
AUTHORISATIONS = cast(Table, AgentAuthorisationRow.__table__)
COLUMNS: dict[str, tuple[str, ...]] = {
    PERSONS.name: PERSON_COLUMNS,
    ENTITIES.name: ENTITY_COLUMNS,
    AUTHORISATIONS.name: AUTHORISATION_COLUMNS,
}
Rows = list[tuple[object, ...]]


def check_request(persons: int, entities: int, batch: int, seed: int) -> None:
    """Refuse impossible requests before anything is hashed or written."""
    if not 0 <= persons <= MAX_PERSONS:
        raise BulkSeedError(f"--persons must be a whole number from 0 to {MAX_PERSONS:,}, not {persons:,}")
    if not 0 <= entities <= MAX_ENTITIES:
        raise BulkSeedError(f"--entities must be a whole number from 0 to {MAX_ENTITIES:,}, not {entities:,}")
    if entities > persons:
        raise BulkSeedError(
            f"--entities ({entities:,}) cannot exceed --persons ({persons:,}): the legal representative "
            "of seeded entity j is seeded person j"
        )
    if not 1 <= batch <= MAX_BATCH:
        raise BulkSeedError(f"--batch must be from 1 to {MAX_BATCH:,} rows, not {batch:,}")
    if not 0 <= seed <= MAX_SEED:
        raise BulkSeedError(f"--seed must be from 0 to 2**63-1, not {seed}")


class BulkSeeder:
    """Writes synthetic persons and entities in batches, one transaction per batch."""

    def __init__(
        self, engine: Engine, persons: PersonService, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self._persons = persons
        self._clock = clock

    def existing(self, seed: int, persons: int, entities: int) -> tuple[int, int]:
        """How many of the first `persons`/`entities` seeded records exist already (a prefix: batches
        are written in order, each in one transaction). BulkSeedError if the database holds a seeded
        population of another seed."""
        with self._engine.connect() as conn:
            have_persons = _seeded_prefix(
                persons, lambda i: _exists(conn, PersonRow.id, PersonRow.username == username_of(i))
            )
            have_entities = _seeded_prefix(
                entities, lambda j: _exists(conn, LegalEntityRow.id, LegalEntityRow.uscc == uscc_of(seed, j))
            )
            first = conn.scalar(select(PersonRow.id).where(PersonRow.username == username_of(0)))
            if first is not None and first != person_id_of(seed, 0):
                raise BulkSeedError(
                    f"this database already holds persons seeded with another --seed (the first is "
                    f"{username_of(0)}); seed with that value, or use another database"
                )
        return have_persons, have_entities

    def seed(
        self,
        *,
        persons: int,
        entities: int,
        password: str,
        seed: int = DEFAULT_SEED,
        batch: int = DEFAULT_BATCH,
        progress: Callable[[SeedProgress], None] = lambda _p: None,
    ) -> SeedReport:
        """Bring the seeded population up to `persons` persons and `entities` entities."""
        check_request(persons, entities, batch, seed)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise BulkSeedError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
        persons_before, entities_before = self.existing(seed, persons, entities)
        with self._engine.connect() as conn:
            method = "COPY" if uses_copy(conn) else "executemany"
        now = int(self._clock())
        started = time.monotonic()
        if persons_before < persons:
            password_hash = self._persons.hash_password(password)  # once: see the module docstring
            self._write(
                "persons",
                persons_before,
                persons,
                batch,
                progress,
                lambda lo, hi: {PERSONS: self._person_rows(seed, lo, hi, password_hash, now)},
            )
        person_seconds = time.monotonic() - started
        started = time.monotonic()
        if entities_before < entities:
            self._write(
                "entities",
                entities_before,
                entities,
                batch,
                progress,
                lambda lo, hi: _entity_rows(seed, lo, hi, now),
            )
        entity_seconds = time.monotonic() - started
        if persons_before < persons or entities_before < entities:
            self._analyze()
        return SeedReport(
            persons_before=persons_before,
            persons_added=max(0, persons - persons_before),
            entities_before=entities_before,
            entities_added=max(0, entities - entities_before),
            person_seconds=person_seconds,
            entity_seconds=entity_seconds,
            method=method,
        )

    def _write(
        self,
        kind: str,
        start: int,
        total: int,
        batch: int,
        progress: Callable[[SeedProgress], None],
        rows_for: Callable[[int, int], dict[Table, Rows]],
    ) -> None:
        began = time.monotonic()
        for lo in range(start, total, batch):
            hi = min(total, lo + batch)
            try:
                with self._engine.begin() as conn:
                    for table, rows in rows_for(lo, hi).items():
                        insert_rows(conn, table, COLUMNS[table.name], rows)
            except IntegrityError as exc:
                raise BulkSeedError(
                    f"seeded {kind} {lo:,}..{hi - 1:,} collide with rows already in the database "
                    f"({_constraint(exc)}); nothing of this batch was written. Seed an empty database, "
                    "or one seeded before with the same --seed"
                ) from None
            elapsed = max(time.monotonic() - began, 1e-9)
            progress(SeedProgress(kind, hi, total, (hi - start) / elapsed))

    def _person_rows(self, seed: int, lo: int, hi: int, password_hash: str, now: int) -> Rows:
        seal = self._persons.seal_id_number
        rows: Rows = []
        for i in range(lo, hi):
            p = synthetic_person(seed, i)
            sealed = seal(p.id, p.id_number, masked=mask_resident_id(p.id_number))
            rows.append(
                (
                    p.id, p.username, password_hash, p.name, p.email, False, p.phone_number,
                    sealed.encrypted, sealed.index, sealed.masked, "resident_id", now, VERIFIED_BY,
                    False, False, now, now,
                )
            )  # fmt: skip
        return rows

    def _analyze(self) -> None:
        """Fresh planner statistics after a bulk load (PostgreSQL; VACUUM is left to autovacuum)."""
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("ANALYZE persons, legal_entities, agent_authorisations"))
            else:
                conn.execute(text("ANALYZE"))


def _entity_rows(seed: int, lo: int, hi: int, now: int) -> dict[Table, Rows]:
    entities: Rows = []
    authorisations: Rows = []
    for j in range(lo, hi):
        e = synthetic_entity(seed, j)
        entities.append((e.id, e.uscc, e.name, "enterprise", EntityStatus.VERIFIED.value, now, now, now))
        authorisations.append(
            (
                e.authorisation_id, e.id, e.representative_id, Role.LEGAL_REPRESENTATIVE.value,
                _REPRESENTATIVE_POWERS, now, None, GRANTED_BY, None, now,
            )
        )  # fmt: skip
    return {ENTITIES: entities, AUTHORISATIONS: authorisations}


def _exists(conn: Connection, column: InstrumentedAttribute[str], condition: ColumnElement[bool]) -> bool:
    return conn.scalar(select(column).where(condition).limit(1)) is not None


def _seeded_prefix(total: int, exists: Callable[[int], bool]) -> int:
    """The number n <= total of records 0..n-1 present, given that the present ones form a prefix."""
    if total == 0 or not exists(0):
        return 0
    if exists(total - 1):
        return total
    lo, hi = 0, total - 1  # exists(lo), not exists(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if exists(mid) else (lo, mid)
    return hi


def _constraint(exc: IntegrityError) -> str:
    diag = getattr(exc.orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return f"constraint {name}" if name else str(exc.orig).splitlines()[0][:200]
