"""The provider under its production server, benchmarked in one command (`bench/production.sh`).

1. drops and recreates a PostgreSQL database, deletes a dedicated Redis prefix, makes a key directory,
   runs `python -m idp migrate` and `python -m idp provision bench/seed.json` (production argon2id);
2. starts gunicorn (gthread) or granian (WSGI) on `--server-cpu` (taskset) and waits for /healthz;
3. runs `bench.run` on `--driver-cpu` (taskset) with every workload and `--argon2-hashes`, JSON into
   bench/results/<server>-<timestamp>.json; then measures the Redis memory of the SSO sessions the run
   created, reruns the `--half-peak` workloads open loop at half the req/s just measured, and
   optionally profiles some workloads with py-spy; the workers' RSS is sampled throughout;
4. stops the server and prints the tables, the three figures (p99 at half of peak, RSS per worker,
   Redis per SSO session) and any tracebacks from the server log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import footprint
from bench.runner import process_tree, read_cpu, tree_cpu
from bench.services_pin import pinned_services

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
ALL_WORKLOADS = "floor,discovery,jwks,client_credentials,introspection,userinfo,refresh,login"
HALF_PEAK = "client_credentials,introspection,userinfo,refresh"
# Workers x threads per server for ONE core, chosen by measurement (see bench/README.md).
DEFAULTS = {"gunicorn": (1, 8), "granian": (1, 8)}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/production.sh", description=__doc__)
    p.add_argument("--server", choices=sorted(DEFAULTS), default="gunicorn")
    p.add_argument("--workers", type=int, help="worker processes (default: per server, see DEFAULTS)")
    p.add_argument(
        "--threads", type=int, help="threads per worker (gunicorn --threads, granian --blocking-threads)"
    )
    p.add_argument("--port", type=int, default=5077)
    p.add_argument("--workloads", default=ALL_WORKLOADS)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per workload")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument(
        "--half-peak",
        default=HALF_PEAK,
        metavar="W1,W2",
        help="after the run, rerun each of these workloads open loop (bench.run --rate) at half the req/s "
        f"the run measured for it, and compare its p99 with {footprint.P99_LIMIT_MS:g} ms ('': skip)",
    )
    p.add_argument(
        "--half-peak-duration", type=float, help="measured seconds per half-peak run (default: --duration)"
    )
    p.add_argument(
        "--argon2-hashes", type=int, default=20, help="argon2id hashes timed by the driver (0: skip)"
    )
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--driver-cpu", type=int, default=1)
    p.add_argument(
        "--services-cpu",
        type=int,
        default=None,
        help="pin the machine's PostgreSQL and redis-server processes to this core for the run "
        "(e.g. the driver's), restored after it; default: leave them to the scheduler",
    )
    p.add_argument("--database", default="idp_bench", help="dropped and recreated")
    p.add_argument("--pg", default="postgres@127.0.0.1:5432", help="user@host:port (trust auth)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--redis-prefix", default="idp-bench:", help="its keys are deleted at start")
    p.add_argument("--seed", type=Path, default=BENCH / "seed.json")
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="IDP_NAME=VALUE",
        help="a server setting for this run, e.g. IDP_ACCESS_TOKEN_ALG=ES256 (repeatable; the "
        "inherited IDP_* variables are never passed, so a run says every setting it changes)",
    )
    p.add_argument(
        "--app-dir",
        type=Path,
        default=ROOT,
        help="the checkout to serve (migrate, provision, wsgi:app); e.g. a frozen copy of the working tree",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON, server log, profiles")
    p.add_argument(
        "--profile",
        default="",
        metavar="W1,W2",
        help="after the run, profile these workloads with py-spy (one driver run each, no floor)",
    )
    p.add_argument("--profile-duration", type=int, default=10, help="seconds py-spy samples per workload")
    p.add_argument("--profile-rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument(
        "--profile-gil",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="sample only the thread holding the GIL (Python CPU time); --no-profile-gil: every busy thread",
    )
    p.add_argument("--skip-benchmark", action="store_true", help="only the --profile runs")
    p.add_argument(
        "--quiet-limit",
        type=float,
        default=0.15,
        help="before starting, wait until both cores are at most this busy (other jobs disturb results)",
    )
    p.add_argument("--quiet-wait", type=float, default=300.0, help="longest wait for a quiet machine, s")
    return p


def log(msg: str) -> None:
    print(f"[production] {msg}", file=sys.stderr, flush=True)


def venv_bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"{path} not found; install it into the virtualenv (.venv/bin/pip install {name})")
    return str(path)


def accounts(seed: dict[str, Any]) -> dict[str, str]:
    """BENCH_* variables for the driver, from the seed: the first authorization-code client, the first
    client_credentials client and the first person."""
    clients = seed.get("clients", [])
    web = next(c for c in clients if "authorization_code" in c.get("grant_types", []))
    svc = next(c for c in clients if "client_credentials" in c.get("grant_types", []))
    person = seed["persons"][0]
    return {
        "BENCH_CLIENT_ID": web["client_id"],
        "BENCH_CLIENT_SECRET": web["client_secret"],
        "BENCH_REDIRECT_URI": web["redirect_uris"][0],
        "BENCH_LOGIN_SCOPE": web.get("scope", "openid"),
        "BENCH_CC_CLIENT_ID": svc["client_id"],
        "BENCH_CC_CLIENT_SECRET": svc["client_secret"],
        "BENCH_CC_SCOPE": svc.get("scope", ""),
        "BENCH_USERNAME": person["username"],
        "BENCH_PASSWORD": person["password"],
    }


def fresh_database(pg: str, name: str) -> str:
    if not NAME.match(name):
        raise SystemExit(f"--database {name!r} is not a plain identifier")
    import psycopg

    with psycopg.connect(f"postgresql://{pg}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://{pg}/{name}"


def clear_redis_prefix(url: str, prefix: str) -> int:
    if not PREFIX.match(prefix):
        raise SystemExit(f"--redis-prefix {prefix!r}: letters, digits and _ . : - only")
    import redis

    client = redis.Redis.from_url(url)
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=prefix + "*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += int(client.delete(*batch))
            batch.clear()
    if batch:
        deleted += int(client.delete(*batch))
    client.close()
    return deleted


def server_env(args: argparse.Namespace, database_url: str, key_dir: str) -> dict[str, str]:
    """The inherited environment without any IDP_* (so nothing lowers argon2id or the like) plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "BENCH_", "GRANIAN_"))}
    env.update(
        {
            "IDP_ISSUER": f"http://127.0.0.1:{args.port}",
            "IDP_DATABASE_URL": database_url,
            "IDP_REDIS_URL": args.redis_url,
            "IDP_REDIS_PREFIX": args.redis_prefix,
            "IDP_KEY_DIR": key_dir,
            "PYTHONUNBUFFERED": "1",
        }
    )
    for item in getattr(args, "settings", []):  # bench/scale.py has no --set
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("IDP_") or name in env:
            raise SystemExit(f"--set {item!r}: IDP_NAME=VALUE, not one of the settings the run makes")
        env[name] = value
    return env


