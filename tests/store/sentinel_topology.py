"""A real Redis Sentinel topology on loopback for the tests: one master, optional replicas, one
Sentinel, each its own `redis-server` process on a free port, nothing kept on disk."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

MASTER_NAME = "idp-test"


def loopback_client(port: int, timeout: float = 2) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout)


def need_redis_processes(has_redis: bool, **binaries: str | None) -> None:
    """Skip without Redis (the sqlite backend); without the binaries, fail under CI=true and skip
    elsewhere."""
    if not has_redis:
        pytest.skip("Redis runs only with IDP_TEST_BACKEND=postgres")
    missing = [name.replace("_", "-") for name, path in binaries.items() if path is None]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{' and '.join(missing)} required under CI=true", pytrace=False)
        pytest.skip(f"no {' or '.join(missing)}")


_HANDED_OUT: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port that is free now, for a server started a moment later. A topology picks all
    its ports (a cluster: twelve, with the bus ports) before its servers bind them, so a port the
    kernel lends to an outgoing connection meanwhile (the tests' own, to PostgreSQL and Redis) once
    kept a node from starting. So: below the kernel's ephemeral range, which outgoing connections
    never take; in a band of its own per xdist worker; never twice in one process."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    low, high = 20000, _ephemeral_low()
    if high - low < 800:  # an unusual ephemeral range: take what the kernel gives
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])
    band = (high - low) // 8
    start = low + (index % 8) * band
    for port in range(start, min(start + band, high)):
        if port in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise AssertionError(f"no free loopback port in {start}-{start + band}")


@dataclass
class Topology:
    master_port: int
    replica_ports: list[int]
    sentinel_port: int
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def sentinels(self) -> str:
        return f"127.0.0.1:{self.sentinel_port}"

    def client(self, port: int) -> redis.Redis:
        return loopback_client(port)

    def kill(self, port: int) -> None:
        """SIGKILL: no shutdown, no goodbye to the replicas or the Sentinel."""
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def current_master_port(self) -> int:
        with self.client(self.sentinel_port) as sentinel:
            _, port = sentinel.execute_command("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
        return int(port)

    def stop(self) -> None:
        stop_processes(list(self.processes.values()))
        self.processes.clear()


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate them all, then wait for each (killing one that does not stop within 10 s)."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def redis_server() -> str | None:
    return shutil.which("redis-server")


def start_topology(directory: Path, replicas: int = 0) -> Topology:
    """Start it and wait until the Sentinel knows the master and every replica is in sync."""
    binary = redis_server()
    assert binary is not None
    topology = Topology(free_port(), [free_port() for _ in range(replicas)], free_port())
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"]

    def spawn(port: int, argv: list[str]) -> None:
        topology.processes[port] = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def server(port: int, *extra: str) -> list[str]:
        home = directory / str(port)
        home.mkdir(parents=True, exist_ok=True)
        return [binary, "--port", str(port), "--dir", str(home), *common, *extra]

    try:
        spawn(topology.master_port, server(topology.master_port))
        for port in topology.replica_ports:
            spawn(port, server(port, "--replicaof", "127.0.0.1", str(topology.master_port)))
        home = directory / str(topology.sentinel_port)
        home.mkdir(parents=True, exist_ok=True)
        (home / "sentinel.conf").write_text(
            "\n".join(
                [
                    f"port {topology.sentinel_port}",
                    "bind 127.0.0.1",
                    "protected-mode no",
                    f"dir {home}",
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {topology.master_port} 1",
                    f"sentinel down-after-milliseconds {MASTER_NAME} 500",
                    f"sentinel failover-timeout {MASTER_NAME} 3000",
                    "",
                ]
            )
        )
        spawn(topology.sentinel_port, [binary, str(home / "sentinel.conf"), "--sentinel"])
        _wait_until(lambda: _ready(topology), 20, "the Sentinel topology did not come up")
    except BaseException:
        topology.stop()
        raise
    return topology


def _ready(topology: Topology) -> bool:
    try:
        with topology.client(topology.sentinel_port) as sentinel:
            if topology.current_master_port() != topology.master_port:
                return False
            known = sentinel.execute_command("SENTINEL", "replicas", MASTER_NAME)
        for port in topology.replica_ports:
            with topology.client(port) as replica:
                if replica.info("replication").get("master_link_status") != "up":
                    return False
        return len(known) == len(topology.replica_ports)
    except redis.RedisError:
        return False


def _wait_until(check, seconds: float, message: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(message)
