"""Wire settings, Redis (embedded or external), knowledge and the pipeline together.

Every entry point (``run``, ``chat``, ``bench``, the tests) builds the bot through
``Runtime`` so they all exercise the same parts in the same way.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from bot.model_cache import load_or_build
from bot.pipeline import Pipeline
from bot.settings import Settings
from bot.store.connect import Client, check_topology, client_options, make_client, store_ready
from bot.store.embedded import EmbeddedValkey
from bot.store.rooms import RoomStore
from bot.store.sessions import SessionStore
from knowledge.loader import load
from knowledge.matcher import Matcher
from knowledge.scanner import Scanner
from knowledge.schema import KnowledgeBase

log = logging.getLogger("bot.runtime")


def trained_models(kb: KnowledgeBase, data_dir: Path) -> tuple[Matcher, Scanner]:
    """The matcher and scanner for ``kb``: from the cache under ``data_dir/models`` when the
    knowledge data and model code are unchanged, else trained (and cached for next time)."""
    samples = [lines[0] for _, lines in sorted(kb.examples.items()) if lines][:12]

    def build() -> tuple[Matcher, Scanner]:
        return Matcher.from_kb(kb), Scanner.from_kb(kb)

    def probe(models: tuple[Matcher, Scanner]) -> list[object]:
        matcher, scanner = models
        return [(matcher.classify(t).model_dump(), scanner.scan(t).model_dump()) for t in samples]

    models, cached = load_or_build(data_dir / "models", build, probe)
    log.info("models ready", extra={"cached": cached})
    return models


def make_redis(url: str, timeout_s: float = 2.0) -> Redis:
    """A single-server client with the store's options (see ``bot.store.connect``)."""
    return Redis.from_url(url, **client_options(timeout_s))


def build_pipeline(
    settings: Settings,
    redis: Client,
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
        self.redis: Client | None = None
        self.kb: KnowledgeBase | None = None
        self.pipeline: Pipeline | None = None

    async def start(self) -> Pipeline:
        self.kb = load()
        data_dir = Path(self.settings.data_dir)
        models = asyncio.ensure_future(asyncio.to_thread(trained_models, self.kb, data_dir))
        url = self.settings.redis_url
        if url is None and not self.settings.redis_sentinels:  # the server starts while the models load
            self.embedded = EmbeddedValkey(data_dir / "valkey")
            url = await asyncio.to_thread(self.embedded.start)
        self.redis = make_client(self.settings, url)
        await check_topology(self.redis)
        matcher, scanner = await models
        self.pipeline = build_pipeline(self.settings, self.redis, self.kb, matcher, scanner)
        _freeze_startup_objects()
        return self.pipeline

    async def redis_ok(self) -> bool:
        """Every conversation can be served now (all slots / the master); within 1 s."""
        return self.redis is not None and await store_ready(self.redis)

    async def close(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.store.drain()  # background lock releases, bounded
        if self.redis is not None:
            await self.redis.aclose()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
        gc.unfreeze()  # a process that builds several runtimes (the tests) frees the old ones


def _freeze_startup_objects() -> None:
    """Move the ~320k objects of the knowledge base and the trained models out of the collector's
    sight: they live as long as the process, yet every full collection walked them all, and a
    message allocates enough to trigger those collections. Collect first so no garbage is frozen.

    Measured with ``bench`` in-process (100 users x 40 messages, alternating runs):
    3,517 / 3,479 msgs/s without, 4,216 / 4,117 with (+18 %). Behaviour is unchanged: frozen
    objects are still alive and still reachable; only the collector skips them.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


GC_THRESHOLDS = (20_000, 50, 100)
"""Young-generation collections every 20,000 allocations instead of 700: a message allocates a
few thousand short-lived objects (pydantic models, numpy temporaries, redis-py buffers), nearly
none of them in cycles, so the default made the collector run several times per message for
nothing. Older generations are scanned less often too; the frozen start-up objects are never
scanned. Measured with the in-process bench (bot CPU per message, alternating runs): about
10 % less; resident memory unchanged within noise (``bench --waves``)."""
