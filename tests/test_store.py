"""The session store on a real Redis-protocol server: locking, dedupe, TTLs, persistence."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from redis.asyncio import Redis

from bot.models import Reply
from bot.store.embedded import EmbeddedValkey
from bot.store.sessions import (
    DuplicateMessage,
    LockLost,
    LockTimeout,
    RateLimited,
    SessionStore,
    conversation_id,
)
from tests.conftest import make_test_client


class Counter(BaseModel):
    n: int = 0
    seen: list[int] = Field(default_factory=list)


async def bump(store: SessionStore, conv: str, i: int, msg_id: str | None = None, pause: float = 0.0) -> None:
    async with store.hold(conv, msg_id) as held:
        c = Counter.model_validate_json(held.raw) if held.raw else Counter()
        if pause:
            await asyncio.sleep(pause)  # widen the read-modify-write window
        c.n += 1
        c.seen.append(i)
        await store.commit(held, c, [Reply(text=f"reply {i}")])


async def test_concurrent_updates_from_two_clients_are_all_kept(redis_url: str, redis: Redis) -> None:
    a, b = make_test_client(redis_url), make_test_client(redis_url)
    store_a, store_b = SessionStore(a, lock_wait_s=20), SessionStore(b, lock_wait_s=20)
    conv = conversation_id("http", "u1", None)
    try:
        jobs = [bump(store_a if i % 2 else store_b, conv, i, pause=0.001) for i in range(60)]
        await asyncio.gather(*jobs)
        final = Counter.model_validate_json(await store_a.peek(conv) or "{}")
        assert final.n == 60
        assert sorted(final.seen) == list(range(60))
        assert store_a.local_lock_count == 0 and store_b.local_lock_count == 0
    finally:
        await a.aclose()
        await b.aclose()


async def test_arrival_order_is_kept_within_a_process(redis: Redis) -> None:
    store = SessionStore(redis)
    conv = conversation_id("http", "order", None)
    await asyncio.gather(*(bump(store, conv, i, pause=0.0005) for i in range(40)))
    final = Counter.model_validate_json(await store.peek(conv) or "{}")
    assert final.seen == list(range(40))


async def test_duplicate_msg_id_returns_first_replies_without_advancing(redis: Redis) -> None:
    store = SessionStore(redis)
    conv = conversation_id("wechaty", "u2", None)
    await bump(store, conv, 1, msg_id="m-1")
    with pytest.raises(DuplicateMessage) as dup:
        await bump(store, conv, 2, msg_id="m-1")
    assert [r.text for r in dup.value.replies] == ["reply 1"]
    final = Counter.model_validate_json(await store.peek(conv) or "{}")
    assert final.n == 1


async def test_concurrent_duplicates_get_one_processing(redis: Redis) -> None:
    store = SessionStore(redis)
    conv = conversation_id("wechaty", "u3", None)
    results = await asyncio.gather(
        *(bump(store, conv, i, msg_id="same", pause=0.002) for i in range(5)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, DuplicateMessage) for r in results) == 4
    assert Counter.model_validate_json(await store.peek(conv) or "{}").n == 1


async def test_every_key_has_a_ttl(redis: Redis) -> None:
    store = SessionStore(redis, rate_per_min=100)
    for i in range(3):
        await bump(store, conversation_id("http", f"ttl{i}", "room1" if i else None), i, msg_id=f"t{i}")
    keys = await redis.keys("*")
    assert keys, "the store wrote nothing"
    for key in keys:
        assert await redis.ttl(key) > 0, key


async def test_keys_do_not_contain_user_ids_and_share_a_hash_tag(redis: Redis) -> None:
    store = SessionStore(redis)
    conv = conversation_id("wechaty", "wxid_secret_user", "12345@chatroom")
    await bump(store, conv, 1, msg_id="m")
    keys = [k.decode() for k in await redis.keys("*")]
    assert all("wxid_secret_user" not in k and "12345" not in k for k in keys)
    tags = {k[k.index("{"): k.index("}") + 1] for k in keys}
    assert len(tags) == 1


async def test_a_dead_holders_lock_expires(redis: Redis) -> None:
    store = SessionStore(redis, lock_ttl_ms=200, lock_wait_s=3)
    conv = conversation_id("http", "dead", None)
    lock_key = store.keys(conv, None)[0]
    await redis.set(lock_key, "token-of-a-crashed-process", px=200)
    await bump(store, conv, 1)
    assert Counter.model_validate_json(await store.peek(conv) or "{}").n == 1


async def test_lock_wait_is_bounded(redis: Redis) -> None:
    store = SessionStore(redis, lock_wait_s=0.2)
    conv = conversation_id("http", "stuck", None)
    await redis.set(store.keys(conv, None)[0], "other", px=5000)
    with pytest.raises(LockTimeout):
        await bump(store, conv, 1)
    assert store.local_lock_count == 0


async def test_commit_after_losing_the_lock_writes_nothing(redis: Redis) -> None:
    store = SessionStore(redis, lock_ttl_ms=100)
    conv = conversation_id("http", "slow", None)
    with pytest.raises(LockLost):
        async with store.hold(conv, None) as held:
            await asyncio.sleep(0.25)  # lock expires; another holder takes it
            await redis.set(store.keys(conv, None)[0], "newer-holder", px=5000)
            await store.commit(held, Counter(n=99), [])
    assert await store.peek(conv) is None
    assert await redis.get(store.keys(conv, None)[0]) == b"newer-holder"


async def test_failure_inside_the_section_releases_the_lock(redis: Redis) -> None:
    store = SessionStore(redis, lock_wait_s=0.5)
    conv = conversation_id("http", "boom", None)
    with pytest.raises(RuntimeError):
        async with store.hold(conv, "m1"):
            raise RuntimeError("step failed")
    await bump(store, conv, 1, msg_id="m1")  # not a duplicate: the first never committed
    assert Counter.model_validate_json(await store.peek(conv) or "{}").n == 1


async def test_rate_limit_counts_per_conversation(redis: Redis) -> None:
    store = SessionStore(redis, rate_per_min=3)
    conv = conversation_id("http", "flood", None)
    for i in range(3):
        await bump(store, conv, i)
    with pytest.raises(RateLimited) as over:
        await bump(store, conv, 3)
    assert over.value.count == 4
    await bump(store, conversation_id("http", "other", None), 0)  # others unaffected


def test_embedded_valkey_keeps_sessions_across_restart(tmp_path: Path) -> None:
    async def write(url: str) -> None:
        client = Redis.from_url(url)
        await bump(SessionStore(client), conversation_id("http", "persist", None), 7)
        await client.aclose()

    async def read(url: str) -> str | None:
        client = Redis.from_url(url)
        raw = await SessionStore(client).peek(conversation_id("http", "persist", None))
        await client.aclose()
        return raw

    first = EmbeddedValkey(tmp_path / "valkey")
    asyncio.run(write(first.start()))
    first.stop()
    second = EmbeddedValkey(tmp_path / "valkey")
    try:
        raw = asyncio.run(read(second.start()))
    finally:
        second.stop()
    assert raw is not None and Counter.model_validate_json(raw).seen == [7]
