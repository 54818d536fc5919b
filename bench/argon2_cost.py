"""`--argon2-hashes N`: time argon2id in the driver process, the cost that bounds logins per core.

One login verifies one password, and an argon2id verification costs one hash. So on one server core
logins/s can never pass 1 / (hash time). The measurement runs in the driver process, pinned like it
(taskset -c 1), while the server is idle. It needs argon2-cffi, which the provider itself uses.
"""

from __future__ import annotations

import importlib.metadata
import statistics
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Argon2Cost:
    hashes: int
    time_cost: int
    memory_kib: int
    parallelism: int
    ms_per_hash: float  # median
    ms_min: float
    ms_mean: float
    library: str

    @property
    def per_second(self) -> float:
        """1 / (hash time): the most logins one core can verify per second."""
        return 1000.0 / self.ms_per_hash

    def as_dict(self, login_rps: float | None) -> dict[str, Any]:
        return {
            "hashes": self.hashes,
            "time_cost": self.time_cost,
            "memory_kib": self.memory_kib,
            "parallelism": self.parallelism,
            "ms_per_hash_median": self.ms_per_hash,
            "ms_per_hash_min": self.ms_min,
            "ms_per_hash_mean": self.ms_mean,
            "hashes_per_second": self.per_second,
            "login_rps": login_rps,
            "login_fraction_of_hash_rate": None if login_rps is None else login_rps / self.per_second,
            "library": self.library,
        }

    def line(self, login_rps: float | None) -> str:
        text = (
            f"argon2id m={self.memory_kib} KiB t={self.time_cost} p={self.parallelism}: "
            f"{self.ms_per_hash:.2f} ms/hash (median of {self.hashes}, min {self.ms_min:.2f}) "
            f"=> 1/(hash time) = {self.per_second:.1f}/s on one core"
        )
        if login_rps is not None:
            text += f"; login {login_rps:.1f}/s = {login_rps / self.per_second:.1%} of it"
        return text


def measure(hashes: int, time_cost: int, memory_kib: int, parallelism: int) -> Argon2Cost:
    """Hash a password `hashes` times (after one untimed hash) with the given argon2id parameters."""
    import argon2  # the provider's dependency; the rest of the driver needs only the standard library

    hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    hasher.hash("warm-up password")
    times: list[float] = []
    for i in range(max(1, hashes)):
        t0 = time.perf_counter()
        hasher.hash(f"Bench#Password{i}")
        times.append((time.perf_counter() - t0) * 1000.0)
    try:
        version = importlib.metadata.version("argon2-cffi")
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    return Argon2Cost(
        hashes=len(times),
        time_cost=time_cost,
        memory_kib=memory_kib,
        parallelism=parallelism,
        ms_per_hash=statistics.median(times),
        ms_min=min(times),
        ms_mean=statistics.fmean(times),
        library=f"argon2-cffi {version}",
    )
