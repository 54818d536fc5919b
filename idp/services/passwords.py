"""Password hashing with argon2id; a dummy verification keeps unknown users as slow as known ones."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = logging.getLogger(__name__)
T = TypeVar("T")

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # the largest glibc accepts; argon2id's 19 MiB stays below it
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024


def reuse_hash_memory() -> bool:
    """Each argon2id hash allocates its whole memory cost (19 MiB) and frees it. Served by mmap, that
    block is returned at every free and faulted in again, page by page, at the next hash: 13 ms of
    kernel time on top of 23 ms of hashing (tests/unit/test_password_memory.py counts the faults).
    Below a fixed mmap threshold and a trim threshold above it, the block stays in the heap of the
    thread that hashes and is reused. glibc gives each thread its own heap, so every hash runs on the same few threads
    (`PasswordHashing`): one block per hashing thread, not one per request thread (eight request
    threads once kept 150 MiB). A no-op (False) where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
        if mallopt is None:
            return False
        return bool(
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
            and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
        )
    except OSError:
        log.debug("no mallopt: argon2id memory is left to the allocator's defaults")
        return False


reuse_hash_memory()


class PasswordHashing:
    """Every hash runs on one of `concurrent` threads of this process (the others wait their turn),
    whichever request asks: each holds its memory cost (19 MiB) and keeps it for the next hash, so a
    worker holds `concurrent` such blocks, whatever its number of request threads (RSS per worker,
    bench/footprint.py). With one worker per core, one at a time loses no throughput."""

    def __init__(
        self, *, time_cost: int = 2, memory_kib: int = 19 * 1024, parallelism: int = 1, concurrent: int = 1
    ) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._concurrent = max(1, concurrent)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._dummy = self._on_hashing_thread(self._hasher.hash, "dummy password for timing equalisation")

    def hash(self, password: str) -> str:
        return self._on_hashing_thread(self._hasher.hash, password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True if password matches; an absent hash costs the same time and returns False."""
        try:
            matches = self._on_hashing_thread(self._hasher.verify, password_hash or self._dummy, password)
            return matches and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _on_hashing_thread(self, call: Callable[..., T], *args: str) -> T:
        return self._hashing_threads().submit(call, *args).result()

    def _hashing_threads(self) -> ThreadPoolExecutor:
        pool = self._pool
        if pool is not None and self._pool_pid == os.getpid():
            return pool
        with self._lock:  # first use in this process (a forked worker does not inherit the threads)
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(self._concurrent, thread_name_prefix="argon2id")
                self._pool_pid = os.getpid()
            return self._pool
