"""Wire settings, Redis (embedded or external), knowledge and the pipeline together.

Every entry point (``run``, ``chat``, ``bench``, the tests) builds the bot through
``Runtime`` so they all exercise the same parts in the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.pipeline import Pipeline
from bot.settings import Settings
from bot.store.embedded import EmbeddedValkey
from bot.store.rooms import RoomStore
from bot.store.sessions import SessionStore
from knowledge.loader import load
from knowledge.matcher import Matcher
from knowledge.scanner import Scanner
from knowledge.schema import KnowledgeBase

log = logging.getLogger("bot.runtime")


def make_redis(url: str, timeout_s: float = 2.0) -> Redis:
    """A client that fails fast (the user gets the static answer) and reconnects by itself.

    No per-command socket timeout: the pipeline puts one deadline on each locked section.
    """
    return Redis.from_url(
        url,
        socket_timeout=None,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), retries=0),  # a retried script could run twice: fail fast instead
        health_check_interval=15,
    )


def build_pipeline(
    settings: Settings,
    redis: Redis,
    kb: KnowledgeBase,
    matcher: Matcher | None = None,
    scanner: Scanner | None = None,
    clock: Callable[[], float] = time.time,
) -> Pipeline:
    """The pipeline for these settings; pass a trained matcher/scanner to share one, and a
    clock to control time in tests."""
    store = SessionStore(
        redis,
        prefix=settings.key_prefix,
        session_ttl_s=settings.session_ttl_s,
        dedupe_ttl_s=settings.dedupe_ttl_s,
        lock_ttl_ms=settings.lock_ttl_ms,
        lock_wait_s=settings.lock_wait_s,
        rate_per_min=settings.rate_user_per_min,
    )
    return Pipeline(
        kb,
        store,
        RoomStore(redis, prefix=settings.key_prefix),
        matcher=matcher,
        scanner=scanner,
        max_text_chars=settings.max_text_chars,
        resume_after_s=settings.resume_after_s,
        bot_name=settings.bot_name,
        rate_room_per_min=settings.rate_room_per_min,
        group_pattern_cooldown_s=settings.group_pattern_cooldown_s,
        group_alert_gap_s=settings.group_alert_cooldown_s,
        redis_timeout_s=settings.redis_timeout_s,
        clock=clock,
    )


class Runtime:
    """Owns the Redis connection (and the embedded server, when there is one)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedValkey | None = None
        self.redis: Redis | None = None
        self.kb: KnowledgeBase | None = None
        self.pipeline: Pipeline | None = None

    async def start(self) -> Pipeline:
        self.kb = load()
        url = self.settings.redis_url
        if url is None:
            self.embedded = EmbeddedValkey(Path(self.settings.data_dir) / "valkey")
            url = await asyncio.to_thread(self.embedded.start)
        self.redis = make_redis(url, self.settings.redis_timeout_s)
        self.pipeline = build_pipeline(self.settings, self.redis, self.kb)
        return self.pipeline

    async def redis_ok(self) -> bool:
        if self.redis is None:
            return False
        try:
            return bool(await self.redis.ping())
        except Exception:  # readiness is a yes/no question
            return False

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
