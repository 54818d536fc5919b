"""Cost independent of size: login and token latency with 10 k and with 1 M seeded persons, one command
(`bench/scale.sh`). Reuses `bench/production.py` for the databases, the servers and the driver.

1. makes two scratch PostgreSQL databases, `<--database>_small` and `<--database>_large` (default
   idp_scale_*), each migrated and provisioned with bench/seed.json (the bench clients), with its own
   Redis prefix; seeds the small one with `python -m idp seed-bulk --persons 10000 --entities 1000`,
   and the large one the same way and then up to `--large` persons and `--large-entities` entities
   (1 M and 100 k: timed, the command's speed); VACUUM ANALYZE and CHECKPOINT on both (so the bulk
   load's checkpoint does not run into a measurement);
2. starts the production server twice (gunicorn or granian, as production.sh does, both pinned to
   core 0), one per database; one of them is idle while the other is measured;
3. `--rounds` rounds: each workload (default client_credentials, introspection, userinfo, refresh for
   `--duration`, login for `--login-duration`) runs with `bench.run` on core 1 against one server and
   at once against the other (the order alternates per round), so both figures of a pair come from
   the same minute of this shared VM, whose speed drifts by 20-30 % over minutes. A pair is reported
   but done again (up to 3 times) when either run had errors, when a server's processes got under 90 %
   of their core's busy time, or when other people's processes (anything but this command and its
   children, Redis and PostgreSQL serving our databases) used over 5 % of a core meanwhile.
   Logins sign in as seeded persons drawn at random from those who represent no entity (a
   representative must use a second factor), by username, mobile number or identity number in turn
   (`bench.run --username-file`), so each login reads a different row, most of them deep in the table;
4. prints per workload req/s and p50/p95/p99 at both sizes (medians over the rounds) and the median
   of the paired ratios large/small, with the 1.2x verdict (latency ratio <= 1.2, req/s ratio >= 1/1.2);
5. explain pass (`--explain`, default on) at the large size: the plans of every statement the server
   ran during one short run of each workload (auto_explain into the PostgreSQL log) and of the other
   person and entity lookups (bench/scale_explain.py), summarised per statement;
6. stops the servers and drops both databases (unless `--keep-database`). Exit status 0 only if every
   run was clean and every figure within the limit.

Everything printed is also in bench/results/scale-<stamp>.txt; the JSON of every run beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import production
from bench.production import RESULTS, ROOT, log
from bench.runner import process_tree

WORKLOADS = "client_credentials,introspection,userinfo,refresh,login"
FIGURES = ("rps", "p50", "p95", "p99")
LIMIT = 1.2
DISTURBED = 0.9  # a run counts only if the server's own processes used >= 90% of its core's busy time
FOREIGN = 0.05  # ... and other people's processes used at most 5% of a core on average meanwhile
ATTEMPTS = 3  # per pair
AUX_PROCESSES = frozenset(
    {"checkpointer", "background", "walwriter", "autovacuum", "logical", "archiver", "startup", "walsender"}
)
PASSWORD = "Scale#Password2026"  # every seeded person's (synthetic load data)
PG_LOG = "/var/log/postgresql/postgresql-15-main.log"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/scale.sh", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--small", type=int, default=10_000, help="persons in the small database")
    p.add_argument("--large", type=int, default=1_000_000, help="persons in the large database")
    p.add_argument(
        "--small-entities", type=int, help="legal entities in the small database (default small/10)"
    )
    p.add_argument(
        "--large-entities", type=int, help="legal entities in the large database (default large/10)"
    )
    p.add_argument("--logins", type=int, default=3000, help="distinct seeded persons the login workload uses")
    p.add_argument(
        "--rounds", type=int, default=3, help="undisturbed pairs per workload; figures are medians"
    )
    p.add_argument("--workloads", default=WORKLOADS)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per token workload")
    p.add_argument(
        "--login-duration",
        type=float,
        default=30.0,
        help="measured seconds of the login workload (about 15 logins/s: longer for steadier tails)",
    )
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--server", choices=sorted(production.DEFAULTS), default="gunicorn")
    p.add_argument("--workers", type=int)
    p.add_argument("--threads", type=int)
    p.add_argument(
        "--port", type=int, default=5078, help="the small database's server; the large one's is +1"
    )
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--driver-cpu", type=int, default=1)
    p.add_argument("--database", default="idp_scale", help="prefix of the two scratch databases (recreated)")
    p.add_argument("--keep-database", action="store_true", help="leave the databases for inspection")
    p.add_argument("--pg", default="postgres@127.0.0.1:5432", help="user@host:port (trust auth)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--redis-prefix", default="idp-scale:", help="its keys are deleted at start and end")
    p.add_argument("--seed-file", type=Path, default=production.BENCH / "seed.json", help="the bench clients")
    p.add_argument("--batch", type=int, default=10_000, help="seed-bulk --batch")
    p.add_argument("--explain", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--pg-log", default=PG_LOG, help="the PostgreSQL server log auto_explain writes to")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--quiet-limit", type=float, default=0.15)
    p.add_argument("--quiet-wait", type=float, default=300.0)
    return p


class Tee:
    """Print to stdout and to the results file."""

    def __init__(self, path: Path) -> None:
        self.fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in main

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)
        self.fh.write(text + "\n")
        self.fh.flush()


def psql(pg: str, database: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(f"postgresql://{pg}/{database}", autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def idp(env: dict[str, str], *args: str, echo: Tee | None = None) -> str:
    """`python -m idp ARGS` with the benchmark's environment; its output (echoed line by line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "idp", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        if echo is not None and " INFO " not in line:
            echo(f"    {line}")
    if proc.wait() != 0:
        raise SystemExit(f"python -m idp {args[0]} failed:\n" + "\n".join(lines[-30:]))
    return "\n".join(lines)


