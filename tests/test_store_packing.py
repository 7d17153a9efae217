"""The C packer (bot/store/packing.py) must put exactly redis-py's bytes on the wire, and the
client must really use it and still work against the real server."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from bot.settings import Settings
from bot.store.connect import make_client
from bot.store.packing import FastConnection

CASES: list[tuple[object, ...]] = [
    ("EVALSHA", "a" * 40, 3, "fanzha:{bench:u1}:lock", "fanzha:{bench:u1}:sess", "tok-1", 30000, 86400,
     '{"state":"scenario","scenario":"fraud_victim"}', "我被骗了两千块钱，对方是刷单的"),
    ("SET", b"k", b"\x00\xff binary", 0, -1, -(2**63), 2**63 - 1),
    ("SET", "k", 2**80),  # beyond hiredis' integers: redis-py's packer
    ("SET", "k", 1.5, 1e-7, 3.0),  # floats: redis-py's packer
    ("SET", "k", bytearray(b"ab"), memoryview(b"cd")),
    ("CONFIG GET", "maxmemory"),
    (b"CONFIG GET", b"maxmemory"),
    ("SET", "", ""),
    ("SET", "k", "x" * 10_000),  # above redis-py's buffer cutoff (it chunks; the bytes are the same)
]


@pytest.mark.parametrize("args", CASES)
def test_same_bytes_as_redis_py(args: tuple[object, ...]) -> None:
    assert b"".join(FastConnection().pack_command(*args)) == b"".join(Connection().pack_command(*args))


def test_pipeline_packing_same_bytes() -> None:
    cmds = [c for c in CASES if not isinstance(c[0], str) or " " not in c[0]]
    assert b"".join(FastConnection().pack_commands(cmds)) == b"".join(Connection().pack_commands(cmds))


@pytest.mark.parametrize("bad", [True, None, object()])
def test_bad_arguments_fail_as_in_redis_py(bad: object) -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(DataError):
        FastConnection().pack_command("SET", "k", bad)


async def test_client_uses_it_against_the_server(redis_url: str) -> None:
    client = make_client(Settings(_env_file=None), redis_url)  # type: ignore[call-arg]
    assert isinstance(client, Redis)
    assert client.connection_pool.connection_class.__name__ == "FastConnection"
    try:
        await client.set("packing:k", "反诈 ✓")
        assert await client.get("packing:k") == "反诈 ✓".encode()
        assert await client.eval("return ARGV[1] + ARGV[2]", 0, 40, 2) == 42
    finally:
        await client.delete("packing:k")
        await client.aclose()


def test_a_plain_batch_is_one_buffer_with_redis_pys_bytes() -> None:
    """The auto-pipeline's batches (all plain arguments) take the one-buffer path."""
    plain = [CASES[0], CASES[1], CASES[7], CASES[8]]
    fast = FastConnection().pack_commands(plain)
    assert len(fast) == 1
    assert fast[0] == b"".join(Connection().pack_commands(plain))