def server_command(args: argparse.Namespace) -> list[str]:
    pin = ["taskset", "-c", str(args.server_cpu)]
    bind_host = "127.0.0.1"
    if args.server == "gunicorn":
        return pin + [
            venv_bin("gunicorn"),
            "-w", str(args.workers),
            "-k", "gthread",
            "--threads", str(args.threads),
            "-b", f"{bind_host}:{args.port}",
            "--error-logfile", "-",
            "wsgi:app",
        ]  # fmt: skip
    return pin + [
        venv_bin("granian"),
        "--interface", "wsgi",
        "--workers", str(args.workers),
        "--blocking-threads", str(args.threads),
        "--host", bind_host,
        "--port", str(args.port),
        "--no-access-log",
        "wsgi:app",
    ]  # fmt: skip


def server_version(server: str) -> str:
    from importlib.metadata import version

    return f"{server} {version(server)}"


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); see {log_path}:\n{tail(log_path)}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"/healthz did not answer within {timeout:.0f} s; see {log_path}:\n{tail(log_path)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (we started it in its own session), then SIGKILL."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def server_log_problems(path: Path) -> list[str]:
    """Tracebacks and ERROR lines in the server log, each with its last line (the exception)."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j].strip()):
                j += 1
            frames = [x.strip() for x in lines[i:j] if x.strip().startswith("File ")]
            last = lines[j] if j < len(lines) else ""
            out.append(f"{last}  <- {frames[-1] if frames else '?'}")
            i = j + 1
            continue
        if " ERROR " in line or "[ERROR]" in line or "CRITICAL" in line:
            out.append(line)
        i += 1
    return out


def core_busy(cores: list[int]) -> dict[int, tuple[int, int]]:
    """(busy, total) jiffies per core."""
    out = {}
    for core in cores:
        value = read_cpu(core)
        if value is not None:
            out[core] = value
    return out


def wait_quiet(cores: list[int], limit: float, max_wait: float) -> dict[int, float]:
    """Wait (up to max_wait s) until every core is under `limit` busy over 2 s; the last shares."""
    deadline = time.monotonic() + max_wait
    while True:
        a = core_busy(cores)
        time.sleep(2.0)
        b = core_busy(cores)
        shares = {c: (b[c][0] - a[c][0]) / max(1, b[c][1] - a[c][1]) for c in cores if c in a and c in b}
        if all(v <= limit for v in shares.values()):
            return shares
        if time.monotonic() >= deadline:
            log(f"WARNING: the machine is not quiet ({fmt_shares(shares)}); results will be disturbed")
            return shares
        log(f"waiting for a quiet machine ({fmt_shares(shares)} busy) ...")
        time.sleep(3.0)


def redis_used_memory(url: str) -> int | None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return footprint.used_memory(client)
    except redis.RedisError:
        return None
    finally:
        client.connection_pool.disconnect()


def redis_sessions(args: argparse.Namespace, used_before: int | None) -> dict[str, Any]:
    import redis

    try:
        return footprint.session_memory(args.redis_url, args.redis_prefix, used_before)
    except redis.RedisError as exc:
        return {"prefix": args.redis_prefix, "error": f"{type(exc).__name__}: {exc}"}


def fmt_shares(shares: dict[int, float]) -> str:
    return ", ".join(f"core {c} {v:.0%}" for c, v in shares.items())


def driver_command(args: argparse.Namespace, base_url: str, server_pid: int, extra: list[str]) -> list[str]:
    return [
        "taskset", "-c", str(args.driver_cpu),
        sys.executable, "-m", "bench.run",
        "--base-url", base_url,
        "--connections", str(args.connections),
        "--warmup", f"{args.warmup:g}",
        "--server-cpu", str(args.server_cpu),
        "--server-pid", str(server_pid),
        *extra,
    ]  # fmt: skip


def run_benchmark(
    args: argparse.Namespace,
    base_url: str,
    env: dict[str, str],
    server_pid: int,
    json_path: Path,
    mark: Path | None = None,
) -> tuple[int, str]:
    cmd = driver_command(
        args,
        base_url,
        server_pid,
        [
            "--workloads", args.workloads,
            "--duration", f"{args.duration:g}",
            "--argon2-hashes", str(args.argon2_hashes),
            "--json", str(json_path),
            *(["--mark-file", str(mark)] if mark is not None else []),
        ],
    )  # fmt: skip
    log("driver: " + " ".join(cmd))
    done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
    return done.returncode, done.stdout


def half_peak(
    args: argparse.Namespace,
    base_url: str,
    env: dict[str, str],
    server_pid: int,
    json_path: Path,
    sampler: footprint.RssSampler | None = None,
) -> list[dict[str, Any]]:
    """Each --half-peak workload, open loop at half the req/s the closed-loop run got (from its JSON)."""
    wanted = [w.strip() for w in args.half_peak.split(",") if w.strip()]
    if not wanted:
        return []
    closed: dict[str, dict[str, Any]] = {}
    if json_path.exists():
        closed = {r["name"]: r for r in json.loads(json_path.read_text(encoding="utf-8"))["results"]}
    duration = args.half_peak_duration or args.duration
    out = []
    with tempfile.TemporaryDirectory(prefix="idp-bench-half-") as tmp:
        for workload in wanted:
            row = closed.get(workload)
            peak = float(row["rps"]) if row is not None and not row.get("setup_error") else 0.0
            if peak <= 0:
                out.append(footprint.half_peak_entry(workload, peak, None, "no closed-loop req/s measured"))
                continue
            path = Path(tmp) / f"{workload}.json"
            cmd = driver_command(
                args,
                base_url,
                server_pid,
                [
                    "--workloads", workload,
                    "--rate", f"{peak / 2:.3f}",
                    "--duration", f"{duration:g}",
                    "--json", str(path),
                ],
            )  # fmt: skip
            log(f"half of peak: {workload} open loop at {peak / 2:.1f}/s (peak {peak:.1f}/s)")
            if sampler is not None:
                sampler.phase = f"half peak {workload}"
            done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
            rows = json.loads(path.read_text(encoding="utf-8"))["results"] if path.exists() else []
            note = f"driver exit {done.returncode}:\n{done.stdout[-600:]}"
            out.append(footprint.half_peak_entry(workload, peak, rows[0] if rows else None, note))
            time.sleep(1.0)
    return out


def profile(
    args: argparse.Namespace, base_url: str, env: dict[str, str], server_pid: int, stem: str
) -> list[tuple[str, Path, str]]:
    """py-spy (on the driver's core, non-blocking) during each workload's measurement window."""
    py_spy = venv_bin("py-spy")
    out: list[tuple[str, Path, str]] = []
    for workload in [w.strip() for w in args.profile.split(",") if w.strip()]:
        mark = args.out / f"{stem}-{workload}.mark"
        mark.unlink(missing_ok=True)
        folded = args.out / f"{stem}-{workload}.folded"
        cmd = driver_command(
            args,
            base_url,
            server_pid,
            [
                "--workloads", workload,
                "--no-floor",
                "--duration", str(args.profile_duration + 1),
                "--mark-file", str(mark),
            ],
        )  # fmt: skip
        log(f"profiling {workload}: driver + py-spy for {args.profile_duration} s of its measurement window")
        driver = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        while not mark.exists() and driver.poll() is None:
            time.sleep(0.05)
        if not mark.exists():
            out.append((workload, folded, f"driver ended before measuring:\n{driver.communicate()[0]}"))
            continue
        start = json.loads(mark.read_text())["measure_from"]
        time.sleep(max(0.0, start - time.time()))
        spy = [
            "taskset", "-c", str(args.driver_cpu),
            py_spy, "record", "--pid", str(server_pid), "--subprocesses", "--nonblocking",
            "--full-filenames", "--function", *(["--gil"] if args.profile_gil else []),
            "--rate", str(args.profile_rate), "--duration", str(args.profile_duration),
            "--format", "raw", "--output", str(folded),
        ]  # fmt: skip
        subprocess.run(spy, check=False, stdout=subprocess.DEVNULL)
        table = driver.communicate()[0]
        mark.unlink(missing_ok=True)
        out.append((workload, folded, table))
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dw, dt = DEFAULTS[args.server]
    args.workers = args.workers or dw
    args.threads = args.threads or dt
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stem = f"{args.server}-{stamp}"
    json_path = args.out / f"{stem}.json"
    log_path = args.out / f"{stem}.server.log"
    seed = json.loads(args.seed.read_text(encoding="utf-8"))
    base_url = f"http://127.0.0.1:{args.port}"

    cmd = server_command(args)  # first: it fails early if the server is not installed
    version = server_version(args.server)
    database_url = fresh_database(args.pg, args.database)
    log(f"database {args.database} recreated; {clear_redis_prefix(args.redis_url, args.redis_prefix)} "
        f"Redis keys under {args.redis_prefix!r} deleted")  # fmt: skip
    key_dir = tempfile.mkdtemp(prefix="idp-bench-keys-")
    env = server_env(args, database_url, key_dir)
    python = sys.executable
    args.app_dir = args.app_dir.resolve()
    for step in (["migrate"], ["provision", str(args.seed.resolve())]):
        done = subprocess.run(
            [python, "-m", "idp", *step],
            cwd=args.app_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            shutil.rmtree(key_dir, ignore_errors=True)
            raise SystemExit(f"python -m idp {step[0]} failed:\n{done.stdout}{done.stderr}")
        log(f"python -m idp {' '.join(step)}: ok")

    log(f"server ({version}): {' '.join(cmd)}  > {log_path}")
    with open(log_path, "wb") as server_log:
        proc = subprocess.Popen(  # stopped (and key_dir removed) in the finally below
            cmd,
            cwd=args.app_dir,
            env=env,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    status = 0
    table = ""
    quiet: dict[int, float] = {}
    share = float("nan")
    core_s = 0.0
    profiles: list[tuple[str, Path, str]] = []
    halves: list[dict[str, Any]] = []
    sessions: dict[str, Any] | None = None
    rss: dict[str, Any] | None = None
    sampler = footprint.RssSampler(proc.pid)
    services = ExitStack()
    try:
        pinned = services.enter_context(pinned_services(args.services_cpu))
        if pinned:
            log(f"PostgreSQL and Redis ({len(pinned)} processes) pinned to core {args.services_cpu}")
        wait_healthy(base_url, proc, log_path)
        time.sleep(1.0)  # let every worker finish importing
        workers = process_tree(proc.pid)[1:]
        log(f"server up: pid {proc.pid}, processes below it {workers}")
        sampler.start()
        driver_env = dict(os.environ) | accounts(seed)
        cores = [args.server_cpu, args.driver_cpu]
        quiet = wait_quiet(cores, args.quiet_limit, args.quiet_wait)
        log(f"machine before the run: {fmt_shares(quiet)} busy")
        used_before = redis_used_memory(args.redis_url)
        cpu0, busy0 = tree_cpu(proc.pid) or 0.0, core_busy([args.server_cpu])
        if not args.skip_benchmark:
            mark = args.out / f"{stem}.mark"
            sampler.phase, sampler.mark_file = "closed loop", mark
            try:
                status, table = run_benchmark(args, base_url, driver_env, proc.pid, json_path, mark)
            finally:
                sampler.phase, sampler.mark_file = "after the closed loop", None
                mark.unlink(missing_ok=True)
        cpu1, busy1 = tree_cpu(proc.pid) or 0.0, core_busy([args.server_cpu])
        core_s = (busy1[args.server_cpu][0] - busy0[args.server_cpu][0]) / os.sysconf("SC_CLK_TCK")
        share = (cpu1 - cpu0) / core_s if core_s > 0 else float("nan")
        if not args.skip_benchmark:
            # the SSO sessions the run's logins left (then deleted, for the used_memory cross-check)
            sessions = redis_sessions(args, used_before)
            log(footprint.redis_line(sessions))
            halves = half_peak(args, base_url, driver_env, proc.pid, json_path, sampler)
            if any(h.get("error") or h.get("error_count") or h.get("setup_error") for h in halves):
                status = status or 1
        if args.profile:
            sampler.phase = "profiling"
            profiles = profile(args, base_url, driver_env, proc.pid, stem)
    finally:
        rss = sampler.finish()  # one last sample, before the server stops
        stop(proc)
        services.close()  # the services' affinities restored
        shutil.rmtree(key_dir, ignore_errors=True)
    log(f"server stopped (exit {proc.returncode})")

    info = {
        "server": args.server,
        "version": version,
        "workers": args.workers,
        "threads": args.threads,
        "command": cmd,
        "app_dir": str(args.app_dir),
        "settings": list(getattr(args, "settings", [])),
        "server_log": str(log_path),
        "core_busy_before": quiet,
        "services_cpu": args.services_cpu,
        "server_share_of_core_busy": share,
    }
    figures = {
        "half_peak": halves,
        "rss_per_worker": rss,
        "redis_per_sso_session": sessions,
    }
    if json_path.exists() or rss is not None:
        data = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {}
        data["server"] = info
        data |= figures
        json_path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    services_on = "" if args.services_cpu is None else f"; PostgreSQL and Redis on core {args.services_cpu}"
    print(f"\n{version}: {args.workers} worker(s) x {args.threads} threads on core {args.server_cpu}; "
          f"driver on core {args.driver_cpu}{services_on}; {args.connections} connections; app {args.app_dir}")  # fmt: skip
    if table:
        print(table, end="")
        print(
            f"server processes used {share:.0%} of core {args.server_cpu}'s busy time "
            f"({core_s:.0f} s) during the run; the rest is PostgreSQL, Redis, the kernel or other jobs"
        )
    if halves:
        print(
            "\n"
            + footprint.half_peak_table(halves, args.connections, args.half_peak_duration or args.duration)
        )
    print()
    if halves:
        verdicts = ", ".join(
            f"{h['workload']} {footprint.ms(h.get('p99'))} ms {'yes' if h['p99_within_limit'] else 'NO'}"
            for h in halves
        )
        print(f"p99 at half of peak load <= {footprint.P99_LIMIT_MS:g} ms: {verdicts}")
    if rss is not None:
        print(footprint.rss_line(rss))
    if sessions is not None:
        print(footprint.redis_line(sessions))
    if table or rss is not None:
        print(f"JSON: {json_path}")
    for workload, folded, ptable in profiles:
        print(f"\nprofile of {workload}: {folded}\n{ptable}", end="")
        if folded.exists():
            from bench import hotspots

            print(hotspots.render(hotspots.load(folded)))
    problems = server_log_problems(log_path)
    if problems:
        print(f"\nserver log {log_path}: {len(problems)} error(s); the first ones:")
        for line in problems[:10]:
            print("  " + line[:300])
        status = status or 1
    else:
        print(f"server log {log_path}: no tracebacks or ERROR lines")
    return status


if __name__ == "__main__":
    sys.exit(main())