def logins_file(path: Path, persons: int, entities: int, count: int) -> int:
    """Identifiers of seeded persons who represent no entity (index >= entities), at random."""
    from idp.services.bulk_seed import DEFAULT_SEED, synthetic_person

    pool = range(entities, persons)
    picked = random.Random(persons).sample(pool, min(count, len(pool)))
    with open(path, "w", encoding="utf-8") as fh:
        for k, index in enumerate(picked):
            person = synthetic_person(DEFAULT_SEED, index)
            fh.write((person.username, person.phone_number, person.id_number)[k % 3] + "\n")
    return len(picked)


def start_server(args: argparse.Namespace, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    cmd = production.server_command(args)
    log(f"server: {' '.join(cmd)}  > {log_path}")
    with open(log_path, "ab") as server_log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        production.wait_healthy(f"http://127.0.0.1:{args.port}", proc, log_path)
    except BaseException:
        production.stop(proc)
        raise
    time.sleep(1.0)
    return proc


def drive(
    args: argparse.Namespace,
    env: dict[str, str],
    port: int,
    pid: int,
    json_path: Path,
    logins: Path,
    extra: list[str],
    *,
    workloads: str,
    duration: float,
    warmup: float,
    connections: int,
) -> tuple[int, str]:
    """One `bench.run` on the driver's core against the server on `port` (pid: its master)."""
    run_args = argparse.Namespace(**{**vars(args), "warmup": warmup, "connections": connections})
    cmd = production.driver_command(
        run_args,
        f"http://127.0.0.1:{port}",
        pid,
        [
            "--workloads", workloads,
            "--duration", f"{duration:g}",
            "--username-file", str(logins),
            "--json", str(json_path),
            *extra,
        ],
    )  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
    return done.returncode, done.stdout


@dataclass
class Side:
    """One database and the server in front of it."""

    label: str
    persons: int
    entities: int
    args: argparse.Namespace  # the command line with this side's port, database and Redis prefix
    env: dict[str, str] = field(default_factory=dict)
    logins: Path = Path()
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = Path()
    seeding: list[str] = field(default_factory=list)

    @property
    def database(self) -> str:
        return str(self.args.database)

    @property
    def port(self) -> int:
        return int(self.args.port)


def make_side(args: argparse.Namespace, label: str, persons: int, entities: int, offset: int) -> Side:
    own = argparse.Namespace(
        **{
            **vars(args),
            "database": f"{args.database}_{label}",
            "port": args.port + offset,
            "redis_prefix": f"{args.redis_prefix}{label}:",
        }
    )
    return Side(label, persons, entities, own)


def prepare(
    side: Side, args: argparse.Namespace, out: Tee, key_dir: str, steps: list[tuple[int, int]]
) -> None:
    """Fresh database and Redis prefix, migrate, provision the bench clients, seed in `steps`."""
    url = production.fresh_database(args.pg, side.database)
    production.clear_redis_prefix(args.redis_url, side.args.redis_prefix)
    side.env = production.server_env(side.args, url, key_dir)
    idp(side.env, "migrate")
    idp(side.env, "provision", str(args.seed_file.resolve()))
    out(f"\n== {side.label}: database {side.database} ==")
    for persons, entities in steps:
        began = time.monotonic()
        out(f"  python -m idp seed-bulk --persons {persons} --entities {entities} --batch {args.batch}")
        idp(
            side.env, "seed-bulk", "--persons", str(persons), "--entities", str(entities),
            "--password", PASSWORD, "--batch", str(args.batch), echo=out,
        )  # fmt: skip
        side.seeding.append(f"{persons:,} persons, {entities:,} entities: {time.monotonic() - began:.1f} s")
        out(f"    (the whole process: {time.monotonic() - began:.1f} s)")
    began = time.monotonic()
    # VACUUM ANALYZE: visibility map and statistics as after normal operation; CHECKPOINT: write out the
    # bulk load now, or the checkpoint it triggers runs through the measurement (seen: p99 x1.6)
    psql(args.pg, side.database, "VACUUM ANALYZE", "CHECKPOINT")
    out(f"  VACUUM ANALYZE + CHECKPOINT {time.monotonic() - began:.1f} s")


class ForeignCpu:
    """CPU time used by processes that are not part of the benchmark (other people's jobs on this VM),
    sampled twice a second: ours are this process and its children (the server, the driver), Redis,
    and PostgreSQL's own processes and its backends for our databases (`<prefix>_*`)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.seconds = 0.0
        self._last: dict[int, float] = {}
        self._kind: dict[int, bool] = {}  # pid -> foreign?
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._began = 0.0
        self.share = 0.0

    def _ours(self, database: str) -> bool:
        return database == "postgres" or database.startswith(f"{self.prefix}_")

    def _foreign(self, pid: int, ours: set[int]) -> bool:
        if pid in ours:
            return False
        if pid not in self._kind:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    cmdline = fh.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                return False
            if not cmdline or "redis-server" in cmdline or cmdline.startswith("/usr/lib/postgresql/"):
                self._kind[pid] = False  # kernel threads, Redis, the postmaster
            elif cmdline.startswith("postgres: "):
                # a backend: "postgres: 15/main: <user> <database> <host> <state>"; else a background
                # process ("checkpointer", "walwriter", "autovacuum worker <database>", ...)
                fields = cmdline.split() + ["", "", ""]
                if fields[2] in AUX_PROCESSES:
                    self._kind[pid] = (
                        fields[2] == "autovacuum" and fields[3] == "worker" and not self._ours(fields[4])
                    )
                else:
                    self._kind[pid] = not self._ours(fields[3])
            else:
                self._kind[pid] = True
        return self._kind[pid]

    def _sample(self, baseline: bool = False) -> None:
        """Add what foreign processes used since the last sample; one first seen counts from its start
        (unless this is the baseline, taken at the start)."""
        tick = os.sysconf("SC_CLK_TCK")
        ours = set(process_tree(os.getpid()))
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if not self._foreign(pid, ours):
                continue
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / tick
            if not baseline:
                self.seconds += cpu - self._last.get(pid, 0.0)
            self._last[pid] = cpu

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> ForeignCpu:
        self._sample(baseline=True)
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.share = self.seconds / max(time.monotonic() - self._began, 1e-9)


def disturbed(row: dict[str, Any] | None, foreign_share: float) -> str:
    """Why a run's numbers are not the server's alone (else "")."""
    if row is None:
        return "the driver wrote no result"
    if row.get("setup_error") or row.get("error_count"):
        return f"{row['name']} had errors"
    if foreign_share > FOREIGN:
        return f"other jobs on the machine used {foreign_share:.0%} of a core"
    busy, own = row.get("server_cpu"), row.get("server_proc_cpu")
    if busy and own is not None and own < DISTURBED * busy:
        return f"the server's processes used {own:.0%} of a {busy:.0%} busy core"
    return ""


def run_once(
    args: argparse.Namespace, side: Side, driver_env: dict[str, str], workload: str, json_path: Path
) -> tuple[dict[str, Any] | None, float]:
    """One workload against one side: the driver's result row and the foreign CPU share meanwhile."""
    assert side.proc is not None
    duration = args.login_duration if workload == "login" else args.duration
    with ForeignCpu(args.database) as foreign:
        drive(
            args, driver_env, side.port, side.proc.pid, json_path, side.logins, ["--no-floor"],
            workloads=workload, duration=duration, warmup=args.warmup, connections=args.connections,
        )  # fmt: skip
    rows = json.loads(json_path.read_text(encoding="utf-8"))["results"] if json_path.exists() else []
    return (rows[0] if rows else None), foreign.share


def fmt_row(row: dict[str, Any]) -> str:
    return (
        f"{row['rps']:8.1f}/s {row['p50']:8.1f} {row['p95']:8.1f} {row['p99']:8.1f} ms"
        f" (srv proc {row.get('server_proc_cpu') or 0:.0%})"
    )


def measure(
    args: argparse.Namespace, out: Tee, sides: tuple[Side, Side], driver_env: dict[str, str], stem: str
) -> tuple[dict[str, list[tuple[dict[str, Any], dict[str, Any]]]], int]:
    """Per workload, `--rounds` undisturbed (small, large) pairs of result rows; and an exit status."""
    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    pairs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {name: [] for name in names}
    status = 0
    out(f"\n== measurements: req/s, p50/p95/p99 ms; {sides[0].label} and {sides[1].label} back to back ==")
    for k in range(1, args.rounds + 1):
        order = sides if k % 2 else sides[::-1]
        for name in names:
            for attempt in range(1, ATTEMPTS + 1):
                quiet = production.wait_quiet(
                    [args.server_cpu, args.driver_cpu], args.quiet_limit, args.quiet_wait
                )
                log(f"round {k}, {name}, attempt {attempt} (machine {production.fmt_shares(quiet)} busy)")
                got: dict[str, dict[str, Any]] = {}
                why = ""
                for side in order:
                    path = args.out / f"{stem}-r{k}-{name}-{side.label}-a{attempt}.json"
                    row, foreign = run_once(args, side, driver_env, name, path)
                    problem = disturbed(row, foreign)
                    if row is not None:
                        got[side.label] = row
                        out(f"  round {k} {name:<19} {side.label:<6}{fmt_row(row)}, other jobs {foreign:.0%}")
                    why = why or (f"{side.label}: {problem}" if problem else "")
                if not why:
                    pairs[name].append((got[sides[0].label], got[sides[1].label]))
                    break
                out(f"    -> pair not counted ({why}); again")
            else:
                status = 1
                out(f"  round {k} {name}: no undisturbed pair in {ATTEMPTS} attempts")
    return pairs, status


def comparison(
    pairs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]], labels: tuple[str, str]
) -> tuple[list[str], bool, dict[str, Any]]:
    """The table: per workload and figure the medians of both sides and the median paired ratio."""
    head = (
        f"{'workload':<19}{'figure':<8}{labels[0]:>12}{labels[1]:>12}{'ratio':>8}  verdict "
        f"(latency ratio <= {LIMIT}, req/s ratio >= {1 / LIMIT:.2f})"
    )
    lines, ok = [head], True
    data: dict[str, dict[str, Any]] = {}
    for name, got in pairs.items():
        for figure in FIGURES:
            if not got:
                lines.append(f"{name:<19}{figure:<8}{'-':>12}{'-':>12}{'-':>8}  no undisturbed pair")
                ok = False
                continue
            small = statistics.median(a[figure] for a, _ in got)
            large = statistics.median(b[figure] for _, b in got)
            ratio = statistics.median(b[figure] / a[figure] for a, b in got)
            good = ratio >= 1 / LIMIT if figure == "rps" else ratio <= LIMIT
            ok = ok and good
            unit = "/s" if figure == "rps" else " ms"
            lines.append(
                f"{name:<19}{figure:<8}{small:>10.1f}{unit:<2}{large:>10.1f}{unit:<2}{ratio:>8.3f}  "
                f"{'ok' if good else 'OVER'}"
            )
            data.setdefault(name, {})[figure] = {
                "small": small,
                "large": large,
                "ratio": ratio,
                "pairs": len(got),
            }
    return lines, ok, data


