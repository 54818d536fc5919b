"""The ephemeral store behind Redis Sentinel (IDP_REDIS_SENTINELS): it finds the master through the
Sentinel and follows a failover without losing what the replica had (real redis-server processes)."""

from __future__ import annotations

import time

import pytest
from sentinel_topology import MASTER_NAME, need_redis_processes, redis_server, start_topology

from idp.settings import Settings
from idp.store.ephemeral import RedisEphemeralStore, build_ephemeral_store, sentinel_client


@pytest.fixture
def topology(tmp_path, backend):
    need_redis_processes(backend == "postgres", redis_server=redis_server())
    started = start_topology(tmp_path, replicas=1)
    yield started
    started.stop()


def test_the_settings_choose_the_master_the_sentinel_names(topology, tmp_path):
    settings = Settings.from_env(
        {
            "IDP_REDIS_SENTINELS": f"localhost:1, {topology.sentinels}",  # one Sentinel down
            "IDP_REDIS_SENTINEL_MASTER": MASTER_NAME,
            "IDP_REDIS_URL": "redis://ignored-host:1/3",  # its db number counts, not its address
        }
    )
    store = build_ephemeral_store(
        None,  # type: ignore[arg-type]  # no SQL fallback is built
        settings.redis_url,
        "t:",
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )
    assert isinstance(store, RedisEphemeralStore)
    store.set("k", "v", 60)
    with topology.client(topology.master_port) as master:
        master.select(3)
        assert master.get("t:k") == b"v"
    assert store.get("k") == "v"


def test_a_failover_loses_no_replicated_session_and_the_store_follows_the_new_master(topology):
    store = RedisEphemeralStore(sentinel_client(topology.sentinels, MASTER_NAME), "t:")
    for n in range(50):
        store.set(f"session:{n}", f"person-{n}", 600)
    assert store.incr("failures", 600) == 1
    with topology.client(topology.master_port) as master:
        assert master.wait(1, 2000) == 1  # every write above reached the replica

    topology.kill(topology.master_port)
    started = time.monotonic()
    # The first command after the kill waits inside the client's retries until the Sentinel has
    # promoted the replica, then succeeds there: the caller sees no error.
    assert store.get("session:7") == "person-7"
    took = time.monotonic() - started
    assert topology.current_master_port() == topology.replica_ports[0]
    assert all(store.get(f"session:{n}") == f"person-{n}" for n in range(50))
    assert store.incr("failures", 600) == 2  # writes go to the new master
    assert store.take("session:1") == "person-1" and store.take("session:1") is None
    assert took < 10


@pytest.mark.parametrize("value", ["", " , ", "sentinel-host", "host:port", ":26379"])
def test_a_malformed_sentinel_list_is_refused_with_the_setting_named(value):
    with pytest.raises(ValueError, match="IDP_REDIS_SENTINELS"):
        sentinel_client(value, MASTER_NAME)
