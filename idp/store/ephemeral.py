"""The ephemeral store: short-lived shared state (codes, SSO sessions, replay caches, counters).

One interface, two implementations (Redis; a table in the SQL database). Every key has a TTL.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import redis
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    Text,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

if TYPE_CHECKING:
    from redis.cluster import RedisCluster

from idp.store.models import EphemeralEntry


class EphemeralStore(Protocol):
    """Contract shared by both implementations. Keys are str, values are str; ttl in seconds (> 0)."""

    def set(self, key: str, value: str, ttl: int) -> None:
        """Store value under key, replacing any previous value, expiring after ttl seconds."""

    def get(self, key: str) -> str | None:
        """The value, or None if absent or expired."""

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """`get` of each key, in order, in one round trip where the backend allows it."""

    def take(self, key: str) -> str | None:
        """Atomically get and delete: of many concurrent callers exactly one gets the value."""

    def add(self, key: str, value: str, ttl: int) -> bool:
        """Set only if absent (or expired); True if this call stored it. Atomic."""

    def delete(self, *keys: str) -> None:
        """Remove the keys (and sets of those names); no error if absent. Not atomic across keys."""

    def touch(self, key: str, ttl: int) -> bool:
        """Reset the TTL of an existing key; False if it does not exist."""

    def incr(self, key: str, ttl: int) -> int:
        """Increment a counter and return the new value; the TTL starts when the counter is created."""

    def sadd(self, key: str, member: str, ttl: int) -> None:
        """Add member to a small set; the set's TTL is (re)set to ttl."""

    def smembers(self, key: str) -> builtins.set[str]:
        """Members of the set (empty if absent or expired)."""

    def purge_expired(self) -> int:
        """Remove expired entries where the backend does not do it itself; number removed."""


_SEP = "\x1f"  # SQL store: joins the members of a set


def _check_ttl(ttl: int) -> None:
    if ttl <= 0:
        raise ValueError(f"ttl must be > 0 seconds, got {ttl!r}: nothing is stored without a TTL")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# INCR, then give the key its TTL if it has none (it was just created): one atomic step.
