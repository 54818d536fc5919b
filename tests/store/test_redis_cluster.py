"""The ephemeral store on Redis Cluster (IDP_REDIS_CLUSTER_NODES) through a primary's failure: the
client follows the promoted replica and keeps what it had (real redis-server processes)."""

from __future__ import annotations

import time

import pytest
from cluster_topology import redis_cli, start_cluster
from sentinel_topology import need_redis_processes, redis_server

from idp.store.ephemeral import RedisEphemeralStore, cluster_client


@pytest.fixture
def cluster(tmp_path, backend):
    need_redis_processes(backend == "postgres", redis_server=redis_server(), redis_cli=redis_cli())
    started = start_cluster(tmp_path, primaries=3, replicas=1)
    yield started
    started.stop()


FIRST_AFTER_THE_KILL = {  # each waits out the promotion (the store's retries), then answers
    "get": lambda store: store.get("session:0") == "person-0",
    "get_many": lambda store: store.get_many(["session:0", "session:1"]) == ["person-0", "person-1"],
    "delete": lambda store: store.delete("session:0") is None and store.get("session:0") is None,
}


@pytest.mark.parametrize("first", FIRST_AFTER_THE_KILL)
def test_a_primary_failure_loses_no_replicated_session_and_the_store_follows(cluster, first):
    store = RedisEphemeralStore(cluster_client(cluster.nodes), "t:")
    for n in range(50):
        store.set(f"session:{n}", f"person-{n}", 600)
    victim = cluster.primary_of("t:session:0")
    with cluster.client(victim) as primary:
        assert primary.wait(1, 5000) == 1  # its replica has every write so far
    cluster.kill(victim)
    started = time.monotonic()
    assert FIRST_AFTER_THE_KILL[first](store)
    assert time.monotonic() - started < 15
    assert cluster.primary_of("t:session:0") != victim
    kept = [None if first == "delete" else "person-0"] + [f"person-{n}" for n in range(1, 50)]
    assert [store.get(f"session:{n}") for n in range(50)] == kept
    store.set("session:0", "again", 600)  # writes go to the promoted replica
    assert store.get("session:0") == "again"
