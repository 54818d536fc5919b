"""Contract tests of the ephemeral store, run against the SQL table and (postgres backend) Redis,
directly, through a Redis Sentinel and on a Redis Cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
import redis
from cluster_topology import Cluster, redis_cli, start_cluster
from sentinel_topology import MASTER_NAME, Topology, need_redis_processes, redis_server, start_topology
from sqlalchemy import Engine, delete, select

from idp.store.db import Base, build_engine
from idp.store.ephemeral import (
    EphemeralStore,
    RedisEphemeralStore,
    SqlEphemeralStore,
    build_ephemeral_store,
    cluster_client,
    sentinel_client,
)
from idp.store.models import EphemeralEntry

T = TypeVar("T")
THREADS = 20


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Harness:
    """The store under test plus two test-only views of its backend."""

    kind: str
    store: EphemeralStore
    advance: Callable[[float], None]  # let time pass: the fake clock (SQL) or a real sleep (Redis)
    remaining: Callable[[str], float | None]  # seconds left on a key's (or set's) TTL; None if absent


@pytest.fixture(scope="session")
def sql_engine(migrated_database_url: str) -> Iterator[Engine]:
    # the migrated database: creating tables here first would make a later migration fail
    engine = build_engine(migrated_database_url)
    Base.metadata.create_all(engine, tables=[Base.metadata.tables[EphemeralEntry.__tablename__]])
    yield engine
    engine.dispose()


def _sql_harness(engine: Engine) -> Harness:
    clock = FakeClock()

    def remaining(key: str) -> float | None:
        live = (EphemeralEntry.key == key) & (EphemeralEntry.expires_at > clock() * 1000)
        with engine.connect() as conn:
            expires = conn.execute(select(EphemeralEntry.expires_at).where(live)).scalar()
        return None if expires is None else expires / 1000 - clock()

    with engine.begin() as conn:
        conn.execute(delete(EphemeralEntry))
    return Harness("sql", SqlEphemeralStore(engine, clock=clock), clock.advance, remaining)


def _redis_harness(client: redis.Redis, prefix: str) -> Harness:
    def remaining(key: str) -> float | None:
        ms = client.pttl(prefix + key)
        return None if ms < 0 else ms / 1000

    return Harness("redis", RedisEphemeralStore(client, prefix), time.sleep, remaining)


@pytest.fixture(scope="session")
def sentinel_master(redis_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    """A master behind a Sentinel of its own (redis-server processes on free loopback ports)."""
    need_redis_processes(redis_url is not None, redis_server=redis_server())
    topology = start_topology(tmp_path_factory.mktemp("sentinel"))
    yield topology
    topology.stop()


@pytest.fixture(scope="session")
def redis_cluster(redis_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three primaries of a Redis Cluster of their own (redis-server processes on free loopback ports)."""
    need_redis_processes(redis_url is not None, redis_server=redis_server(), redis_cli=redis_cli())
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sql", "redis", "sentinel", "cluster"])
def h(request: pytest.FixtureRequest, redis_url: str | None, redis_prefix: str) -> Iterator[Harness]:
    if request.param == "sql":
        engine = request.getfixturevalue("sql_engine")
        yield _sql_harness(engine)
        with engine.begin() as conn:
            conn.execute(delete(EphemeralEntry))
        return
    if redis_url is None:
        pytest.skip("Redis runs only with IDP_TEST_BACKEND=postgres")
    if request.param == "sentinel":  # the same contract through IDP_REDIS_SENTINELS
        topology = request.getfixturevalue("sentinel_master")
        client = sentinel_client(topology.sentinels, MASTER_NAME)
    elif request.param == "cluster":  # the same contract through IDP_REDIS_CLUSTER_NODES
        client = cluster_client(request.getfixturevalue("redis_cluster").nodes)
    else:
        client = redis.Redis.from_url(redis_url)
    yield _redis_harness(client, redis_prefix)
    keys = list(client.scan_iter(match=redis_prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def store(h: Harness) -> EphemeralStore:
    return h.store


def race(fn: Callable[[], T], threads: int = THREADS) -> list[T]:
    """Run fn in `threads` threads released together; return every result."""
    barrier = threading.Barrier(threads)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait()
            result = fn()
            with lock:
                results.append(result)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    if errors:
        raise errors[0]
    assert len(results) == threads
    return results


# --- set / get ---------------------------------------------------------------------------------------


def test_set_get_and_overwrite(h: Harness) -> None:
    store = h.store
    assert store.get("a") is None
    store.set("a", "1", 60)
    assert store.get("a") == "1"
    store.set("a", "two", 120)  # replaces value and TTL
    assert store.get("a") == "two"
    remaining = h.remaining("a")
    assert remaining is not None and 60 < remaining <= 120


def test_get_many_answers_each_key_in_order(h: Harness) -> None:
    store = h.store
    store.set("m1", "one", 60)
    store.set("m2", "两", 60)
    store.set("short", "gone soon", 1)
    store.set("m3", "three", 60)
    assert store.get_many([]) == []
    assert store.get_many(["m3", "absent", "m1", "m2", "m1"]) == ["three", None, "one", "两", "one"]
    h.advance(1.1)
    assert store.get_many(["short", "m1"]) == [None, "one"]  # an expired key reads as absent


def test_values_round_trip_as_str(store: EphemeralStore) -> None:
    value = '{"sub": "Zhang Wei 张伟", "nonce": "ä\\u00df"}'
    store.set("json", value, 60)
    assert store.get("json") == value
    assert store.take("json") == value


def test_everything_expires(h: Harness) -> None:
    """The one real wait on Redis: every kind of entry is gone after its TTL."""
    store = h.store
    store.set("s", "v", 1)
    store.set("t", "v", 1)
    assert store.add("a", "first", 1)
    assert store.incr("n", 1) == 1
    store.sadd("set", "m", 1)
    store.set("long", "stays", 60)
    h.advance(1.1)
    assert store.get("s") is None
    assert store.take("t") is None
    assert store.smembers("set") == set()
    assert store.touch("s", 60) is False  # an expired key does not exist
    assert store.add("a", "second", 60)  # an expired key may be added again
    assert store.get("a") == "second"
    assert store.incr("n", 60) == 1  # an expired counter starts again
    assert store.get("long") == "stays"


# --- take ---------------------------------------------------------------------------------------------


def test_take_returns_value_once(store: EphemeralStore) -> None:
    store.set("code", "payload", 60)
    assert store.take("code") == "payload"
    assert store.take("code") is None
    assert store.get("code") is None
    assert store.take("never-set") is None


def test_take_under_concurrency_exactly_one_wins(store: EphemeralStore) -> None:
    for round_ in range(3):
        store.set("code", f"payload-{round_}", 60)
        results = race(lambda: store.take("code"))
        assert [r for r in results if r is not None] == [f"payload-{round_}"]


# --- add ----------------------------------------------------------------------------------------------


def test_add_only_if_absent(store: EphemeralStore) -> None:
    assert store.add("jti", "1", 60) is True
    assert store.add("jti", "2", 60) is False
    assert store.get("jti") == "1"
    store.set("plain", "x", 60)
    assert store.add("plain", "y", 60) is False
    store.delete("jti")
    assert store.add("jti", "3", 60) is True
    assert store.get("jti") == "3"


def test_add_under_concurrency_exactly_one_wins(store: EphemeralStore) -> None:
    counter = iter(range(THREADS))
    lock = threading.Lock()

    def attempt() -> tuple[bool, str]:
        with lock:
            mine = f"v{next(counter)}"
        return store.add("jti", mine, 60), mine

    results = race(attempt)
    winners = [value for ok, value in results if ok]
    assert len(winners) == 1
    assert store.get("jti") == winners[0]


# --- incr ---------------------------------------------------------------------------------------------


def test_incr_counts_from_one(store: EphemeralStore) -> None:
    assert [store.incr("rate", 60) for _ in range(5)] == [1, 2, 3, 4, 5]
    assert store.incr("other", 60) == 1


def test_incr_ttl_starts_at_creation_and_is_not_extended(h: Harness) -> None:
    h.store.incr("rate", 100)
    assert h.store.incr("rate", 10_000) == 2  # a later, longer ttl neither resets nor extends it
    remaining = h.remaining("rate")
    assert remaining is not None and 90 < remaining <= 100


def test_incr_under_concurrency_loses_no_increment(store: EphemeralStore) -> None:
    def ten() -> list[int]:
        return [store.incr("rate", 60) for _ in range(10)]

    seen = [n for batch in race(ten) for n in batch]
    assert sorted(seen) == list(range(1, THREADS * 10 + 1))  # every value handed out exactly once
    assert store.incr("rate", 60) == THREADS * 10 + 1


# --- sets ---------------------------------------------------------------------------------------------


def test_sadd_smembers(store: EphemeralStore) -> None:
    assert store.smembers("sid") == set()
    store.sadd("sid", "client-a", 60)
    store.sadd("sid", "client-b", 60)
    store.sadd("sid", "client-a", 60)
    store.sadd("sid-2", "client-c", 60)  # a set whose name extends another's stays separate
    store.sadd("si", "client-d", 60)
    assert store.smembers("sid") == {"client-a", "client-b"}
    assert store.smembers("sid-2") == {"client-c"}
    assert store.smembers("si") == {"client-d"}


def test_sadd_members_that_are_substrings_of_others(store: EphemeralStore) -> None:
    for member in ("ab", "a", "b", "ab", "", "a"):
        store.sadd("s", member, 60)
    assert store.smembers("s") == {"ab", "a", "b", ""}


def test_sadd_under_concurrency_keeps_every_member(store: EphemeralStore) -> None:
    store.sadd("sid", "first", 60)
    counter = iter(range(THREADS))
    lock = threading.Lock()

    def add_five() -> None:
        with lock:
            n = next(counter)
        for i in range(5):
            store.sadd("sid", f"client-{(n + i) % THREADS}", 60)  # overlapping members across threads

    race(add_five)
    assert store.smembers("sid") == {"first"} | {f"client-{i}" for i in range(THREADS)}


def test_members_with_odd_characters(store: EphemeralStore) -> None:
    members = {"https://rp.example/cb?x=1&y=%41", "a_b%c\\d", "名字", "*?[x]"}
    for member in members:
        store.sadd("odd", member, 60)
    assert store.smembers("odd") == members


def test_sadd_resets_ttl_of_whole_set(h: Harness) -> None:
    h.store.sadd("sid", "a", 10)
    h.store.sadd("sid", "b", 1000)
    remaining = h.remaining("sid")
    assert remaining is not None and remaining > 900
    h.store.sadd("sid", "c", 50)  # the TTL is set, not only extended
    remaining = h.remaining("sid")
    assert remaining is not None and 40 < remaining <= 50


def test_delete_removes_key_and_set(store: EphemeralStore) -> None:
    store.set("k", "v", 60)
    store.sadd("s", "a", 60)
    store.sadd("s", "b", 60)
    store.set("s2", "kept", 60)
    store.delete("k")
    store.delete("s")
    store.delete("absent")  # no error
    assert store.get("k") is None
    assert store.smembers("s") == set()
    assert store.get("s2") == "kept"


def test_delete_of_several_keys(store: EphemeralStore) -> None:
    for key in ("d1", "d2", "d3", "d4"):
        store.set(key, "v", 60)
    store.sadd("dset", "a", 60)
    store.delete("d1", "absent", "d3", "dset")
    store.delete()  # nothing named: nothing happens
    assert store.get_many(["d1", "d2", "d3", "d4"]) == [None, "v", None, "v"]
    assert store.smembers("dset") == set()


# --- touch, ttl validation, purge --------------------------------------------------------------------


def test_touch(h: Harness) -> None:
    store = h.store
    assert store.touch("absent", 60) is False
    store.set("k", "v", 10)
    assert store.touch("k", 500) is True
    remaining = h.remaining("k")
    assert remaining is not None and 400 < remaining <= 500
    assert store.get("k") == "v"
    store.sadd("s", "a", 10)
    assert store.touch("s", 500) is True
    remaining = h.remaining("s")
    assert remaining is not None and remaining > 400


@pytest.mark.parametrize("ttl", [0, -1])
def test_non_positive_ttl_refused_and_nothing_written(store: EphemeralStore, ttl: int) -> None:
    store.set("existing", "v", 60)
    writes: list[Callable[[], object]] = [
        lambda: store.set("k", "v", ttl),
        lambda: store.add("k", "v", ttl),
        lambda: store.incr("k", ttl),
        lambda: store.sadd("k", "m", ttl),
        lambda: store.touch("existing", ttl),
    ]
    for write in writes:
        with pytest.raises(ValueError):
            write()
    assert store.get("k") is None
    assert store.smembers("k") == set()
    assert store.get("existing") == "v"


def test_purge_expired(h: Harness) -> None:
    if h.kind == "redis":
        h.store.set("k", "v", 60)
        assert h.store.purge_expired() == 0  # Redis expires keys itself
        assert h.store.get("k") == "v"
        return
    store = h.store
    for key in ("a", "b", "c"):
        store.set(key, "v", 1)
    store.sadd("s", "m1", 1)
    store.sadd("s", "m2", 1)
    store.set("live", "v", 100)
    store.sadd("live-set", "m", 100)
    h.advance(2)
    assert store.purge_expired() == 4  # three keys and one set
    assert store.purge_expired() == 0
    assert store.get("live") == "v"
    assert store.smembers("live-set") == {"m"}


# --- SQL specifics (fake clock) ---------------------------------------------------------------------


@pytest.fixture
def sql(h: Harness) -> Harness:
    if h.kind != "sql":
        pytest.skip("SQL store only")
    return h


def test_sql_expiry_boundary_and_invisible_before_purge(sql: Harness) -> None:
    store = sql.store
    store.set("k", "v", 10)
    sql.advance(9.9)
    assert store.get("k") == "v"
    sql.advance(0.1)
    assert store.get("k") is None  # expired at exactly ttl, though the row is still there
    assert store.take("k") is None
    assert store.purge_expired() == 1


def test_sql_incr_window(sql: Harness) -> None:
    store = sql.store
    assert store.incr("rate", 10) == 1
    sql.advance(6)
    assert store.incr("rate", 10) == 2
    sql.advance(5)  # 11 s after creation: the first window is over although the last incr was 5 s ago
    assert store.incr("rate", 10) == 1


def test_sql_set_expires_as_whole_and_does_not_resurrect(sql: Harness) -> None:
    store = sql.store
    store.sadd("s", "a", 10)
    sql.advance(8)
    store.sadd("s", "b", 10)  # extends "a" too
    sql.advance(8)
    assert store.smembers("s") == {"a", "b"}
    sql.advance(3)
    assert store.smembers("s") == set()
    store.sadd("s", "c", 10)  # a new set: the expired members stay gone
    assert store.smembers("s") == {"c"}
    store.sadd("s", "a", 10)
    assert store.smembers("s") == {"a", "c"}


def test_sql_set_row_does_not_grow_on_re_adds(sql: Harness, sql_engine: Engine) -> None:
    for _ in range(50):
        sql.store.sadd("s", "client-a", 60)
        sql.store.sadd("s", "a", 60)
    with sql_engine.connect() as conn:
        value = conn.execute(select(EphemeralEntry.value).where(EphemeralEntry.key == "s")).scalar_one()
    assert sorted(value.split("\x1f")) == ["a", "client-a"]


def test_sql_rejects_separator_in_members(sql: Harness) -> None:
    with pytest.raises(ValueError):
        sql.store.sadd("s", "a\x1fb", 60)
    assert sql.store.smembers("s") == set()


# --- Redis specifics --------------------------------------------------------------------------------


def test_redis_prefix_and_decoded_client(redis_url: str | None, redis_prefix: str) -> None:
    if redis_url is None:
        pytest.skip("Redis runs only with IDP_TEST_BACKEND=postgres")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        store = RedisEphemeralStore(client, redis_prefix)
        store.set("k", "v", 60)
        store.sadd("s", "m", 60)
        assert client.get(redis_prefix + "k") == "v"  # every key is prefixed
        assert 0 < client.ttl(redis_prefix + "s") <= 60
        assert store.get("k") == "v"
        assert store.smembers("s") == {"m"}
        assert store.take("k") == "v"
        assert store.incr("n", 60) == 1
    finally:
        client.delete(*[redis_prefix + k for k in ("k", "s", "n")])
        client.close()


def test_redis_incr_restores_a_lost_ttl(redis_url: str | None, redis_prefix: str) -> None:
    if redis_url is None:
        pytest.skip("Redis runs only with IDP_TEST_BACKEND=postgres")
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(redis_prefix + "n", 5)  # a counter without TTL, e.g. written by hand
        assert RedisEphemeralStore(client, redis_prefix).incr("n", 60) == 6
        assert 0 < client.ttl(redis_prefix + "n") <= 60
    finally:
        client.delete(redis_prefix + "n")
        client.close()


def test_build_ephemeral_store(sql_engine: Engine, redis_url: str | None) -> None:
    assert isinstance(build_ephemeral_store(sql_engine, None), SqlEphemeralStore)
    if redis_url is not None:
        assert isinstance(build_ephemeral_store(sql_engine, redis_url), RedisEphemeralStore)


def test_build_ephemeral_store_on_a_cluster(sql_engine: Engine, redis_cluster: Cluster) -> None:
    """IDP_REDIS_CLUSTER_NODES: one store over every primary; its keys spread over their slots."""
    store = build_ephemeral_store(sql_engine, None, "spread:", cluster_nodes=redis_cluster.nodes)
    assert isinstance(store, RedisEphemeralStore)
    for n in range(60):
        store.set(f"k{n}", "v", 60)
        store.sadd(f"s{n}", "m", 60)  # a one-key script
        assert store.incr(f"c{n}", 60) == 1  # a one-key script
    assert all(count > 0 for count in redis_cluster.keys_per_node("spread:*"))
    assert [store.get(f"k{n}") for n in range(60)] == ["v"] * 60
    assert all(store.smembers(f"s{n}") == {"m"} for n in range(60))