_INCR_LUA = """
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


# SADD and EXPIRE as one command: atomic, one key (any Cluster slot), one round trip.
_SADD_LUA = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisEphemeralStore:
    """The ephemeral store on Redis; every key is prefixed. Works with or without decode_responses."""

    def __init__(self, client: redis.Redis | RedisCluster, prefix: str = "idp:") -> None:
        self._r = client
        self._prefix = prefix
        # redis-py's cluster client sends MGET and DEL (even of one key) as a pipeline per slot,
        # which bypasses the retries of `cluster_client` during a failover: on a cluster they are
        # plain one-key commands instead, routed and retried like GET.
        self._one_by_one = isinstance(client, redis.RedisCluster)
        self._incr = client.register_script(_INCR_LUA)
        self._sadd = client.register_script(_SADD_LUA)

    def _k(self, key: str) -> str:
        return self._prefix + key

    def set(self, key: str, value: str, ttl: int) -> None:
        _check_ttl(ttl)
        self._r.set(self._k(key), value, ex=ttl)

    def get(self, key: str) -> str | None:
        value = self._r.get(self._k(key))
        return None if value is None else _text(value)

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if self._one_by_one or not keys:
            return [self.get(key) for key in keys]
        values = self._r.mget([self._k(key) for key in keys])
        return [None if value is None else _text(value) for value in values]

    def take(self, key: str) -> str | None:
        value = self._r.getdel(self._k(key))
        return None if value is None else _text(value)

    def add(self, key: str, value: str, ttl: int) -> bool:
        _check_ttl(ttl)
        return bool(self._r.set(self._k(key), value, ex=ttl, nx=True))

    def delete(self, *keys: str) -> None:
        if self._one_by_one:
            for key in keys:
                self._r.execute_command("DEL", self._k(key))
        elif keys:
            self._r.delete(*(self._k(key) for key in keys))

    def touch(self, key: str, ttl: int) -> bool:
        _check_ttl(ttl)
        return bool(self._r.expire(self._k(key), ttl))

    def incr(self, key: str, ttl: int) -> int:
        _check_ttl(ttl)
        return int(self._incr(keys=[self._k(key)], args=[ttl]))

    def sadd(self, key: str, member: str, ttl: int) -> None:
        _check_ttl(ttl)
        self._sadd(keys=[self._k(key)], args=[member, ttl])

    def smembers(self, key: str) -> builtins.set[str]:
        return {_text(m) for m in self._r.smembers(self._k(key))}

    def purge_expired(self) -> int:
        return 0  # Redis expires keys itself


_T = EphemeralEntry.metadata.tables[EphemeralEntry.__tablename__]
# Per dialect: the INSERT with ON CONFLICT support, and the function giving a substring's position.
_DIALECTS: dict[str, tuple[Callable[..., Any], str]] = {
    "postgresql": (pg_insert, "strpos"),
    "sqlite": (sqlite_insert, "instr"),
}


class SqlEphemeralStore:
    """The ephemeral store on the `ephemeral` table (SQLite or PostgreSQL), one short transaction per call.

    `expires_at` is epoch milliseconds; expired rows are invisible at once and removed by `purge_expired`.
    Like in Redis a key holds a string or a set: a set is one row whose value is its members joined by
    "\\x1f" (so a member may not contain it), changed by single atomic upserts.
    """

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        if engine.dialect.name not in _DIALECTS:
            raise ValueError(f"SqlEphemeralStore supports SQLite and PostgreSQL, not {engine.dialect.name}")
        self._engine = engine
        self._clock = clock
        self._insert, self._position = _DIALECTS[engine.dialect.name]

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def _expiry(self, ttl: int) -> int:
        _check_ttl(ttl)
        return self._now() + ttl * 1000

    def _live(self, key: str) -> ColumnElement[bool]:
        return and_(_T.c.key == key, _T.c.expires_at > self._now())

    def _upsert(self, key: str, value: str, expires: int, **on_conflict: Any) -> Any:
        stmt = self._insert(_T).values(key=key, value=value, expires_at=expires)
        return stmt.on_conflict_do_update(index_elements=[_T.c.key], **on_conflict)

    def set(self, key: str, value: str, ttl: int) -> None:
        expires = self._expiry(ttl)
        with self._engine.begin() as conn:
            conn.execute(self._upsert(key, value, expires, set_={"value": value, "expires_at": expires}))

    def get(self, key: str) -> str | None:
        with self._engine.connect() as conn:
            return conn.execute(select(_T.c.value).where(self._live(key))).scalar_one_or_none()

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        live = and_(_T.c.key.in_(set(keys)), _T.c.expires_at > self._now())
        with self._engine.connect() as conn:
            found = {key: value for key, value in conn.execute(select(_T.c.key, _T.c.value).where(live))}
        return [found.get(key) for key in keys]

    def take(self, key: str) -> str | None:
        with self._engine.begin() as conn:
            return conn.execute(delete(_T).where(self._live(key)).returning(_T.c.value)).scalar_one_or_none()

    def add(self, key: str, value: str, ttl: int) -> bool:
        now, expires = self._now(), self._expiry(ttl)
        stmt = self._upsert(
            key, value, expires, set_={"value": value, "expires_at": expires}, where=_T.c.expires_at <= now
        )  # only an expired row may be replaced
        with self._engine.begin() as conn:
            return conn.execute(stmt.returning(_T.c.key)).first() is not None

    def delete(self, *keys: str) -> None:
        if not keys:
            return
        with self._engine.begin() as conn:
            conn.execute(delete(_T).where(_T.c.key.in_(set(keys))))

    def touch(self, key: str, ttl: int) -> bool:
        expires = self._expiry(ttl)
        with self._engine.begin() as conn:
            return conn.execute(update(_T).where(self._live(key)).values(expires_at=expires)).rowcount > 0

    def incr(self, key: str, ttl: int) -> int:
        now, expires = self._now(), self._expiry(ttl)
        live = _T.c.expires_at > now  # an expired counter starts again at 1 with a fresh TTL
        stmt = self._upsert(
            key,
            "1",
            expires,
            set_={
                "value": case((live, cast(cast(_T.c.value, BigInteger) + 1, Text)), else_="1"),
                "expires_at": case((live, _T.c.expires_at), else_=expires),
            },
        )
        with self._engine.begin() as conn:
            return int(conn.execute(stmt.returning(_T.c.value)).scalar_one())

    def sadd(self, key: str, member: str, ttl: int) -> None:
        if _SEP in member:
            raise ValueError("set members may not contain \\x1f")
        now, expires = self._now(), self._expiry(ttl)
        sep, m = literal(_SEP), literal(member)
        present = getattr(func, self._position)(sep + _T.c.value + sep, sep + m + sep) > 0
        value = case((_T.c.expires_at <= now, m), (present, _T.c.value), else_=_T.c.value + sep + m)
        with self._engine.begin() as conn:
            conn.execute(self._upsert(key, member, expires, set_={"value": value, "expires_at": expires}))

    def smembers(self, key: str) -> builtins.set[str]:
        value = self.get(key)
        return builtins.set() if value is None else builtins.set(value.split(_SEP))

    def purge_expired(self) -> int:
        with self._engine.begin() as conn:
            return conn.execute(delete(_T).where(_T.c.expires_at <= self._now())).rowcount


def build_ephemeral_store(
    engine: Engine,
    redis_url: str | None,
    prefix: str = "idp:",
    *,
    sentinels: str | None = None,
    sentinel_master: str = "idp",
    cluster_nodes: str | None = None,
) -> EphemeralStore:
    """Redis when a URL, Sentinels or Cluster nodes are configured, else the SQL table in the
    durable database."""
    if cluster_nodes:
        return RedisEphemeralStore(cluster_client(cluster_nodes, redis_url), prefix)
    if sentinels:
        return RedisEphemeralStore(sentinel_client(sentinels, sentinel_master, redis_url), prefix)
    if redis_url:
        client = redis.Redis.from_url(
            redis_url, socket_timeout=5, socket_connect_timeout=5, health_check_interval=30
        )
        return RedisEphemeralStore(client, prefix)
    return SqlEphemeralStore(engine)


# While Sentinel fails over (the master's down-after-milliseconds, then the election), commands to
# the old master fail. Each retry reconnects, which asks the Sentinels for the master again; the
# backoff (100 ms doubling, at most 1 s, 10 retries) spans ~7.5 s, longer than a failover with the
# Sentinel settings README "Beyond one machine" suggests (down-after-milliseconds of 2-5 s).
SENTINEL_RETRIES = 10


def sentinel_client(sentinels: str, master: str, redis_url: str | None = None) -> redis.Redis:
    """A client of the master that the Sentinels (`host:port,host:port`) name for `master`; after a
    failover it follows the new master. `redis_url`, if given, supplies the database number, user and
    password of the master (its host and port are ignored)."""
    from redis.backoff import ExponentialBackoff
    from redis.connection import parse_url
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ReadOnlyError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.retry import Retry
    from redis.sentinel import Sentinel

    addresses = _addresses(sentinels, "IDP_REDIS_SENTINELS")
    options = (
        {k: v for k, v in parse_url(redis_url).items() if k in {"db", "username", "password"}}
        if redis_url
        else {}
    )
    timeouts = {"socket_timeout": 2, "socket_connect_timeout": 2}
    sentinel = Sentinel(addresses, sentinel_kwargs=timeouts, **timeouts)
    return sentinel.master_for(  # type: ignore[no-any-return]
        master,
        health_check_interval=30,
        # a demoted master answers writes with READONLY until the connection is dropped
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), SENTINEL_RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ReadOnlyError],
        **timeouts,
        **options,
    )


def cluster_client(nodes: str, redis_url: str | None = None) -> RedisCluster:
    """A Redis Cluster client, started from some of its nodes (`host:port,host:port`); it learns the
    slot map from them and follows it when slots move or a replica is promoted. Every command of the
    store names one key (a one-key script at most), so keys may live in any slot.
    `redis_url`, if given, supplies the user and password (its host, port and db are ignored: a
    cluster has database 0 only)."""
    from redis.backoff import ExponentialBackoff
    from redis.cluster import ClusterNode, RedisCluster
    from redis.connection import parse_url
    from redis.exceptions import ClusterDownError, TryAgainError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    class PatientCluster(RedisCluster):
        """redis-py retries a failed cluster command at once, so every retry falls inside the seconds
        a failed primary's replica takes to be promoted (cluster-node-timeout, then the election).
        This one waits between attempts, with the Sentinel client's backoff (up to ~7.5 s)."""

        def execute_command(self, *args: Any, **kwargs: Any) -> Any:
            backoff = ExponentialBackoff(cap=1.0, base=0.05)
            for attempt in range(SENTINEL_RETRIES):
                try:
                    return super().execute_command(*args, **kwargs)
                except (RedisConnectionError, RedisTimeoutError, ClusterDownError, TryAgainError):
                    time.sleep(backoff.compute(attempt + 1))
            return super().execute_command(*args, **kwargs)

    startup = [ClusterNode(host, port) for host, port in _addresses(nodes, "IDP_REDIS_CLUSTER_NODES")]
    options = (
        {k: v for k, v in parse_url(redis_url).items() if k in {"username", "password"}} if redis_url else {}
    )
    return PatientCluster(startup_nodes=startup, socket_timeout=2, socket_connect_timeout=2, **options)


def _addresses(items: str, setting: str) -> list[tuple[str, int]]:
    addresses = [_host_port(item, setting) for item in items.split(",") if item.strip()]
    if not addresses:
        raise ValueError(f"{setting}: give host:port[,host:port...]")
    return addresses


def _host_port(item: str, setting: str = "IDP_REDIS_SENTINELS") -> tuple[str, int]:
    host, sep, port = item.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{setting}: {item.strip()!r} is not host:port")
    return host.strip("[]"), int(port)
