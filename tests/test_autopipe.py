"""The auto-pipeline (bot/store/autopipe.py) against real servers: a real Valkey/Redis for
per-caller results and errors, a silent TCP peer on 127.0.0.1 for the deadline."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.settings import Settings
from bot.store.autopipe import AutoPipeline
from bot.store.connect import make_client


async def test_a_batch_keeps_each_callers_error_to_itself(redis_url: str) -> None:
    """One script failing in a batch is that caller's error; the others get their results
    (what redis-py's pipeline gives with raise_on_error=False)."""
    client = make_client(Settings(_env_file=None), redis_url)  # type: ignore[call-arg]
    assert isinstance(client, Redis)
    try:
        ok = client.register_script("return ARGV[1]")
        bad = client.register_script("return redis.error_reply('nope')")
        await client.script_load(ok.script)
        await client.script_load(bad.script)
        pipe = AutoPipeline(client)
        results = await asyncio.gather(pipe.run(ok, [], ["a"]), pipe.run(bad, [], []), pipe.run(ok, [], ["b"]),
                                       return_exceptions=True)
        assert results[0] == b"a" and results[2] == b"b"
        assert isinstance(results[1], ResponseError) and "nope" in str(results[1])
    finally:
        await client.aclose()


async def test_a_stalled_server_fails_every_caller_within_the_deadline() -> None:
    """A server that takes the bytes and never answers (a paused Redis): the batch's one
    deadline bounds all its callers, however long the socket timeout is."""
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Redis(host="127.0.0.1", port=port, socket_timeout=30)
    try:
        script = client.register_script("return 1")
        pipe = AutoPipeline(client, deadline_s=0.3)
        t0 = time.monotonic()
        results = await asyncio.gather(*(pipe.run(script, [], [str(i)]) for i in range(5)), return_exceptions=True)
        assert time.monotonic() - t0 < 2.0
        assert all(isinstance(r, TimeoutError) for r in results), results
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
