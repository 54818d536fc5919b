"""`production.py --services-cpu N`: the machine's PostgreSQL and Redis run on core N during a run.

Unpinned, the scheduler also runs database backends on the server's core: with 8 threads per worker
`srv proc` read 88-91 % for userinfo and refresh (2026-12-03), so the server had ~10 % less of its
core than the figure per core assumes. Pinning every PostgreSQL process (new backends inherit the
postmaster's affinity) and redis-server to the driver's core gives the server its core whole. The
affinities are restored when the run ends, also for backends started during it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERVICES = ("postgres", "redis-server")


def service_pids() -> list[int]:
    """Every process whose name (comm) is one of SERVICES: the postmaster and all its children."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text(encoding="ascii", errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        if comm in SERVICES:
            pids.append(int(entry.name))
    return pids


def _set(pid: int, cpus: set[int]) -> bool:
    try:
        os.sched_setaffinity(pid, cpus)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def pinned_services(cpu: int | None) -> Iterator[list[int]]:
    """Pin the local PostgreSQL and Redis to `cpu` (None: do nothing); yields the pids pinned."""
    if cpu is None:
        yield []
        return
    every = set(range(os.cpu_count() or 1))
    if cpu not in every:
        raise SystemExit(f"--services-cpu {cpu}: this machine has cores 0-{max(every)}")
    pids = [pid for pid in service_pids() if _set(pid, {cpu})]
    if not pids:
        raise SystemExit("--services-cpu: no local postgres or redis-server process found")
    try:
        yield pids
    finally:
        for pid in service_pids():  # including backends forked while pinned
            _set(pid, every)
