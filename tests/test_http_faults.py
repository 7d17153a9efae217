"""Hostile HTTP clients and unsafe start-up settings, against real sockets and real processes.

Bodies that used to be a 500, slowloris connections, security headers, idempotent replays,
an empty or short API token, ``/metrics`` exposure, a comma-separated Redis URL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from bot.http_app import BODY_TIMEOUT_S, HEADER_TIMEOUT_S, REPLAY_HEADER, WEB_DIR, is_loopback, make_app
from bot.pipeline import Pipeline
from knowledge.schema import KnowledgeBase

from .conftest import topology_env
from .helpers import text_of

ROOT = Path(__file__).resolve().parents[1]


async def _ready() -> dict[str, bool]:
    return {"redis": True}


@pytest.fixture
async def client_for(pipeline: Pipeline) -> AsyncIterator[Callable[..., object]]:
    clients: list[TestClient] = []

    async def make(**kwargs: object) -> TestClient:
        app = make_app(pipeline.handle, kwargs.pop("ready", _ready), **kwargs)  # type: ignore[arg-type]
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


JSON = {"Content-Type": "application/json"}


# -- 7. hostile bodies -------------------------------------------------------------------------------
@pytest.mark.parametrize("body,headers,status", [
    (b'{"user_id": "u", "text": "x", "mentioned": ' + b"9" * 5000 + b"}", JSON, 400),  # > 4300 digits
    (b"this is not gzip", {**JSON, "Content-Encoding": "gzip"}, 400),
    (b"this is not deflate", {**JSON, "Content-Encoding": "deflate"}, 400),
    (b"this is not brotli", {**JSON, "Content-Encoding": "br"}, 400),
    (b'{"user_id": "u", "text": "x"}', {"Content-Type": "text/plain"}, 415),
    (b'{"user_id": "u", "text": "x"}', {"Content-Type": "application/x-www-form-urlencoded"}, 415),
])
async def test_hostile_bodies_get_a_4xx_and_no_traceback(client_for, caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
                                                          body: bytes, headers: dict[str, str], status: int) -> None:
    client = await client_for()
    caplog.set_level(logging.DEBUG)
    resp = await client.post("/api/v1/messages", data=body, headers=headers)
    assert resp.status == status
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    ok = await client.post("/api/v1/messages", json={"user_id": "after", "text": "你好"})
    assert ok.status == 200  # the server is fine afterwards


# -- 8. idempotent replays --------------------------------------------------------------------------
async def test_a_repeated_msg_id_gets_the_first_whole_response_marked_as_replay(client_for) -> None:  # type: ignore[no-untyped-def]
    client = await client_for()
    body = {"user_id": "idem", "text": "我被骗了两千块，刷单的", "msg_id": "pay-1"}
    first = await client.post("/api/v1/messages", json=body)
    second = await client.post("/api/v1/messages", json=body)
    assert first.status == second.status == 200
    one, two = await first.json(), await second.json()
    assert one["scenario"] == "fraud_victim" and one["replies"]
    assert two == one  # replies, scenario and state: the same JSON
    assert REPLAY_HEADER not in first.headers and second.headers[REPLAY_HEADER] == "true"
    third = await client.post("/api/v1/messages", json={**body, "msg_id": "pay-2", "text": "下一步"})
    assert REPLAY_HEADER not in third.headers and (await third.json())["replies"] != one["replies"]


# -- 10. security headers ----------------------------------------------------------------------------
async def test_every_response_has_security_headers_and_the_page_csp_allows_its_own_code(client_for) -> None:  # type: ignore[no-untyped-def]
    client = await client_for()
    for path in ("/", "/healthz", "/readyz"):
        resp = await client.get(path)
        csp = resp.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    for body in re.findall(r"<script>(.*?)</script>", html, flags=re.S):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp  # the page's own script still runs


# -- 3. /metrics --------------------------------------------------------------------------------------
async def test_metrics_need_the_token_when_there_is_one(client_for) -> None:  # type: ignore[no-untyped-def]
    token = "m" * 24
    client = await client_for(api_token=token)
    assert (await client.get("/metrics")).status == 401
    ok = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert ok.status == 200 and "fanzha_messages_in_total" in await ok.text()
    open_client = await client_for()
    assert (await open_client.get("/metrics")).status == 200  # no token: loopback peer is fine


def test_only_loopback_peers_count_as_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1")
    assert not any(is_loopback(a) for a in ("10.0.0.5", "192.168.1.2", "2001:db8::1", "", None, "garbage"))


# -- real processes: start-up rules and slowloris ------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FANZHA_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("env,needle", [
    ({"FANZHA_HTTP_HOST": "0.0.0.0", "FANZHA_API_TOKEN": ""}, "FANZHA_API_TOKEN"),
    ({"FANZHA_HTTP_HOST": "0.0.0.0", "FANZHA_API_TOKEN": "short"}, "at least 16"),
    ({"FANZHA_REDIS_URL": "redis://127.0.0.1:1/0,redis://127.0.0.1:2/0"}, "FANZHA_REDIS_URL"),
    ({"FANZHA_REDIS_SENTINELS": "127.0.0.1:1"}, "FANZHA_REDIS_SENTINEL_MASTER"),
])
def test_unsafe_or_broken_settings_stop_start_up_with_one_line(tmp_path: Path, env: dict[str, str], needle: str) -> None:
    try:
        out = _run({**env, "FANZHA_HTTP_PORT": str(_free_port()), "FANZHA_DATA_DIR": str(tmp_path)})
    except subprocess.TimeoutExpired:
        pytest.fail("the bot started (and served) with these settings")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in out.stderr
    assert "short" not in lines[0]  # the token is never echoed


@pytest.fixture
def running_bot(redis_url: str, redis: Redis) -> Iterator[int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANZHA_")}
    env.update({**topology_env(redis_url), "FANZHA_HTTP_PORT": str(port), "FANZHA_LOG_LEVEL": "WARNING"})
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _slow_client(port: int, first: bytes, drip: bytes, limit_s: float) -> tuple[float, bytes]:
    """Send ``first``, then one byte of ``drip`` per second; return when the server hangs up."""
    t0 = time.monotonic()
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(first)
        i = 0
        while time.monotonic() - t0 < limit_s:
            try:
                data = s.recv(4096)
                if not data:
                    break
                got += data
                continue
            except TimeoutError:
                pass
            except OSError:  # reset by the server: it hung up
                break
            try:
                s.sendall(drip[i % len(drip):][:1])
            except OSError:
                break
            i += 1
    return time.monotonic() - t0, got


async def test_slowloris_headers_and_bodies_are_cut_off(running_bot: int) -> None:
    port = running_bot
    limit = max(HEADER_TIMEOUT_S, BODY_TIMEOUT_S) + 15  # aiohttp's default held them ≥ 75 s
    headers = asyncio.to_thread(_slow_client, port, b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\n",
                                b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", limit)
    body = asyncio.to_thread(
        _slow_client, port,
        b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{",
        b'"', limit)
    (h_time, _), (b_time, b_got) = await asyncio.gather(headers, body)
    assert h_time < HEADER_TIMEOUT_S + 6, f"header slowloris held {h_time:.0f}s"
    assert b_time < BODY_TIMEOUT_S + 6, f"body slowloris held {b_time:.0f}s"
    assert not b_got or b" 408 " in b_got.split(b"\r\n", 1)[0], b_got[:200]  # 408, unless reset first


# -- 10. a code written before the word 验证码 ---------------------------------------------------------
async def test_a_code_before_the_word_is_redacted_and_warned(pipeline: Pipeline, redis: Redis, kb: KnowledgeBase) -> None:
    from .helpers import say

    out = await say(pipeline, "收到短信384920，说是验证码", user="code-before")
    assert out.replies[0].text.startswith(text_of(kb, "secret_warning", what="x")[:6])
    assert "384920" not in json.dumps([r.text for r in out.replies], ensure_ascii=False)
    for key in await redis.keys("*"):
        assert b"384920" not in (await redis.dump(key) or b"")
