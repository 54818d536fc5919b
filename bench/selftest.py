"""`--self-test`: show the driver is not the bottleneck (null-server ceiling, wrk cross-check), and
check the open loop (`--rate`): its schedule's bookkeeping, its rate, and that a queue shows in it."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import report, wrk
from bench.env import EXPECTED_ERRORS, Env
from bench.runner import WorkloadResult, _Schedule, describe, run_workload

# The driver passes if its ceiling is at least this multiple of the server's floor throughput ...
HEADROOM = 2.0
# ... or if it gets at least this share of what wrk gets from the same server.
WRK_AGREEMENT = 0.90
# Open loop on the null server: this rate must be met within OPEN_TOLERANCE, with nothing missed.
OPEN_RATE = 1000.0
OPEN_TOLERANCE = 0.05
# Open loop on a slow null server (each answer SLOW_MS late, over SLOW_CONNECTIONS connections, so at
# most SLOW_CONNECTIONS / SLOW_MS = 100 op/s) scheduled at SLOW_RATE: the operations queue up, and the
# latency measured from their scheduled start must show it where the closed loop shows about SLOW_MS.
# After 1 s of warm-up and 2 s measured, 150 operations are queued: 1.5 s to drain, under OPEN_LOOP_DRAIN.
SLOW_MS = 20.0
SLOW_CONNECTIONS = 2
SLOW_RATE = 150.0


def _start_null_server(cpu: int | None, delay_ms: float = 0.0) -> tuple[subprocess.Popen[bytes], int]:
    ready = Path(tempfile.mkdtemp(prefix="bench-null-")) / "port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.nullserver",
            "--port",
            "0",
            "--ready-file",
            str(ready),
            "--delay-ms",
            f"{delay_ms:g}",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
    )
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(proc.pid, {cpu})
        except OSError as exc:
            print(f"note: could not pin the null server to core {cpu}: {exc}", file=sys.stderr)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if ready.exists() and ready.read_text().strip():
            return proc, int(ready.read_text())
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the null server did not start")


async def _reachable(env: Env) -> str | None:
    conn = env.connection()
    try:
        resp = await conn.send(env.request("GET", env.url("/healthz")))
    except EXPECTED_ERRORS as exc:
        return describe(exc)[0]
    finally:
        conn.close()
    return None if resp.status == 200 else f"GET /healthz answered HTTP {resp.status}"


def _floor(label: str, env: Env, args: argparse.Namespace, server_cpu: int | None) -> WorkloadResult:
    print(f"  {label}: driver ...", end="", file=sys.stderr, flush=True)
    r = run_workload(
        "floor",
        env,
        connections=args.connections,
        processes=args.processes,
        warmup=args.warmup,
        duration=args.duration,
        server_cpu=server_cpu,
    )
    r.name = label
    print(f" {r.rps:.0f}/s", end="", file=sys.stderr, flush=True)
    if wrk.available():
        time.sleep(args.pause)
        print(", wrk ...", end="", file=sys.stderr, flush=True)
        try:
            r.wrk = wrk.run_wrk(env.url("/healthz"), connections=args.connections, duration=args.duration)
            print(f" {r.wrk['rps']:.0f}/s", end="", file=sys.stderr)
        except (OSError, RuntimeError, ValueError, subprocess.SubprocessError) as exc:
            print(f" failed: {exc}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return r


def _open(
    label: str, env: Env, rate: float | None, connections: int, duration: float, cpu: int | None
) -> WorkloadResult:
    print(f"  {label} ...", end="", file=sys.stderr, flush=True)
    r = run_workload(
        "floor", env, connections=connections, warmup=1.0, duration=duration, server_cpu=cpu, rate=rate
    )
    r.name = label
    print(f" {r.rps:.0f}/s, p99 {r.p99:.1f} ms", file=sys.stderr)
    return r


def _schedule_checks() -> list[tuple[str, bool]]:
    """The open-loop schedule's bookkeeping on made-up times (no network): in order, due times, the
    window, and what is missed after the drain deadline."""
    plan = _Schedule(start=10.0, interval=1 / 64, m0=11.0, m1=12.0, deadline=13.0)
    taken = [plan.take(10.0) for _ in range(96)]
    ok = taken == list(range(96)) and plan.in_window == 64 and (plan.first, plan.end) == (64, 128)
    ok = ok and plan.due(80) == 11.25
    after = plan.take(13.5)  # past the deadline: the 32 window operations not started are missed
    ok = ok and after is None and plan.missed == 32 and plan.take(10.0) is None and plan.missed == 32
    return [("open-loop schedule: order, due times, window count, missed after the deadline", ok)]


def _open_checks(
    plain: WorkloadResult, closed_slow: WorkloadResult, slow: WorkloadResult
) -> list[tuple[str, bool]]:
    checks = _schedule_checks()
    dur = plain.duration
    checks.append(
        (
            f"open loop on the null server: {plain.rps:.1f}/s of {OPEN_RATE:g}/s scheduled "
            f"(need within {OPEN_TOLERANCE:.0%}), {plain.scheduled} scheduled in {dur:g} s, "
            f"{plain.missed} missed, {plain.error_count} errors, {plain.late} late "
            f"(start lag p99 {plain.start_lag_p99 or 0:.2f} ms)",
            abs(plain.rps / OPEN_RATE - 1) <= OPEN_TOLERANCE
            and abs((plain.scheduled or 0) - OPEN_RATE * dur) <= 1
            and plain.missed == 0
            and not plain.flagged,
        )
    )
    capacity = SLOW_CONNECTIONS / (SLOW_MS / 1000)
    checks.append(
        (
            f"a queue shows: {SLOW_RATE:g}/s scheduled on a server of {capacity:g}/s gives p50 "
            f"{slow.p50:.0f} ms, {slow.late} of {slow.scheduled} late, {slow.rps:.0f}/s done "
            f"(closed loop there: p99 {closed_slow.p99:.1f} ms); need p50 >= 10 x {SLOW_MS:g} ms, "
            f"most late, none missed",
            slow.p50 >= 10 * SLOW_MS
            and slow.p50 > closed_slow.p99
            and (slow.late or 0) >= 0.5 * (slow.scheduled or 1)
            and slow.rps <= 1.1 * capacity
            and slow.missed == 0
            and not slow.flagged
            and not closed_slow.flagged,
        )
    )
    return checks


def main(env: Env, args: argparse.Namespace) -> int:
    server_cpu = args.server_cpu if args.server_cpu >= 0 else None
    cores = os.cpu_count() or 1
    null_cpu = server_cpu if server_cpu is not None and server_cpu < cores else None
    print(f"self-test: {report.environment()}  connections {args.connections}  duration {args.duration:g}s")
    if not wrk.available():
        print("note: wrk is not installed (apt-get install -y wrk): no wrk cross-check", file=sys.stderr)

    results: list[WorkloadResult] = []
    proc, port = _start_null_server(null_cpu)
    try:
        null_env = Env(replace(env.settings, base_url=f"http://127.0.0.1:{port}"))
        ceiling = _floor("floor@null-server", null_env, args, null_cpu)
        results.append(ceiling)
        time.sleep(args.pause)
        plain = _open(
            "open@null-server", null_env, OPEN_RATE, args.connections, min(args.duration, 3), null_cpu
        )
        results.append(plain)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    proc, port = _start_null_server(null_cpu, SLOW_MS)
    try:
        slow_env = Env(replace(env.settings, base_url=f"http://127.0.0.1:{port}"))
        closed_slow = _open("closed@slow-null", slow_env, None, SLOW_CONNECTIONS, 2, null_cpu)
        slow = _open("open@slow-null", slow_env, SLOW_RATE, SLOW_CONNECTIONS, 2, null_cpu)
        results += [closed_slow, slow]
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    server: WorkloadResult | None = None
    problem = asyncio.run(_reachable(env))
    if problem is None:
        time.sleep(args.pause)
        server = _floor("floor@server", env, args, server_cpu)
        results.append(server)
    else:
        print(f"note: {env.settings.base_url} not measured ({problem})", file=sys.stderr)

    print(report.table(results))
    print()
    ok = _verdict(ceiling, server)
    checks = _open_checks(plain, closed_slow, slow)
    open_ok = all(good for _, good in checks)
    print("\n".join(("ok   " if good else "FAIL ") + text for text, good in checks))
    print("PASS: the open loop keeps its schedule and counts queueing" if open_ok else "FAIL: the open loop")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            config = {"self_test": True, "passed": ok and open_ok, "base_url": env.settings.base_url}
            fh.write(
                report.to_json(results, config, {"open_loop_checks": {text: good for text, good in checks}})
            )
    return 0 if ok and open_ok else 1


def _verdict(ceiling: WorkloadResult, server: WorkloadResult | None) -> bool:
    lines: list[str] = []
    per_req = ceiling.driver_cpu / ceiling.rps * 1e6 if ceiling.rps > 0 else math.nan
    cpu_bound = 1e6 / per_req if per_req > 0 else math.nan
    lines.append(
        f"driver ceiling at {ceiling.connections} connections: {ceiling.rps:.0f} req/s against the null "
        f"server, using {ceiling.driver_cpu * 100:.0f}% of its core ({per_req:.0f} us of driver CPU per "
        f"request, i.e. about {cpu_bound:.0f} req/s if it were CPU-bound)"
    )
    if ceiling.wrk is not None:
        lines.append(f"wrk against the null server: {ceiling.wrk['rps']:.0f} req/s")
    if ceiling.flagged:
        lines.append("FAIL: errors against the null server")
        print("\n".join(lines))
        return False
    if server is None:
        lines.append("server not measured: compare the ceiling with the floor req/s of a normal run")
        print("\n".join(lines))
        return True
    checks: list[tuple[str, bool]] = []
    if server.rps > 0:
        headroom = ceiling.rps / server.rps
        checks.append(
            (f"ceiling / server floor = {headroom:.1f}x (need >= {HEADROOM:g}x)", headroom >= HEADROOM)
        )
    wrk_res: dict[str, Any] | None = server.wrk
    if wrk_res is not None and wrk_res["rps"] > 0:
        agree = server.rps / wrk_res["rps"]
        checks.append(
            (
                f"driver / wrk on the server floor = {agree:.2f} (need >= {WRK_AGREEMENT:g})",
                agree >= WRK_AGREEMENT,
            )
        )
    if server.server_cpu is not None:
        lines.append(
            f"during the server floor: server core busy {server.server_cpu * 100:.0f}%, "
            f"driver {server.driver_cpu * 100:.0f}% of a core"
        )
    passed = not server.flagged and any(ok for _, ok in checks)
    lines += [("ok   " if ok else "low  ") + text for text, ok in checks]
    lines.append(
        "PASS: the driver is not the bottleneck" if passed else "FAIL: the driver may limit the measurement"
    )
    print("\n".join(lines))
    return passed
