"""What `bench/production.sh` measures besides throughput: the server workers' resident memory, the
Redis memory of the SSO sessions, and the half-of-peak (open-loop) latency table."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.runner import process_tree

MIB = 1024 * 1024
# The targets the figures are compared with.
P99_LIMIT_MS = 50.0  # p99 at half of the peak (closed-loop) throughput
RSS_LIMIT_MIB = 120.0  # resident memory of one server worker
SESSION_LIMIT_BYTES = 1024  # Redis memory per SSO session

# Redis key families (the part after the prefix, up to the first ':') that make up SSO sessions; see
# idp/services/sso_sessions.py. Per session: `sso:<sha256(handle)>` (the session), `sid:<sid>` (its
# handle's digest), `sso-clients:<sid>` (the clients it signed in to), and one member of the person's
# `person-sessions:<person id>` set. A session is counted by its `sso:` key.
SESSION_FAMILIES = ("sso", "sid", "sso-clients", "person-sessions")


def proc_status(pid: int) -> dict[str, str]:
    """The fields of /proc/<pid>/status (empty if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            return {k: v.strip() for k, _, v in (line.partition(":") for line in fh)}
    except OSError:
        return {}


def _kib(value: str | None) -> int | None:
    """'1234 kB' -> bytes."""
    if not value:
        return None
    number, _, unit = value.partition(" ")
    return int(number) * 1024 if unit.strip() == "kB" else int(number)


@dataclass
class _Worker:
    name: str
    samples: int = 0
    max_rss: int = 0
    last_rss: int = 0
    hwm: int = 0


@dataclass
class RssSampler:
    """Samples VmRSS of every process below the server's master (its workers) every `interval` s,
    in a background thread, and keeps each one's maximum; VmHWM (the kernel's peak) is read too.

    It also keeps the maximum over all workers per phase: `phase` is set by the caller, and while
    `mark_file` (a driver's --mark-file) names a workload, the phase is "<phase>: <workload>"."""

    master: int
    interval: float = 0.5
    workers: dict[int, _Worker] = field(default_factory=dict)
    master_rss: int = 0
    phase: str = "idle"
    mark_file: Path | None = None
    by_phase: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _label(self) -> str:
        mark = self.mark_file
        if mark is not None:
            try:
                return f"{self.phase}: {json.loads(mark.read_text(encoding='utf-8'))['workload']}"
            except (OSError, ValueError, KeyError):
                pass
        return self.phase

    def sample(self) -> None:
        label = self._label()
        master = _kib(proc_status(self.master).get("VmRSS"))
        if master is not None:
            self.master_rss = max(self.master_rss, master)
        for pid in process_tree(self.master)[1:]:
            status = proc_status(pid)
            rss = _kib(status.get("VmRSS"))
            if rss is None:
                continue
            w = self.workers.setdefault(pid, _Worker(status.get("Name", "?")))
            w.samples += 1
            w.max_rss = max(w.max_rss, rss)
            w.last_rss = rss
            w.hwm = max(w.hwm, _kib(status.get("VmHWM")) or 0)
            self.by_phase[label] = max(self.by_phase.get(label, 0), rss)

    def start(self) -> None:
        self.sample()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self.sample()

        self._thread = threading.Thread(target=loop, name="rss-sampler", daemon=True)
        self._thread.start()

    def finish(self) -> dict[str, Any]:
        """Stop sampling (one last sample first; call it while the server still runs); the summary."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        return self.summary()

    def summary(self) -> dict[str, Any]:
        rows: list[dict[str, Any]] = [
            {
                "pid": pid,
                "name": w.name,
                "max_rss_mib": w.max_rss / MIB,
                "last_rss_mib": w.last_rss / MIB,
                "hwm_mib": w.hwm / MIB,
                "samples": w.samples,
            }
            for pid, w in sorted(self.workers.items())
        ]
        top = max((r["max_rss_mib"] for r in rows), default=None)
        return {
            "what": "VmRSS of each process below the server's master, sampled every interval_s from "
            "server start to stop; hwm_mib is the kernel's peak (VmHWM)",
            "interval_s": self.interval,
            "limit_mib": RSS_LIMIT_MIB,
            "workers": rows,
            "max_rss_mib": top,
            "max_hwm_mib": max((r["hwm_mib"] for r in rows), default=None),
            "master_rss_mib": self.master_rss / MIB,
            "within_limit": top is not None and top <= RSS_LIMIT_MIB,
            "max_rss_mib_by_phase": {k: v / MIB for k, v in self.by_phase.items()},
        }


def rss_line(rss: dict[str, Any]) -> str:
    if not rss["workers"]:
        return "RSS per worker: no worker processes seen"
    per = ", ".join(
        f"pid {w['pid']} {w['max_rss_mib']:.1f} MiB (VmHWM {w['hwm_mib']:.1f}, {w['samples']} samples)"
        for w in rss["workers"]
    )
    verdict = "yes" if rss["within_limit"] else "NO"
    phases = ", ".join(f"{k} {v:.0f}" for k, v in rss.get("max_rss_mib_by_phase", {}).items())
    return (
        f"RSS per worker (max of VmRSS every {rss['interval_s']:g} s): {per}; master "
        f"{rss['master_rss_mib']:.1f} MiB; <= {RSS_LIMIT_MIB:g} MiB: {verdict}\n"
        f"  largest worker RSS (MiB) by phase, in order (a workload's untimed setup counts under the "
        f"one before it): {phases}"
    )


# ----------------------------------------------------------------------------------------------- Redis


def used_memory(client: Any) -> int:
    """used_memory without the clients' buffers (MEMORY STATS), which other clients of a shared Redis
    make jump by 100 KB and more from one moment to the next."""
    return _without_buffers(client.memory_stats())


def _without_buffers(stats: dict[str, Any]) -> int:
    buffers = sum(int(stats.get(k, 0)) for k in ("clients.normal", "clients.slaves", "aof.buffer"))
    return int(stats["total.allocated"]) - buffers


def _family(key: bytes, prefix: str) -> str:
    return key[len(prefix) :].decode("utf-8", "replace").split(":", 1)[0]


def redis_keys(client: Any, prefix: str) -> dict[str, list[tuple[bytes, int]]]:
    """Every key under the prefix with its MEMORY USAGE (all members of sets counted), by family."""
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    out: dict[str, list[tuple[bytes, int]]] = {}
    for i in range(0, len(keys), 500):
        batch = keys[i : i + 500]
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        for key, size in zip(batch, pipe.execute(), strict=True):
            if size is not None:  # None: expired since the scan
                out.setdefault(_family(key, prefix), []).append((key, int(size)))
    return out


def session_memory(
    url: str, prefix: str, used_before_run: int | None = None, delete: bool = True
) -> dict[str, Any]:
    """The Redis memory the SSO sessions under `prefix` take, three ways (see bench/README.md):

    * the sum of MEMORY USAGE over the session families' keys / the number of sessions;
    * with `delete`: used_memory (here always without client buffers, see `used_memory`) before minus
      after deleting exactly those keys / sessions, all three in one MULTI/EXEC, so no other client's
      command runs in between;
    * with `used_before_run`: used_memory growth since then / sessions (includes every other key the
      run left, e.g. `code-grant:`, and anything other Redis clients did meanwhile: an upper bound)."""
    import redis

    scanner = redis.Redis.from_url(url)
    try:
        used_now = used_memory(scanner)
        families = redis_keys(scanner, prefix)
    finally:
        scanner.connection_pool.disconnect()
    meter = redis.Redis.from_url(url)
    try:
        sessions = len(families.get("sso", []))
        by_family = {
            fam: {"keys": len(rows), "bytes": sum(size for _, size in rows)}
            for fam, rows in sorted(families.items())
        }
        session_bytes = sum(by_family.get(f, {"bytes": 0})["bytes"] for f in SESSION_FAMILIES)
        out: dict[str, Any] = {
            "prefix": prefix,
            "sessions": sessions,
            "families": by_family,
            "session_families": list(SESSION_FAMILIES),
            "memory_usage_bytes": session_bytes,
            "bytes_per_session": session_bytes / sessions if sessions else None,
            "used_memory_after_run": used_now,
            "limit_bytes": SESSION_LIMIT_BYTES,
        }
        if used_before_run is not None:
            out["used_memory_before_run"] = used_before_run
            out["run_growth_per_session"] = (used_now - used_before_run) / sessions if sessions else None
        if delete and sessions:
            doomed = [key for f in SESSION_FAMILIES for key, _ in families.get(f, [])]
            pipe = meter.pipeline(transaction=True)
            pipe.memory_stats()
            for i in range(0, len(doomed), 200):
                pipe.delete(*doomed[i : i + 200])
            pipe.memory_stats()
            replies = pipe.execute()
            before, after = _without_buffers(replies[0]), _without_buffers(replies[-1])
            deleted = sum(int(n) for n in replies[1:-1])
            out |= {
                "deleted_keys": deleted,
                "used_memory_before_delete": before,
                "used_memory_after_delete": after,
                "freed_per_session": (before - after) / sessions,
            }
        per = out["bytes_per_session"]
        out["within_limit"] = per is not None and per <= SESSION_LIMIT_BYTES
        return out
    finally:
        meter.connection_pool.disconnect()


def redis_line(r: dict[str, Any]) -> str:
    if r.get("error"):
        return f"Redis per SSO session: not measured ({r['error']})"
    if not r.get("sessions"):
        return f"Redis per SSO session: no SSO sessions under {r.get('prefix')!r}"
    fams = r["families"]
    parts = ", ".join(
        f"{f}: {fams[f]['keys']} keys {fams[f]['bytes'] / r['sessions']:.0f} B"
        for f in SESSION_FAMILIES
        if f in fams
    )
    freed = r.get("freed_per_session")
    cross = "-" if freed is None else f"{freed:.0f} B"
    verdict = "yes" if r["within_limit"] else "NO"
    return (
        f"Redis per SSO session ({r['sessions']} sessions): {r['bytes_per_session']:.0f} B by MEMORY USAGE "
        f"({parts}); used_memory freed per session by deleting them: {cross}; "
        f"<= {SESSION_LIMIT_BYTES} B: {verdict}"
    )


# ---------------------------------------------------------------------------------------- half of peak


def half_peak_entry(
    workload: str, peak_rps: float, row: dict[str, Any] | None, note: str = ""
) -> dict[str, Any]:
    """One workload's half-of-peak result: the open-loop driver's JSON row plus the verdict. A p99 only
    counts when nothing failed and nothing was missed (missed operations would hide the tail)."""
    entry: dict[str, Any] = {"workload": workload, "peak_rps": peak_rps, "rate": peak_rps / 2}
    if row is None:
        return entry | {"error": note or "no result", "p99_within_limit": False}
    p99 = row.get("p99")
    clean = not row.get("flagged") and not row.get("missed") and not row.get("setup_error")
    entry |= {k: row.get(k) for k in ("rps", "p50", "p95", "p99", "ok", "error_count", "scheduled", "late")}
    entry |= {k: row.get(k) for k in ("missed", "start_lag_p99", "start_lag_max", "errors")}
    entry |= {k: row.get(k) for k in ("server_cpu", "server_proc_cpu", "driver_cpu")}
    entry |= {"setup_error": row.get("setup_error"), "clean": clean, "p99_limit_ms": P99_LIMIT_MS}
    entry["p99_within_limit"] = clean and p99 is not None and p99 <= P99_LIMIT_MS
    return entry


def ms(v: float | None) -> str:
    return "-" if v is None or math.isnan(v) else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def half_peak_table(entries: list[dict[str, Any]], connections: int, duration: float) -> str:
    head = (
        f"{'workload':<19}{'peak/s':>9}{'rate/s':>9}{'done/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'late':>7}{'missed':>7}{'errors':>7}{'srv cpu':>8}  p99 <= {P99_LIMIT_MS:g} ms"
    )
    lines = [
        f"half of peak load: open loop at half the req/s above, {connections} connections, {duration:g} s "
        "each; latency from each operation's scheduled start",
        head,
        "-" * len(head),
    ]
    for e in entries:
        if "error" in e:
            lines.append(f"{e['workload']:<19}{e['peak_rps']:>9.1f}{e['rate']:>9.1f}  {e['error'][:120]}")
            continue
        cpu = "-" if e.get("server_cpu") is None else f"{e['server_cpu'] * 100:.0f}%"
        verdict = "yes" if e["p99_within_limit"] else ("NO" if e["clean"] else "NO (errors/missed)")
        lines.append(
            f"{e['workload']:<19}{e['peak_rps']:>9.1f}{e['rate']:>9.1f}{e['rps'] or 0:>9.1f}{ms(e['p50']):>9}"
            f"{ms(e['p95']):>9}{ms(e['p99']):>9}{e['late'] or 0:>7}{e['missed'] or 0:>7}"
            f"{e['error_count'] or 0:>7}{cpu:>8}  {verdict}"
        )
    return "\n".join(lines)
