"""Run one workload: N keep-alive connections in one or more driver processes, warm-up, then measure."""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.synchronize
import os
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.env import EXPECTED_ERRORS, BenchError, Env
from bench.workloads import WORKLOADS, Op

ERROR_PAUSE = 0.01  # seconds a worker waits after a failed operation, so a dead server is not spun on
# Open loop: an operation scheduled inside the window that has not started this long after the window
# ended is counted as missed (not run), so an overloaded server cannot stretch the run without bound.
OPEN_LOOP_DRAIN = 5.0


def read_cpu(cpu: int) -> tuple[int, int] | None:
    """(busy, total) jiffies of one CPU core from /proc/stat, or None if unavailable."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(f"cpu{cpu} "):
                    values = [int(v) for v in line.split()[1:]]
                    idle = values[3] + (values[4] if len(values) > 4 else 0)
                    total = sum(values[:8])
                    return total - idle, total
    except OSError:
        return None
    return None


def process_tree(pid: int) -> list[int]:
    """pid and every process below it (via /proc/<pid>/task/*/children)."""
    found = [pid]
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = list(os.scandir(f"/proc/{current}/task"))
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"{task.path}/children", encoding="ascii") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def tree_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by pid and every process below it; None if unreadable."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    seen = False
    for p in process_tree(pid):
        try:
            with open(f"/proc/{p}/stat", encoding="ascii", errors="replace") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        seen = True
    return total / tick if seen else None


def write_mark(path: str, name: str, measure_from: float, duration: float) -> None:
    """Tell another process (a profiler) when the measurement window starts (epoch seconds)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"workload": name, "measure_from": measure_from, "duration": duration}, fh)
    os.replace(tmp, path)


def describe(exc: BaseException) -> tuple[str, str]:
    """(grouping key, sample detail) for a failed operation."""
    if isinstance(exc, BenchError):
        return exc.key, exc.detail
    text = str(exc)
    return f"{type(exc).__name__}" + (f": {text[:120]}" if text else ""), ""


@dataclass
class ProcResult:
    """What one driver process measured for one workload."""

    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    latencies: array[float] = field(default_factory=lambda: array("d"))
    window: float = 0.0
    cpu: float = 0.0
    server_busy: float | None = None
    server_proc: float | None = None
    connects: int = 0
    setup_error: str | None = None
    # open loop only (see _run_proc): operations scheduled inside the window, those of them that started
    # after their scheduled time (every connection was busy), those never started (OPEN_LOOP_DRAIN),
    # how long after its scheduled time each one started (s), and successes completed inside the window
    scheduled: int = 0
    late: int = 0
    missed: int = 0
    start_lags: array[float] = field(default_factory=lambda: array("d"))
    window_ok: int = 0


def percentile(sorted_values: list[float] | array[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (nan if empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass
class WorkloadResult:
    """The aggregate over all driver processes; latencies in milliseconds."""

    name: str
    connections: int
    processes: int
    duration: float
    ok: int
    errors: dict[str, int]
    samples: dict[str, str]
    rps: float
    p50: float
    p95: float
    p99: float
    mean: float
    max: float
    driver_cpu: float
    server_cpu: float | None
    connects: int
    server_proc_cpu: float | None = None
    setup_error: str | None = None
    fraction_of_floor: float | None = None
    wrk: dict[str, Any] | None = None
    # open loop only (None in a closed-loop run): the target rate (operations/s over all connections),
    # operations scheduled inside the window, how many of them started late / were never started, and
    # the p99 and max delay between an operation's scheduled and actual start (ms)
    rate: float | None = None
    scheduled: int | None = None
    late: int | None = None
    missed: int | None = None
    start_lag_p99: float | None = None
    start_lag_max: float | None = None

    @property
    def open_loop(self) -> bool:
        return self.rate is not None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def flagged(self) -> bool:
        return self.setup_error is not None or self.error_count > 0


async def _run_proc(
    name: str,
    env: Env,
    connections: int,
    warmup: float,
    duration: float,
    barrier: multiprocessing.synchronize.Barrier | None,
    server_cpu: int | None,
    mark_file: str | None = None,
    server_pid: int | None = None,
    rate: float | None = None,
) -> ProcResult:
    result = ProcResult()
    workload = WORKLOADS[name]()
    conns = [env.connection() for _ in range(connections)]
    ops: list[Op] = []
    try:
        await workload.prepare(env, conns[0])
        ops = [workload.make_op(env, c, i) for i, c in enumerate(conns)]
        await asyncio.gather(*(op.setup() for op in ops))
    except EXPECTED_ERRORS as exc:  # reported per workload, the other workloads still run
        key, detail = describe(exc)
        result.setup_error = f"{key} {detail}".strip()
    if barrier is not None:
        try:
            barrier.wait(timeout=600)
        except threading.BrokenBarrierError:  # another process failed its setup
            result.setup_error = result.setup_error or "another driver process failed its setup"
    if result.setup_error is not None:
        for conn in conns:
            conn.close()
        return result

    clock = time.perf_counter
    start = clock()
    m0 = start + warmup
    if mark_file:
        write_mark(mark_file, name, time.time() + warmup, duration)
    m1 = m0 + duration
    lat = result.latencies
    errors = result.errors
    samples = result.samples

    async def worker(op: Op) -> None:
        run = op.run
        while True:
            t0 = clock()
            if t0 >= m1:
                return
            try:
                await run()
            except EXPECTED_ERRORS as exc:
                t1 = clock()
                key, detail = describe(exc)
                if m0 <= t1 <= m1:
                    errors[key] += 1
                    samples.setdefault(key, detail)
                await asyncio.sleep(ERROR_PAUSE)
                try:
                    await op.recover()
                except EXPECTED_ERRORS as rexc:
                    key, detail = describe(rexc)
                    samples.setdefault("recover: " + key, detail)
                continue
            t1 = clock()
            if m0 <= t1 <= m1:
                lat.append(t1 - t0)

    async def open_worker(op: Op, plan: _Schedule) -> None:
        """Open loop: take the next scheduled operation, wait for its time, run it; latency from then."""
        run = op.run
        while True:
            now = clock()
            k = plan.take(now)
            if k is None:
                return
            t = plan.due(k)
            measured = plan.first <= k < plan.end
            if now > t:
                # No connection was free at t (each one holds the next scheduled operation while it
                # waits), or the driver itself was behind: the operation starts late.
                result.late += measured
            else:
                await asyncio.sleep(t - now)
            if measured:
                result.start_lags.append(clock() - t)
            try:
                await run()
            except EXPECTED_ERRORS as exc:
                if measured:
                    key, detail = describe(exc)
                    errors[key] += 1
                    samples.setdefault(key, detail)
                try:
                    await op.recover()
                except EXPECTED_ERRORS as rexc:
                    key, detail = describe(rexc)
                    samples.setdefault("recover: " + key, detail)
                continue
            t1 = clock()
            if measured:
                lat.append(t1 - t)
            if m0 <= t1 <= m1:
                result.window_ok += 1

    async def sampler() -> None:
        await asyncio.sleep(max(0.0, m0 - clock()))
        w0, c0 = clock(), time.process_time()
        s0 = read_cpu(server_cpu) if server_cpu is not None else None
        p0 = tree_cpu(server_pid) if server_pid is not None else None
        await asyncio.sleep(max(0.0, m1 - clock()))
        w1, c1 = clock(), time.process_time()
        s1 = read_cpu(server_cpu) if server_cpu is not None else None
        p1 = tree_cpu(server_pid) if server_pid is not None else None
        result.window = duration
        result.cpu = (c1 - c0) * duration / max(w1 - w0, 1e-9)
        if s0 is not None and s1 is not None and s1[1] > s0[1]:
            result.server_busy = (s1[0] - s0[0]) / (s1[1] - s0[1])
        if p0 is not None and p1 is not None:
            result.server_proc = (p1 - p0) / max(w1 - w0, 1e-9)

    if rate:
        plan = _Schedule(start, 1.0 / rate, m0, m1, m1 + OPEN_LOOP_DRAIN)
        await asyncio.gather(sampler(), *(open_worker(op, plan) for op in ops))
        result.scheduled = plan.in_window
        result.missed = plan.missed
    else:
        await asyncio.gather(sampler(), *(worker(op) for op in ops))
        result.window_ok = len(lat)
    result.ok = len(lat)
    result.connects = sum(c.connects for c in conns)
    for conn in conns:
        conn.close()
    return result


class _Schedule:
    """Open-loop schedule: operation k is due at start + k * interval, handed out in order of k.

    Every worker holds one operation at a time: the one it is running, or the next due one it is
    waiting for. So an operation is taken after its time only when every connection was busy then;
    it starts late and its latency, counted from its scheduled time, includes that wait (no
    coordinated omission). Operations due inside [m0, m1) are measured; those not started by
    `deadline` are counted as missed and never run."""

    def __init__(self, start: float, interval: float, m0: float, m1: float, deadline: float) -> None:
        self.start = start
        self.interval = interval
        self.first = max(0, math.ceil((m0 - start) / interval))  # first operation due inside the window
        self.end = max(0, math.ceil((m1 - start) / interval))  # first one due at or after its end
        self.deadline = deadline
        self.next = 0
        self.missed = 0

    @property
    def in_window(self) -> int:
        return self.end - self.first

    def due(self, k: int) -> float:
        return self.start + k * self.interval

    def take(self, now: float) -> int | None:
        """The next operation's number, or None when there is none left to start."""
        k = self.next
        if k >= self.end:
            return None
        if now > self.deadline:
            self.missed += self.end - max(k, self.first)
            self.next = self.end
            return None
        self.next = k + 1
        return k


def _child(
    pipe: multiprocessing.connection.Connection,
    name: str,
    env: Env,
    connections: int,
    warmup: float,
    duration: float,
    barrier: multiprocessing.synchronize.Barrier,
    server_cpu: int | None,
    mark_file: str | None = None,
    server_pid: int | None = None,
    rate: float | None = None,
) -> None:
    crashed = ProcResult(setup_error="driver process crashed (see its traceback above)")
    res = crashed
    try:
        res = asyncio.run(
            _run_proc(
                name, env, connections, warmup, duration, barrier, server_cpu, mark_file, server_pid, rate
            )
        )
    finally:
        if res is crashed:
            barrier.abort()
        pipe.send(res)
        pipe.close()


def _aggregate(
    name: str, connections: int, parts: list[ProcResult], duration: float, rate: float | None = None
) -> WorkloadResult:
    setup_errors = [p.setup_error for p in parts if p.setup_error]
    errors: Counter[str] = Counter()
    samples: dict[str, str] = {}
    for p in parts:
        errors.update(p.errors)
        for k, v in p.samples.items():
            samples.setdefault(k, v)
    lat = sorted(x * 1000.0 for p in parts for x in p.latencies)
    ok = len(lat)
    servers = [p.server_busy for p in parts if p.server_busy is not None]
    procs = [p.server_proc for p in parts if p.server_proc is not None]
    done = sum(p.window_ok for p in parts)  # successes completed inside the window (= ok when closed)
    lags = sorted(x * 1000.0 for p in parts for x in p.start_lags)
    opened: dict[str, Any] = {}
    if rate:
        opened = {
            "rate": rate,
            "scheduled": sum(p.scheduled for p in parts),
            "late": sum(p.late for p in parts),
            "missed": sum(p.missed for p in parts),
            "start_lag_p99": percentile(lags, 99) if lags else None,
            "start_lag_max": lags[-1] if lags else None,
        }
    return WorkloadResult(
        name=name,
        connections=connections,
        processes=len(parts),
        duration=duration,
        ok=ok,
        errors=dict(errors.most_common()),
        samples=samples,
        rps=done / duration if duration > 0 and not setup_errors else 0.0,
        p50=percentile(lat, 50),
        p95=percentile(lat, 95),
        p99=percentile(lat, 99),
        mean=sum(lat) / ok if ok else math.nan,
        max=lat[-1] if lat else math.nan,
        driver_cpu=sum(p.cpu for p in parts) / duration if duration > 0 else 0.0,
        server_cpu=servers[0] if servers else None,
        server_proc_cpu=procs[0] if procs else None,
        connects=sum(p.connects for p in parts),
        setup_error=setup_errors[0] if setup_errors else None,
        **opened,
    )


def run_workload(
    name: str,
    env: Env,
    *,
    connections: int,
    processes: int = 1,
    warmup: float = 2.0,
    duration: float = 10.0,
    server_cpu: int | None = 0,
    mark_file: str | None = None,
    server_pid: int | None = None,
    rate: float | None = None,
) -> WorkloadResult:
    """Run one workload to completion and aggregate what every driver process measured.

    `mark_file`: written (JSON, epoch seconds) when the measurement window's start is known.
    `server_pid`: the CPU of this process and its descendants is measured over the window.
    `rate`: open loop at this many operations/s over all connections (split over the processes in
    proportion to their connections); None: closed loop."""
    processes = max(1, min(processes, connections))
    if processes == 1:
        part = asyncio.run(
            _run_proc(name, env, connections, warmup, duration, None, server_cpu, mark_file, server_pid, rate)
        )
        return _aggregate(name, connections, [part], duration, rate)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(processes)
    pipes: list[multiprocessing.connection.Connection] = []
    procs = []
    for i in range(processes):
        share = connections // processes + (1 if i < connections % processes else 0)
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child,
            args=(
                send,
                name,
                env,
                share,
                warmup,
                duration,
                barrier,
                server_cpu if i == 0 else None,
                mark_file if i == 0 else None,
                server_pid if i == 0 else None,
                rate * share / connections if rate else None,
            ),
        )
        proc.start()
        send.close()
        pipes.append(recv)
        procs.append(proc)
    parts = []
    for recv in pipes:
        try:
            parts.append(recv.recv())
        except EOFError:
            parts.append(ProcResult(setup_error="driver process died without a result"))
    for proc in procs:
        proc.join()
    return _aggregate(name, connections, parts, duration, rate)
