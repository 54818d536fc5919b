"""argon2id's 19 MiB per hash: one block per hashing thread, kept and reused, never one per request
thread (RSS per worker), and not faulted in again at every hash (login throughput)."""

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
    # Hashing on the request threads, the worker stays ~150 MiB larger (8 x 19 MiB, one per thread's heap).
    assert grown_kib < 20 * 1024
    # Without the one-at-a-time turn the peak is 8 hashes' memory at once (~150 MiB); with it, one.
    assert peak_grown_kib < 40 * 1024


FAULTS = """
import resource
from idp.services.passwords import PasswordHashing

hashing = PasswordHashing()
stored = hashing.hash("x")
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    hashing.verify(stored, "x")
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 5)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_hash_reuses_its_memory_instead_of_faulting_it_in_again() -> None:
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", FAULTS], cwd=root, capture_output=True, text=True, check=True
    )
    # 19 MiB mapped afresh at every hash is ~4,900 page faults (13 ms of kernel time per login).
    assert int(child.stdout) < 500


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