def explain_pass(
    args: argparse.Namespace, out: Tee, side: Side, driver_env: dict[str, str], stem: str, tmp: Path
) -> None:
    """auto_explain every statement of one short run per workload; then the service-level lookups."""
    from bench import scale_explain

    path = Path(args.pg_log)
    report = args.out / f"{stem}-explain.txt"
    sections: list[str] = []
    db = side.database
    if path.exists() and os.access(path, os.R_OK):
        psql(
            args.pg, "postgres",
            f"ALTER DATABASE \"{db}\" SET session_preload_libraries = 'auto_explain'",
            f"ALTER DATABASE \"{db}\" SET auto_explain.log_min_duration = 0",
            f"ALTER DATABASE \"{db}\" SET auto_explain.log_analyze = on",
            f"ALTER DATABASE \"{db}\" SET auto_explain.log_timing = off",
            f"ALTER DATABASE \"{db}\" SET auto_explain.log_format = 'json'",
        )  # fmt: skip
        offset = path.stat().st_size
        logins = tmp / "explain.logins"
        logins_file(logins, side.persons, side.entities, 50)
        proc = start_server(side.args, side.env, args.out / f"{stem}.server-explain.log")
        try:
            drive(
                args, driver_env, side.port, proc.pid, tmp / "explain.json", logins, [],
                workloads=args.workloads, duration=2, warmup=0, connections=2,
            )  # fmt: skip
        finally:
            production.stop(proc)
            psql(args.pg, "postgres", f'ALTER DATABASE "{db}" RESET ALL')
        with open(path, encoding="utf-8", errors="replace") as fh:
            fh.seek(offset)
            plans = scale_explain.parse_log(fh.read(), db)
        sections.append(
            f"Statements the server ran during one 2 s run of each of {args.workloads} at "
            f"{side.persons:,} persons (auto_explain, actual rows):\n" + scale_explain.summarise(plans)
        )
    else:
        sections.append(f"(no HTTP explain pass: {path} is not readable)")
    done = subprocess.run(
        [sys.executable, "-m", "bench.scale_explain", "--persons", str(side.persons),
         "--entities", str(side.entities)],
        cwd=ROOT, env=side.env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    sections.append(done.stdout + (f"\n(stderr)\n{done.stderr[-2000:]}" if done.returncode else ""))
    report.write_text("\n\n".join(sections), encoding="utf-8")
    out(f"\n== explain at {side.persons:,} persons: {report} ==")
    for section in sections:
        for line in section.splitlines():
            out(f"  {line}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dw, dt = production.DEFAULTS[args.server]
    args.workers, args.threads = args.workers or dw, args.threads or dt
    small_entities = args.small // 10 if args.small_entities is None else args.small_entities
    large_entities = args.large // 10 if args.large_entities is None else args.large_entities
    if not 0 < args.small < args.large or small_entities > large_entities or args.rounds < 1:
        raise SystemExit("need 0 < --small < --large, --small-entities <= --large-entities, --rounds >= 1")
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,50}$", args.database) or args.database in ("postgres", "test"):
        raise SystemExit(f"--database {args.database!r}: a plain name for scratch databases")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"scale-{time.strftime('%Y%m%d-%H%M%S')}"
    out = Tee(args.out / f"{stem}.txt")
    seed = json.loads(args.seed_file.read_text(encoding="utf-8"))
    production.server_command(args)  # fails early if the server is not installed
    small = make_side(args, "small", args.small, small_entities, 0)
    large = make_side(args, "large", args.large, large_entities, 1)
    key_dir = tempfile.mkdtemp(prefix="idp-scale-keys-")
    tmp = Path(tempfile.mkdtemp(prefix="idp-scale-"))
    driver_env = dict(os.environ) | production.accounts(seed) | {"BENCH_PASSWORD": PASSWORD}
    out(
        f"bench/scale.sh: {production.server_version(args.server)}, {args.workers}x{args.threads} per "
        f"server on core {args.server_cpu}, driver on core {args.driver_cpu}, {args.connections} "
        f"connections, {args.duration:g} s per token workload, {args.login_duration:g} s of logins, "
        f"{args.rounds} paired round(s)"
    )
    status = 0
    try:
        prepare(small, args, out, key_dir, [(args.small, small_entities)])
        prepare(large, args, out, key_dir, [(args.small, small_entities), (args.large, large_entities)])
        for side in (small, large):
            picked = logins_file(tmp / f"{side.label}.logins", side.persons, side.entities, args.logins)
            side.logins = tmp / f"{side.label}.logins"
            out(
                f"  {side.label}: logins as {picked:,} seeded persons at random (indexes "
                f"{side.entities:,}..{side.persons - 1:,}: no representatives)"
            )
            side.log_path = args.out / f"{stem}.server-{side.label}.log"
            side.proc = start_server(side.args, side.env, side.log_path)
        pairs, status = measure(args, out, (small, large), driver_env, stem)
        for side in (small, large):
            assert side.proc is not None
            production.stop(side.proc)
            problems = production.server_log_problems(side.log_path)
            if problems:
                status = 1
                out(f"  server log {side.log_path}: {len(problems)} error(s): " + " | ".join(problems[:5]))
        lines, ok, data = comparison(pairs, (small.label, large.label))
        status = status or (0 if ok else 1)
        out(
            f"\n== {args.large:,} ({large.label}) vs {args.small:,} ({small.label}) persons: medians of "
            f"{args.rounds} paired round(s); ratio = median of the paired ratios large/small =="
        )
        for line in lines:
            out(line)
        out(f"within {LIMIT}x: {'yes' if ok else 'NO'}")
        summary = args.out / f"{stem}.json"
        summary.write_text(
            json.dumps(
                {
                    "config": {k: str(v) for k, v in vars(args).items()},
                    "seeding": {small.label: small.seeding, large.label: large.seeding},
                    "figures": data,
                    "pairs": pairs,
                    "within_limit": ok,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        out(f"JSON: {summary}")
        if args.explain:
            explain_pass(args, out, large, driver_env, stem, tmp)
    finally:
        for side in (small, large):
            if side.proc is not None:
                production.stop(side.proc)
            production.clear_redis_prefix(args.redis_url, side.args.redis_prefix)
            if not args.keep_database:
                psql(args.pg, "postgres", f'DROP DATABASE IF EXISTS "{side.database}" WITH (FORCE)')
                log(f"database {side.database} dropped")
        shutil.rmtree(key_dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        out.fh.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
