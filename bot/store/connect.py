"""One Redis client for the settings' topology: a single server, a Redis Cluster or Sentinel.

Why each option is set the way it is:

* **Retry connection errors with backoff.** After a Redis restart every pooled connection is
  dead; without a retry the first use of each one fails and its user gets the static answer
  although Redis is back. Only connection errors are retried (a refused or reset connection,
  or ``LOADING`` while the server reads its AOF); a timeout is not, because retrying a stalled
  server only makes the user wait longer. The store's scripts are written so that running one
  twice is harmless (a lost reply followed by a retry).
* **A socket timeout as backstop.** The pipeline bounds each turn with its own deadline, but a
  command outside a turn (readiness, a lock release) must never hang on a stalled server.
* **Health checks on the pool**: a connection idle for a while is pinged before use.
* **Cluster**: redis-py's ``RedisCluster`` follows MOVED/ASK and refreshes its slot map; every
  key of one conversation shares a hash tag, so each script runs on one node.
* **Sentinel**: the client asks the Sentinels for the current master and, after a failover,
  reconnects to the new one (the retry covers the moment of the switch).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from bot.settings import Settings, SettingsError
from bot.store.packing import fast_connection_class

log = logging.getLogger("bot.store")

Client = Redis | RedisCluster

def client_name() -> str:
    """``fanzha-<pid>``: lets the embedded server see which bot processes still use it."""
    return f"fanzha-{os.getpid()}"

HEALTH_CHECK_INTERVAL_S = 5
READY_TIMEOUT_S = 0.8
"""``/readyz`` must answer within 1 s, whatever Redis does."""


def _retry() -> Retry:
    """Four retries, 0.4–0.75 s in all: a restart blip (``systemctl restart``, a failover
    switch) costs no user a static answer; a Redis that stays down delays it by that much."""
    return Retry(EqualJitterBackoff(base=0.025, cap=0.4), retries=4,
                 supported_errors=(RedisConnectionError,))  # redis-py wraps socket errors in it


def client_options(timeout_s: float) -> dict[str, Any]:
    """Connection options shared by every topology."""
    return {
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": _retry(),
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "client_name": client_name(),
    }


def make_client(settings: Settings, url: str | None = None) -> Client:
    """The client for ``settings`` (``url`` overrides ``FANZHA_REDIS_URL``, for the embedded server)."""
    opts = client_options(settings.redis_timeout_s)
    try:
        if settings.redis_sentinels:
            assert settings.redis_sentinel_master is not None  # checked by Settings
            sentinel = Sentinel(
                settings.sentinel_addresses,
                sentinel_kwargs={"socket_timeout": settings.redis_timeout_s,
                                 "socket_connect_timeout": settings.redis_timeout_s},
                **opts,
            )
            return sentinel.master_for(settings.redis_sentinel_master, **opts)
        target = url or settings.redis_url
        assert target is not None
        if settings.redis_cluster:
            return RedisCluster.from_url(target, **opts)
        client = Redis.from_url(target, **opts)
        pool = client.connection_pool  # no connection exists yet: every one packs in C
        pool.connection_class = fast_connection_class(pool.connection_class)
        return client
    except (ValueError, RedisClusterException) as exc:
        raise SettingsError(f"FANZHA_REDIS_URL: {exc}") from None


async def check_topology(client: Client) -> None:
    """Refuse a topology that would silently fail: a standalone client on a cluster node.

    A plain client pointed at one node of a cluster works for the keys that node owns and gets
    MOVED for all others (about 2/3 of users on 3 masters). Unreachable Redis is not an error
    here: the bot starts, answers statically and reports not ready until Redis is back.
    """
    try:
        if isinstance(client, RedisCluster):
            await asyncio.wait_for(client.initialize(), 10)
            return
        info = await asyncio.wait_for(client.info("cluster"), 5)
    except RedisClusterException as exc:
        raise SettingsError(f"FANZHA_REDIS_CLUSTER=true but {exc}") from None
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("redis not reachable at start", extra={"error": type(exc).__name__})
        return
    if int(info.get("cluster_enabled", 0)):
        raise SettingsError("FANZHA_REDIS_URL points at a Redis Cluster node: set FANZHA_REDIS_CLUSTER=true")


async def store_ready(client: Client) -> bool:
    """Can every conversation be served right now? Answers within ``READY_TIMEOUT_S``.

    Single server / Sentinel: the (current) master answers and is a master, not a cluster
    node. Cluster: every primary answers and the cluster reports all slots served.
    """
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            if isinstance(client, RedisCluster):
                return await _cluster_ready(client)
            role = await client.execute_command("ROLE")
            if not role or role[0] not in (b"master", "master"):
                return False
            info = await client.info("cluster")
            if int(info.get("cluster_enabled", 0)):
                return False
            persistence = await client.info("persistence")
            return not int(persistence.get("loading", 0))  # scripts fail while the AOF loads
    except Exception:  # readiness is a yes/no question
        return False


async def _cluster_ready(client: RedisCluster) -> bool:
    primaries = client.get_primaries()
    if not primaries:
        return False
    infos = await asyncio.gather(
        *(client.execute_command("CLUSTER INFO", target_nodes=node) for node in primaries)
    )
    for info in infos:
        if isinstance(info, dict):
            state = info.get("cluster_state")
            slots_ok = info.get("cluster_slots_ok")
        else:
            text = info.decode() if isinstance(info, bytes) else str(info)
            fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
            state, slots_ok = fields.get("cluster_state"), fields.get("cluster_slots_ok")
        if str(state) != "ok" or str(slots_ok) != "16384":
            return False
    return True
