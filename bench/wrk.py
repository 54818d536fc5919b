"""Run Debian's wrk (if installed) on a GET URL and parse the JSON summary printed by wrk_report.lua."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

LUA = Path(__file__).with_name("wrk_report.lua")


def available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str,
    *,
    connections: int,
    duration: float,
    headers: list[tuple[str, str]] | None = None,
    threads: int = 1,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """wrk -t threads -c connections for `duration` seconds: requests/s, percentiles (ms), errors."""
    exe = shutil.which("wrk")
    if exe is None:
        raise FileNotFoundError("wrk is not installed (apt-get install -y wrk)")
    cmd = [exe, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s"]
    cmd += ["--timeout", f"{max(1, round(timeout))}s", "-s", str(LUA)]
    for name, value in headers or []:
        cmd += ["-H", f"{name}: {value}"]
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout + 30, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("WRKJSON "):
            raw = json.loads(line[len("WRKJSON ") :])
            break
    else:
        raise RuntimeError(f"wrk failed (rc={proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "requests": raw["requests"],
        "rps": (raw["requests"] - errors) / seconds if seconds > 0 else 0.0,
        "errors": errors,
        "error_kinds": {k: raw[k] for k in ("connect", "read", "write", "status", "timeout") if raw[k]},
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "threads": threads,
        "connections": connections,
    }
