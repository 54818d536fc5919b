"""Server-side login sessions of a relying party, so that a back-channel logout can end them.

The browser's cookie holds only an opaque local session id; the session itself (claims, tokens, sid)
lives in a `SessionStore`, indexed by the provider's `sid` and by `sub`. The same store remembers
logout-token `jti`s for replay detection. Everything is written with a TTL.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class SessionStore(Protocol):
    """The storage contract: five methods, all payloads plain JSON-serialisable dicts."""

    def save(self, session_id: str, data: dict[str, Any], ttl: int) -> None:
        """Store (or replace) a session; `data["sid"]` and `data["sub"]` index it for logout."""

    def load(self, session_id: str) -> dict[str, Any] | None:
        """The session, or None once deleted, ended or expired."""

    def delete(self, session_id: str) -> None: ...

    def end_sessions(self, *, sid: str | None = None, sub: str | None = None) -> int:
        """Delete every session with this provider `sid` (or, without one, this `sub`); returns how many."""

    def remember_once(self, key: str, ttl: int) -> bool:
        """Set-if-absent with a TTL: True the first time `key` is seen, False on a replay."""


class MemorySessionStore:
    """One process only (development, tests, a single-worker platform)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[float, dict[str, Any]]] = {}
        self._seen: dict[str, float] = {}

    def save(self, session_id: str, data: dict[str, Any], ttl: int) -> None:
        with self._lock:
            self._sessions[session_id] = (self._clock() + ttl, json.loads(json.dumps(data)))

    def load(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._sessions.get(session_id)
            if entry is None or entry[0] <= self._clock():
                self._sessions.pop(session_id, None)
                return None
            return json.loads(json.dumps(entry[1]))  # a copy: callers never share state

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def end_sessions(self, *, sid: str | None = None, sub: str | None = None) -> int:
        field, value = ("sid", sid) if sid else ("sub", sub)
        if not value:
            return 0
        with self._lock:
            ended = [key for key, (_, data) in self._sessions.items() if data.get(field) == value]
            for key in ended:
                del self._sessions[key]
            return len(ended)

    def remember_once(self, key: str, ttl: int) -> bool:
        now = self._clock()
        with self._lock:
            self._seen = {k: until for k, until in self._seen.items() if until > now}
            if key in self._seen:
                return False
            self._seen[key] = now + ttl
            return True


class RedisSessionStore:
    """Shared by every worker and node of a platform: `<prefix>s:<id>` JSON, `<prefix>sid:<sid>` and
    `<prefix>sub:<sub>` sets of session ids, `<prefix>once:<key>`; every key expires."""

    def __init__(self, redis: Any, prefix: str = "rp:") -> None:
        self._redis = redis
        self._prefix = prefix

    def save(self, session_id: str, data: dict[str, Any], ttl: int) -> None:
        pipe = self._redis.pipeline()
        pipe.set(f"{self._prefix}s:{session_id}", json.dumps(data), ex=ttl)
        for index in self._index_keys(data):
            pipe.sadd(index, session_id)
            pipe.expire(index, ttl)  # sessions share one TTL: the index lives as long as the newest
        pipe.execute()

    def load(self, session_id: str) -> dict[str, Any] | None:
        raw = self._redis.get(f"{self._prefix}s:{session_id}")
        return json.loads(raw) if raw else None

    def delete(self, session_id: str) -> None:
        self._redis.delete(f"{self._prefix}s:{session_id}")

    def end_sessions(self, *, sid: str | None = None, sub: str | None = None) -> int:
        index = f"{self._prefix}sid:{sid}" if sid else f"{self._prefix}sub:{sub}" if sub else None
        if index is None:
            return 0
        members = [m.decode() if isinstance(m, bytes) else m for m in self._redis.smembers(index)]
        keys = [f"{self._prefix}s:{m}" for m in members]
        ended = int(self._redis.delete(*keys)) if keys else 0
        self._redis.delete(index)
        return ended

    def remember_once(self, key: str, ttl: int) -> bool:
        return bool(self._redis.set(f"{self._prefix}once:{key}", "1", nx=True, ex=ttl))

    def _index_keys(self, data: dict[str, Any]) -> list[str]:
        keys = [f"{self._prefix}sid:{data['sid']}"] if data.get("sid") else []
        if data.get("sub"):
            keys.append(f"{self._prefix}sub:{data['sub']}")
        return keys
