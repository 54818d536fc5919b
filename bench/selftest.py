"""`--self-test`: show the driver is not the bottleneck (null-server ceiling, wrk cross-check)."""

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
from bench.runner import WorkloadResult, describe, run_workload

# The driver passes if its ceiling is at least this multiple of the server's floor throughput ...
HEADROOM = 2.0
# ... or if it gets at least this share of what wrk gets from the same server.
WRK_AGREEMENT = 0.90


def _start_null_server(cpu: int | None) -> tuple[subprocess.Popen[bytes], int]:
    ready = Path(tempfile.mkdtemp(prefix="bench-null-")) / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.nullserver", "--port", "0", "--ready-file", str(ready)],
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
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(
                report.to_json(results, {"self_test": True, "passed": ok, "base_url": env.settings.base_url})
            )
    return 0 if ok else 1


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
