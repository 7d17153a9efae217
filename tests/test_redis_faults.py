"""The store and the pipeline under real Redis faults: a 3-master cluster, Sentinel failover,
SIGSTOP stalls, restarts, a holder killed with ``kill -9``, a same-user flood.

Every server here is a real ``redis-server`` on 127.0.0.1 (ports from
``FANZHA_TEST_PORT_RANGE``), started and killed by these tests; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis, RedisCluster

from bot.models import IncomingMessage, Outcome
from bot.pipeline import Pipeline
from bot.runtime import build_pipeline
from bot.settings import Settings, SettingsError
from bot.store.connect import check_topology, make_client, store_ready
from bot.store.sessions import SessionStore, conversation_id
from knowledge.schema import KnowledgeBase

from . import redis_procs as rp
from .helpers import joined, text_of

ROOT = Path(__file__).resolve().parents[1]

if rp.REDIS_SERVER is None or rp.REDIS_CLI is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI needs redis-server and redis-cli for the fault tests")
    pytest.skip("redis-server/redis-cli not installed (CI requires them)", allow_module_level=True)


def _settings(tmp_path: Path, **kw: object) -> Settings:
    base: dict[str, object] = {"data_dir": tmp_path, "rate_user_per_min": 1000}
    base.update(kw)
    return Settings(_env_file=None, **base)  # type: ignore[arg-type]


def _pipeline(settings: Settings, client: Redis | RedisCluster, kb: KnowledgeBase, ms) -> Pipeline:  # type: ignore[no-untyped-def]
    matcher, scanner = ms
    return build_pipeline(settings, client, kb, matcher, scanner)


async def _say(p: Pipeline, user: str, text: str, msg_id: str | None = None) -> Outcome:
    return await p.handle(IncomingMessage(user_id=user, text=text, msg_id=msg_id))


def _real(o: Outcome) -> bool:
    """A real, stateful answer: not the static fallback, not "busy", not an error."""
    return o.state not in ("degraded", "busy", "error")


@pytest.fixture
def procs() -> Iterator[list[rp.RedisProc]]:
    """Collects every server a test starts; all are killed at the end, whatever happened."""
    started: list[rp.RedisProc] = []
    yield started
    for p in started:
        p.kill()


# -- 1. Redis Cluster ---------------------------------------------------------------------------
@pytest.fixture
async def cluster(tmp_path: Path, procs: list[rp.RedisProc]) -> AsyncIterator[list[rp.RedisProc]]:
    nodes = await asyncio.to_thread(rp.cluster, tmp_path)
    procs.extend(nodes)
    yield nodes


async def test_cluster_serves_every_user_and_readiness_follows_the_slots(
    cluster: list[rp.RedisProc], tmp_path: Path, kb: KnowledgeBase, _matcher_scanner  # type: ignore[no-untyped-def]
) -> None:
    settings = _settings(tmp_path, redis_url=cluster[0].url, redis_cluster=True, redis_timeout_s=0.5)
    client = make_client(settings)
    await check_topology(client)
    pipeline = _pipeline(settings, client, kb, _matcher_scanner)
    try:
        users = [f"cu{i}" for i in range(30)]
        first = await asyncio.gather(*(_say(pipeline, u, "我被骗了两千块，刷单的", f"{u}-1") for u in users))
        assert all(_real(o) and o.scenario == "fraud_victim" for o in first), [o.state for o in first]
        nxt = await asyncio.gather(*(_say(pipeline, u, "下一步", f"{u}-2") for u in users))
        assert all(_real(o) and o.scenario == "fraud_victim" for o in nxt)  # sessions were kept
        per_node = [int(rp.cli(n.port, "dbsize").strip() or 0) for n in cluster]
        assert sum(1 for c in per_node if c > 0) == 3, per_node  # users really spread over the masters
        assert await store_ready(client)

        cluster[1].kill()  # a master with no replica: its slots are no longer served
        t0 = time.monotonic()
        assert not await store_ready(client)
        assert time.monotonic() - t0 < 1.0
    finally:
        await client.aclose()


async def test_a_plain_url_at_a_cluster_node_is_refused_at_start(cluster: list[rp.RedisProc], tmp_path: Path) -> None:
    client = make_client(_settings(tmp_path, redis_url=cluster[0].url))
    try:
        with pytest.raises(SettingsError, match="FANZHA_REDIS_CLUSTER=true"):
            await check_topology(client)
        assert not await store_ready(client)  # and it would never be reported ready
    finally:
        await client.aclose()


# -- 1. Sentinel --------------------------------------------------------------------------------
async def test_sentinel_failover_keeps_sessions_and_answers(
    tmp_path: Path, procs: list[rp.RedisProc], kb: KnowledgeBase, _matcher_scanner  # type: ignore[no-untyped-def]
) -> None:
    setup = await asyncio.to_thread(rp.sentinel_setup, tmp_path)
    procs.extend(setup.all())
    settings = _settings(tmp_path, redis_sentinels=setup.env, redis_sentinel_master=setup.name,
                         redis_timeout_s=0.5)
    client = make_client(settings)
    pipeline = _pipeline(settings, client, kb, _matcher_scanner)
    try:
        assert await store_ready(client)
        out = await _say(pipeline, "su", "我被骗了两千块，刷单的", "s1")
        assert _real(out) and out.scenario == "fraud_victim"
        await client.execute_command("WAIT", 1, 2000)  # replicated before the crash
        setup.master.kill()
        assert not await store_ready(client)
        t0 = time.monotonic()
        while True:
            again = await _say(pipeline, "su", "下一步", f"s-{time.monotonic()}")
            if _real(again):
                break
            assert time.monotonic() - t0 < 30, "no answer after the Sentinel failover"
            await asyncio.sleep(0.2)
        assert again.scenario == "fraud_victim"  # the session survived the failover
        assert await store_ready(client)
        role = await client.execute_command("ROLE")
        assert role[0] == b"master"
    finally:
        await client.aclose()


# -- 4. stalls (SIGSTOP) ------------------------------------------------------------------------
async def test_a_stall_leaves_no_orphaned_locks_and_readiness_answers_in_time(
    tmp_path: Path, procs: list[rp.RedisProc], kb: KnowledgeBase, _matcher_scanner  # type: ignore[no-untyped-def]
) -> None:
    server = await asyncio.to_thread(rp.standalone, tmp_path)
    procs.append(server)
    settings = _settings(tmp_path, redis_url=server.url, lock_wait_s=1.0, lock_ttl_ms=10_000, redis_timeout_s=0.5)
    client = make_client(settings)
    pipeline = _pipeline(settings, client, kb, _matcher_scanner)
    users = [f"st{i}" for i in range(20)]
    try:
        warm = await asyncio.gather(*(_say(pipeline, u, "你好", f"{u}-0") for u in users))
        assert all(_real(o) for o in warm)
        server.pause()
        try:
            t0 = time.monotonic()
            stalled = await asyncio.gather(*(_say(pipeline, u, "我被骗了两千块", f"{u}-1") for u in users))
            assert time.monotonic() - t0 < 4.0  # bounded: the static answer, not a hang
            assert all(o.state == "degraded" and o.replies for o in stalled)
            t0 = time.monotonic()
            assert not await asyncio.wait_for(store_ready(client), 5)
            assert time.monotonic() - t0 < 1.0
        finally:
            server.resume()
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        back = await asyncio.gather(*(_say(pipeline, u, "1", f"{u}-2") for u in users))
        blocked = [u for u, o in zip(users, back, strict=True) if not _real(o)]
        assert blocked == [], f"{len(blocked)} of 20 users still blocked after Redis came back"
        assert time.monotonic() - t0 < 2.0
        assert await store_ready(client)
    finally:
        server.resume()
        await client.aclose()


# -- 5. restarts ---------------------------------------------------------------------------------
async def test_after_a_restart_no_stale_connection_gives_a_static_answer(
    tmp_path: Path, procs: list[rp.RedisProc], kb: KnowledgeBase, _matcher_scanner  # type: ignore[no-untyped-def]
) -> None:
    server = await asyncio.to_thread(rp.standalone, tmp_path, "--appendonly", "yes")
    procs.append(server)
    settings = _settings(tmp_path, redis_url=server.url, redis_timeout_s=1.0)
    client = make_client(settings)
    pipeline = _pipeline(settings, client, kb, _matcher_scanner)
    users = [f"rs{i}" for i in range(8)]
    try:
        for u in users:
            assert _real(await _say(pipeline, u, "我的微信号被盗了", f"{u}-1"))
        await asyncio.gather(*(client.ping() for _ in range(8)))  # a burst leaves 8 pooled connections
        server.stop()
        await asyncio.to_thread(server.start)
        t0 = time.monotonic()
        while not await store_ready(client):
            assert time.monotonic() - t0 < 10, "never ready after the restart"
            await asyncio.sleep(0.05)
        outs = [await _say(pipeline, u, "下一步", f"{u}-2") for u in users]  # one after another
        assert [o.state for o in outs if not _real(o)] == []
        assert all(o.scenario == "account_stolen" for o in outs)  # sessions survived (AOF)
    finally:
        await client.aclose()


async def test_a_restart_blip_costs_no_user_a_static_answer(
    tmp_path: Path, procs: list[rp.RedisProc], kb: KnowledgeBase, _matcher_scanner  # type: ignore[no-untyped-def]
) -> None:
    server = await asyncio.to_thread(rp.standalone, tmp_path, "--appendonly", "yes")
    procs.append(server)
    settings = _settings(tmp_path, redis_url=server.url)
    client = make_client(settings)
    pipeline = _pipeline(settings, client, kb, _matcher_scanner)
    try:
        assert _real(await _say(pipeline, "blip", "我的微信号被盗了", "blip-1"))
        server.stop()

        async def come_back() -> None:
            await asyncio.sleep(0.15)
            await asyncio.to_thread(server.start)

        back = asyncio.create_task(come_back())
        out = await _say(pipeline, "blip", "下一步", "blip-2")  # sent while Redis is down
        await back
        assert _real(out) and out.scenario == "account_stolen", out.state
    finally:
        await client.aclose()


# -- 6. a holder killed while it holds the lock ---------------------------------------------------
HOLDER = """
import asyncio, sys
from redis.asyncio import Redis
from bot.store.sessions import SessionStore, conversation_id
async def main():
    store = SessionStore(Redis.from_url(sys.argv[1]), lock_ttl_ms=int(sys.argv[2]))
    async with store.hold(conversation_id("http", "crash", None)):
        print("held", flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
"""


async def test_a_message_waiting_on_a_killed_holder_is_processed(
    tmp_path: Path, procs: list[rp.RedisProc], kb: KnowledgeBase, _matcher_scanner  # type: ignore[no-untyped-def]
) -> None:
    server = await asyncio.to_thread(rp.standalone, tmp_path)
    procs.append(server)
    settings = _settings(tmp_path, redis_url=server.url, lock_wait_s=1.0, lock_ttl_ms=3000)
    client = make_client(settings)
    pipeline = _pipeline(settings, client, kb, _matcher_scanner)
    holder = await asyncio.to_thread(subprocess.Popen, [sys.executable, "-c", HOLDER, server.url, "3000"],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(holder.stdout.readline), 30)
        assert line.strip() == "held"
        holder.kill()  # kill -9 while holding: its lock stays until its lease runs out
        holder.wait(timeout=5)
        t0 = time.monotonic()
        out = await _say(pipeline, "crash", "我被骗了两千块，刷单的", "after-crash")
        assert _real(out) and out.scenario == "fraud_victim", joined(out)
        assert "系统暂时出了点问题" not in joined(out)
        assert time.monotonic() - t0 < 5.0
    finally:
        if holder.poll() is None:
            holder.kill()
        await client.aclose()


async def test_a_slow_live_holder_keeps_its_lock(redis: Redis) -> None:
    store = SessionStore(redis, lock_ttl_ms=300)
    conv = conversation_id("http", "slow-holder", None)
    from pydantic import BaseModel

    class S(BaseModel):
        n: int = 1

    async with store.hold(conv, None) as held:
        await asyncio.sleep(1.0)  # three leases: renewed, not lost
        await store.commit(held, S(), [])
    assert await store.peek(conv) == '{"n":1}'


# -- 10. a same-user flood ---------------------------------------------------------------------------
async def test_a_same_user_flood_is_answered_in_order_without_outage_texts(make_pipeline, kb: KnowledgeBase) -> None:  # type: ignore[no-untyped-def]
    pipeline = make_pipeline(lock_wait_s=0.2, redis_timeout_s=0.1, rate_user_per_min=1000)
    texts = ["你好", "1", "下一步", "证据", "法律依据", "菜单"]
    outs = await asyncio.gather(*(_say(pipeline, "flooder", texts[i % 6], f"fl-{i}") for i in range(600)))
    static = text_of(kb, "static_fallback")
    assert [o.state for o in outs if not _real(o)] == []
    assert not any(joined(o) == static for o in outs)


async def test_a_busy_conversation_is_told_so_not_that_the_system_failed(make_pipeline, redis: Redis, kb: KnowledgeBase) -> None:  # type: ignore[no-untyped-def]
    pipeline = make_pipeline(lock_wait_s=0.3, lock_ttl_ms=200)
    other = SessionStore(redis, lock_ttl_ms=200)  # another process, alive and renewing
    conv = conversation_id("http", "busy-user", None)
    async with other.hold(conv, None):
        out = await _say(pipeline, "busy-user", "你好", "b1")
    assert out.state == "busy" and joined(out) == text_of(kb, "busy")
    again = await _say(pipeline, "busy-user", "你好", "b1")  # the retry is processed, not a replay
    assert _real(again) and not again.duplicate
