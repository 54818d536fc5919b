"""argon2id's 19 MiB per hash must go back to the system once the hash is done (RSS per worker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CHILD = """
import threading
from idp.services.passwords import PasswordHashing

hashing = PasswordHashing()  # production cost: m=19 MiB, t=2, p=1


def rss_kib(field="VmRSS"):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


before, peak_before = rss_kib(), rss_kib("VmHWM")
threads = [threading.Thread(target=lambda: [hashing.hash("x") for _ in range(3)]) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(rss_kib() - before, rss_kib("VmHWM") - peak_before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_eight_concurrent_logins_hash_one_at_a_time_and_keep_no_memory() -> None:
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=root, capture_output=True, text=True, check=True
    )
    grown_kib, peak_grown_kib = (int(value) for value in child.stdout.split())
    # Without the fixed mmap threshold the worker stays ~150 MiB larger (8 x 19 MiB kept in the heap).
    assert grown_kib < 20 * 1024
    # Without the one-at-a-time turn the peak is 8 hashes' memory at once (~150 MiB); with it, one.
    assert peak_grown_kib < 40 * 1024


def test_hashing_waits_its_turn() -> None:
    import threading
    import time

    from idp.services.passwords import PasswordHashing

    hashing = PasswordHashing(time_cost=1, memory_kib=1024, concurrent=2)
    running, most = 0, 0
    lock = threading.Lock()

    class Observed:
        def hash(self, password: str) -> str:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.02)
            with lock:
                running -= 1
            return "hashed"

    hashing._hasher = Observed()  # type: ignore[assignment]
    threads = [threading.Thread(target=hashing.hash, args=("x",)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2
