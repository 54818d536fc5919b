"""A real Redis Cluster on loopback for the tests: three primaries, no replicas, each its own
`redis-server` process on a free port, slots assigned by `redis-cli --cluster create`, nothing
kept on disk."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis
from sentinel_topology import _wait_until, free_port, redis_server, stop_processes


@dataclass
class Cluster:
    ports: list[int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def nodes(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def keys_per_node(self, pattern: str) -> list[int]:
        counts = []
        for port in self.ports:
            with redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) as node:
                counts.append(sum(1 for _ in node.scan_iter(match=pattern)))
        return counts

    def stop(self) -> None:
        stop_processes(self.processes)
        self.processes.clear()


def redis_cli() -> str | None:
    return shutil.which("redis-cli")


def start_cluster(directory: Path, primaries: int = 3) -> Cluster:
    binary, cli = redis_server(), redis_cli()
    assert binary is not None and cli is not None
    cluster = Cluster([free_port() for _ in range(primaries)])
    try:
        for port in cluster.ports:
            home = directory / str(port)
            home.mkdir(parents=True, exist_ok=True)
            argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(home),
                    "--save", "", "--appendonly", "no", "--protected-mode", "no",
                    "--cluster-enabled", "yes", "--cluster-config-file", str(home / "nodes.conf"),
                    # the bus port would otherwise be port + 10000, past 65535 for a high free port
                    "--cluster-port", str(free_port()),
                    "--cluster-node-timeout", "2000"]  # fmt: skip
            cluster.processes.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        _wait_until(lambda: all(_answers(port) for port in cluster.ports), 20, "cluster nodes did not start")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in cluster.ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        _wait_until(lambda: all(_cluster_ok(port) for port in cluster.ports), 30, "the cluster did not form")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _answers(port: int) -> bool:
    try:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as node:
            return bool(node.ping())
    except redis.RedisError:
        return False


def _cluster_ok(port: int) -> bool:
    try:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as node:
            return node.cluster("info").get("cluster_state") == "ok"  # type: ignore[no-any-return]
    except redis.RedisError:
        return False
