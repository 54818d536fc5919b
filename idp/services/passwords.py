"""Password hashing with argon2id; a dummy verification keeps unknown users as slow as known ones."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's default, fixed


def keep_hash_memory_out_of_the_heap() -> bool:
    """Each argon2id hash allocates its whole memory cost (19 MiB) and frees it. glibc serves such a
    block with mmap and returns it, but then raises its mmap threshold to the block's size, so the
    next blocks come from the heap and stay there: 8 threads hashing at once left a worker 150 MiB
    larger for good (bench/footprint.py). A fixed threshold keeps every such block mmapped, so it is
    returned to the system when the hash ends. A no-op (False) where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = getattr(libc, "mallopt", None)
        return bool(mallopt and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1)
    except OSError:
        log.debug("no mallopt: argon2id memory is left to the allocator's defaults")
        return False


keep_hash_memory_out_of_the_heap()


class PasswordHashing:
    """`concurrent`: hashes one process computes at once; the others wait their turn. Each hash holds
    its whole memory cost (19 MiB) while it runs, so this bounds a worker's memory (RSS per worker,
    bench/footprint.py); with one worker per core, one at a time loses no throughput."""

    def __init__(
        self, *, time_cost: int = 2, memory_kib: int = 19 * 1024, parallelism: int = 1, concurrent: int = 1
    ) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._turns = threading.BoundedSemaphore(max(1, concurrent))
        self._dummy = self._hasher.hash("dummy password for timing equalisation")

    def hash(self, password: str) -> str:
        with self._turns:
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True if password matches; an absent hash costs the same time and returns False."""
        try:
            with self._turns:
                matches = self._hasher.verify(password_hash or self._dummy, password)
            return matches and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
