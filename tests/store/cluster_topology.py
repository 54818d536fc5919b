"""A real Redis Cluster on loopback for the tests: three primaries (each with a replica, if asked),
each node its own `redis-server` process on a free port, slots assigned by `redis-cli --cluster
create`, nothing kept on disk."""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import redis
from sentinel_topology import _wait_until, free_port, loopback_client, redis_server, stop_processes


@dataclass
class Cluster:
    ports: list[int]
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def nodes(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def keys_per_node(self, pattern: str) -> list[int]:
        counts = []
        for port in self.ports:
            with loopback_client(port) as node:
                counts.append(sum(1 for _ in node.scan_iter(match=pattern)))
        return counts

    def client(self, port: int) -> redis.Redis:
        return loopback_client(port)

    def primary_of(self, key: str) -> int:
        """The port of the primary that serves `key`'s slot now."""
        with self.client(next(iter(self.processes))) as node:
            slot = node.cluster("keyslot", key)
            for start, end, primary, *_ in node.cluster("slots"):
                if start <= slot <= end:
                    return int(primary[1])
        raise AssertionError(f"no primary for slot {slot}")

    def kill(self, port: int) -> None:
        """SIGKILL: no shutdown, no goodbye to the replica or the other nodes."""
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        stop_processes(list(self.processes.values()))
        self.processes.clear()


def redis_cli() -> str | None:
    return shutil.which("redis-cli")


def start_cluster(directory: Path, primaries: int = 3, replicas: int = 0) -> Cluster:
    """`replicas` per primary; with replicas, a primary's failure is detected after 2 s."""
    binary, cli = redis_server(), redis_cli()
    assert binary is not None and cli is not None
    cluster = Cluster([free_port() for _ in range(primaries * (1 + replicas))])
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
            cluster.processes[port] = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        _wait_until(lambda: all(_answers(port) for port in cluster.ports), 20, "cluster nodes did not start")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in cluster.ports),
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        _wait_until(lambda: all(_cluster_ok(port) for port in cluster.ports), 30, "the cluster did not form")
        if replicas:  # every replica has finished its first sync with its primary
            _wait_until(lambda: _replicas_in_sync(cluster, primaries * replicas), 30, "replicas not in sync")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _answers(port: int) -> bool:
    try:
        with loopback_client(port, timeout=1) as node:
            return bool(node.ping())
    except redis.RedisError:
        return False


def _cluster_ok(port: int) -> bool:
    try:
        with loopback_client(port, timeout=1) as node:
            return node.cluster("info").get("cluster_state") == "ok"  # type: ignore[no-any-return]
    except redis.RedisError:
        return False


def _replicas_in_sync(cluster: Cluster, expected: int) -> bool:
    in_sync = 0
    try:
        for port in cluster.ports:
            with cluster.client(port) as node:
                replication = node.info("replication")
                if replication.get("role") == "slave" and replication.get("master_link_status") == "up":
                    in_sync += 1
    except redis.RedisError:
        return False
    return in_sync == expected
