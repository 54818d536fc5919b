"""Render workload results as a text table and as JSON."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from dataclasses import asdict
from typing import Any

from bench.runner import WorkloadResult

# The driver is considered possibly saturated above this share of the cores it may use.
DRIVER_BUSY = 0.85
# Open loop: flag a row LATE when more than this share of its operations started after their time.
LATE_SHARE = 0.01


def driver_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def driver_saturated(r: WorkloadResult) -> bool:
    return r.driver_cpu >= DRIVER_BUSY * min(r.processes, driver_cores())


def _ms(v: float) -> str:
    return "-" if math.isnan(v) else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.0f}%"


def late_flagged(r: WorkloadResult) -> bool:
    """Open loop: too many operations started after their scheduled time (every connection was busy)."""
    return bool(r.late and r.scheduled and r.late > LATE_SHARE * r.scheduled)


def _open_cols(r: WorkloadResult) -> str:
    if not r.open_loop:
        return f"{'-':>10}{'-':>8}{'-':>8}"
    return f"{r.rate or 0:>10.1f}{r.late or 0:>8}{r.missed or 0:>8}"


def table(results: list[WorkloadResult]) -> str:
    """The per-workload table, then one line per error kind, flagged workload and caveat."""
    procs = any(r.server_proc_cpu is not None for r in results)
    opened = any(r.open_loop for r in results)
    head = (
        f"{'workload':<19}{'req/s':>10}{'x floor':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'ok':>9}{'errors':>8}{'drv cpu':>9}{'srv cpu':>9}{'srv proc' if procs else '':>9}"
        + (f"{'target/s':>10}{'late':>8}{'missed':>8}" if opened else "")
        + "  flag"
    )
    lines = [head, "-" * len(head)]
    notes: list[str] = []
    wrk_rows = False
    for r in results:
        frac = "-" if r.fraction_of_floor is None else f"{r.fraction_of_floor:.3f}"
        flag = "ERR" if r.flagged else ""
        if driver_saturated(r):
            flag += " DRV?"
        if r.missed:
            flag += " MISS"
        if late_flagged(r):
            flag += " LATE"
        if r.setup_error is not None:
            lines.append(f"{r.name:<19}  SETUP FAILED: {r.setup_error[:150]}")
            continue
        lines.append(
            f"{r.name:<19}{r.rps:>10.1f}{frac:>9}{_ms(r.p50):>9}{_ms(r.p95):>9}{_ms(r.p99):>9}"
            f"{r.ok:>9}{r.error_count:>8}{_pct(r.driver_cpu):>9}{_pct(r.server_cpu):>9}"
            f"{_pct(r.server_proc_cpu) if procs else '':>9}{_open_cols(r) if opened else ''}  {flag.strip()}"
        )
        if r.wrk is not None:
            w = r.wrk
            wfrac = "-" if r.rps <= 0 else f"{w['rps'] / r.rps:.2f}x"
            wrk_rows = True
            lines.append(
                f"{'  same, by wrk':<19}{w['rps']:>10.1f}{wfrac:>9}{_ms(w['p50_ms']):>9}{_ms(w['p95_ms']):>9}"
                f"{_ms(w['p99_ms']):>9}{w['requests']:>9}{w['errors']:>8}"
            )
        for key, count in r.errors.items():
            sample = r.samples.get(key, "").replace("\n", " ")[:120]
            notes.append(f"! {r.name}: {count} x {key}" + (f"  [{sample}]" if sample else ""))
        if driver_saturated(r):
            notes.append(
                f"? {r.name}: driver used {_pct(r.driver_cpu)} of its cores; it may be the bottleneck "
                "(try --processes 2 on an unpinned run, or compare with --wrk-compare)"
            )
        if r.missed:
            notes.append(
                f"! {r.name}: {r.missed} of {r.scheduled} scheduled operations never started (the server "
                "fell too far behind the rate); the percentiles leave them out and understate the latency"
            )
        if late_flagged(r):
            notes.append(
                f"? {r.name}: {r.late} of {r.scheduled} operations started late (all {r.connections} "
                "connections were busy at their scheduled time); their latency includes the wait"
            )
    if wrk_rows:
        notes.insert(
            0, "('same, by wrk' rows: x floor column = wrk req/s / driver req/s; wrk has no warm-up)"
        )
    if opened:
        notes.insert(
            0,
            "(open loop rows, target/s set: latency from each operation's scheduled start; req/s = "
            "successes completed in the window; late = started after their time; missed = never started)",
        )
    return "\n".join(lines + ([""] + notes if notes else []))


def environment() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "driver_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_count": os.cpu_count(),
    }


def to_json(
    results: list[WorkloadResult], config: dict[str, Any], extra: dict[str, Any] | None = None
) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        return v

    rows = []
    for r in results:
        row = clean(asdict(r))
        row["error_count"] = r.error_count
        row["flagged"] = r.flagged
        row["driver_saturated"] = driver_saturated(r)
        row["driver_cpu_us_per_op"] = r.driver_cpu / r.rps * 1e6 if r.rps > 0 else None
        row["open_loop"] = r.open_loop
        rows.append(row)
    return json.dumps(
        {"config": config, "environment": environment(), "results": rows, **(extra or {})},
        indent=2,
        sort_keys=False,
    )
