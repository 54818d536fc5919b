"""Command line: `python -m bench.run --base-url URL --workloads floor,login ...` (see bench/README.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

from bench import report, wrk
from bench.env import EXPECTED_ERRORS, Env, Settings
from bench.http import target_of
from bench.runner import WorkloadResult, describe, run_workload
from bench.workloads import WORKLOADS, login

DEFAULT_WORKLOADS = "floor,discovery,jwks,client_credentials,introspection,userinfo,refresh,login"
WRK_WORKLOADS = ("floor", "discovery", "jwks", "userinfo")
WRK_ERRORS: tuple[type[Exception], ...] = (*EXPECTED_ERRORS, RuntimeError, subprocess.SubprocessError)


def _env(name: str, default: str) -> str:
    return os.environ.get(f"BENCH_{name}", default)


def build_parser() -> argparse.ArgumentParser:
    d = Settings()
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        epilog="The URL and account options default to $BENCH_<OPTION> (e.g. BENCH_CLIENT_SECRET, "
        "BENCH_BASE_URL), else to the accounts of bench/standin.py.",
    )
    p.add_argument("--base-url", default=_env("BASE_URL", d.base_url))
    p.add_argument("--workloads", default=DEFAULT_WORKLOADS, help=f"comma list from: {', '.join(WORKLOADS)}")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per workload")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each measurement")
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    p.add_argument("--processes", type=int, default=1, help="driver processes sharing the connections")
    p.add_argument("--timeout", type=float, default=d.timeout, help="per-request timeout (s)")
    p.add_argument("--pause", type=float, default=1.0, help="idle seconds between workloads")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument(
        "--mark-file",
        metavar="FILE",
        help="write each workload's measurement start (JSON, epoch seconds) here, for a profiler",
    )
    p.add_argument(
        "--no-floor", action="store_true", help="do not add the floor workload (e.g. while profiling)"
    )
    p.add_argument(
        "--rate",
        type=float,
        metavar="R",
        help="open loop: start R operations/s in total over all connections, at fixed intervals; latency "
        "from each operation's scheduled start (floor is then not added). Default: closed loop",
    )
    p.add_argument(
        "--argon2-hashes",
        type=int,
        default=0,
        metavar="N",
        help="after the workloads, time N argon2id hashes in this process and compare login/s with 1/(hash time)",
    )
    p.add_argument("--argon2-time-cost", type=int, default=2, help="argon2id t (the provider's default)")
    p.add_argument("--argon2-memory-kib", type=int, default=19 * 1024, help="argon2id m in KiB (default)")
    p.add_argument("--argon2-parallelism", type=int, default=1, help="argon2id p (the provider's default)")
    p.add_argument("--cc-client-id", default=_env("CC_CLIENT_ID", d.cc_client_id))
    p.add_argument("--cc-client-secret", default=_env("CC_CLIENT_SECRET", d.cc_client_secret))
    p.add_argument("--cc-scope", default=_env("CC_SCOPE", d.cc_scope))
    p.add_argument("--client-id", default=_env("CLIENT_ID", d.client_id))
    p.add_argument("--client-secret", default=_env("CLIENT_SECRET", d.client_secret))
    p.add_argument("--redirect-uri", default=_env("REDIRECT_URI", d.redirect_uri))
    p.add_argument("--username", default=_env("USERNAME", d.username))
    p.add_argument("--password", default=_env("PASSWORD", d.password))
    p.add_argument(
        "--username-file",
        default=_env("USERNAME_FILE", "") or None,
        metavar="FILE",
        help="one login identifier a line (username, mobile or ID number, same --password); each login "
        "picks one at random instead of --username",
    )
    p.add_argument("--login-scope", default=_env("LOGIN_SCOPE", d.login_scope))
    p.add_argument("--identifier-field", default=d.identifier_field)
    p.add_argument("--password-field", default=d.password_field)
    p.add_argument("--introspection-tokens", type=int, default=d.introspection_tokens)
    p.add_argument(
        "--server-cpu",
        type=int,
        default=0,
        help="core the server is pinned to; its busy share is reported from /proc/stat (-1: off)",
    )
    p.add_argument(
        "--server-pid",
        type=int,
        help="the server's master process: its CPU (with every descendant) is the 'srv proc' column",
    )
    p.add_argument("--driver-cpus", help="pin the driver to these cores, e.g. '1' (like taskset -c 1)")
    p.add_argument(
        "--wrk-compare", action="store_true", help=f"also run wrk on {', '.join(WRK_WORKLOADS)} and compare"
    )
    p.add_argument(
        "--self-test",
        action="store_true",
        help="measure the driver's ceiling on a null server and compare it (and wrk) with the server floor",
    )
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        base_url=args.base_url,
        timeout=args.timeout,
        cc_client_id=args.cc_client_id,
        cc_client_secret=args.cc_client_secret,
        cc_scope=args.cc_scope,
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uri=args.redirect_uri,
        username=args.username,
        password=args.password,
        usernames=read_usernames(args.username_file),
        login_scope=args.login_scope,
        identifier_field=args.identifier_field,
        password_field=args.password_field,
        introspection_tokens=args.introspection_tokens,
    )


def read_usernames(path: str | None) -> tuple[str, ...]:
    """The identifiers in a --username-file (one a line, blank lines and # comments skipped)."""
    if not path:
        return ()
    with open(path, encoding="utf-8") as fh:
        names = tuple(line.strip() for line in fh if line.strip() and not line.lstrip().startswith("#"))
    if not names:
        raise ValueError(f"--username-file {path} holds no identifiers")
    return names


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    hidden = {"cc_client_secret", "client_secret", "password"}
    return {k: ("***" if k in hidden else v) for k, v in vars(args).items()}


def wrk_target(name: str, env: Env) -> tuple[str, list[tuple[str, str]]]:
    """The URL (on the base URL's server) and headers wrk should use for a GET workload."""
    if name == "floor":
        return env.url("/healthz"), []
    if name == "discovery":
        return env.url("/.well-known/openid-configuration"), []
    origin = f"{env.scheme}://{env.host_header}"
    if name == "jwks":
        return origin + target_of(env.ep.jwks), []
    if name == "userinfo":

        async def token() -> str:
            conn = env.connection()
            try:
                return str((await login(env, conn))["access_token"])
            finally:
                conn.close()

        return origin + target_of(env.ep.userinfo), [("Authorization", f"Bearer {asyncio.run(token())}")]
    raise ValueError(name)


def compare_with_wrk(name: str, env: Env, args: argparse.Namespace) -> dict[str, Any] | None:
    try:
        url, headers = wrk_target(name, env)
        return wrk.run_wrk(
            url, connections=args.connections, duration=args.duration, headers=headers, timeout=args.timeout
        )
    except WRK_ERRORS as exc:
        print(f"  wrk comparison for {name} failed: {describe(exc)[0]}", file=sys.stderr)
        return None


def set_floor_fractions(results: list[WorkloadResult]) -> None:
    floor = next((r for r in results if r.name == "floor" and r.rps > 0 and not r.open_loop), None)
    for r in results:  # open loop: req/s is the chosen rate, not a capacity, so there is no ratio
        r.fraction_of_floor = r.rps / floor.rps if floor is not None and not r.open_loop else None


def header(env: Env, args: argparse.Namespace) -> str:
    aff = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    return (
        f"target {env.settings.base_url}  connections {args.connections}  processes {args.processes}  "
        f"warm-up {args.warmup:g}s  duration {args.duration:g}s  driver cores {aff}  "
        f"server core {args.server_cpu if args.server_cpu >= 0 else '-'}"
        + (f"  open loop at {args.rate:g} op/s" if args.rate else "")
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.driver_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.driver_cpus.split(",")})
    try:
        env = Env(settings_from(args))
    except (ValueError, OSError) as exc:  # a bad URL; an unreadable or empty --username-file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.self_test:
        from bench import selftest

        return selftest.main(env, args)

    names = [n.strip() for n in args.workloads.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        print(f"error: unknown workloads {unknown}; choose from {', '.join(WORKLOADS)}", file=sys.stderr)
        return 2
    if args.rate is not None and (args.rate <= 0 or args.wrk_compare):
        print(
            "error: --rate must be > 0 and cannot go with --wrk-compare (wrk is closed-loop)", file=sys.stderr
        )
        return 2
    if "floor" not in names and not args.no_floor and not args.rate:
        names.insert(0, "floor")
        print("note: adding the floor workload (the baseline for 'x floor')", file=sys.stderr)
    if any(WORKLOADS[n].needs_discovery for n in names):
        try:
            asyncio.run(env.discover())
        except EXPECTED_ERRORS as exc:
            print(f"error: discovery at {env.settings.base_url} failed: {exc}", file=sys.stderr)
            return 2
    for note in env.notes:
        print(f"note: {note}", file=sys.stderr)
    server_cpu = args.server_cpu if args.server_cpu >= 0 else None

    print(header(env, args), flush=True)
    results: list[WorkloadResult] = []
    for i, name in enumerate(names):
        if i:
            time.sleep(args.pause)
        print(f"  {name} ...", end="", file=sys.stderr, flush=True)
        r = run_workload(
            name,
            env,
            connections=args.connections,
            processes=args.processes,
            warmup=args.warmup,
            duration=args.duration,
            server_cpu=server_cpu,
            mark_file=args.mark_file,
            server_pid=args.server_pid,
            rate=args.rate,
        )
        late = f", {r.late} late, {r.missed} missed" if r.open_loop else ""
        print(
            f" {r.rps:.1f}/s, {r.error_count} errors{late}" if not r.setup_error else " setup failed",
            file=sys.stderr,
        )
        if args.wrk_compare and name in WRK_WORKLOADS and not r.setup_error:
            time.sleep(args.pause)
            r.wrk = compare_with_wrk(name, env, args)
        results.append(r)
    set_floor_fractions(results)
    print(report.table(results), flush=True)
    extra: dict[str, Any] = {}
    if args.argon2_hashes > 0:
        extra["argon2"] = argon2_line(args, results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(report.to_json(results, config_of(args) | {"endpoints": _endpoints(env)}, extra))
    return 1 if any(r.flagged for r in results) else 0


def argon2_line(args: argparse.Namespace, results: list[WorkloadResult]) -> dict[str, Any]:
    """Time argon2id here (the driver's core, server idle), print it against login/s; the JSON part."""
    from bench import argon2_cost

    print(f"  argon2id: timing {args.argon2_hashes} hashes ...", file=sys.stderr, flush=True)
    cost = argon2_cost.measure(
        args.argon2_hashes, args.argon2_time_cost, args.argon2_memory_kib, args.argon2_parallelism
    )
    login_row = next((r for r in results if r.name == "login" and r.setup_error is None), None)
    login_rps = login_row.rps if login_row is not None else None
    print(cost.line(login_rps), flush=True)
    return cost.as_dict(login_rps)


def _endpoints(env: Env) -> dict[str, str] | None:
    return asdict(env.endpoints) if env.endpoints is not None else None


if __name__ == "__main__":
    sys.exit(main())
