"""Contract test: the WeChat channel against the real TypeScript gateway from npm.

tests/wechaty_peer/ts/server.mjs runs wechaty-puppet-service's ``PuppetServer`` wrapping
``PuppetMock`` (no TLS, 127.0.0.1). Each test connects a fresh channel (so every test goes
through the client's Stop/Start, the login that follows, and the event stream), makes a mock
contact speak, and reads back what the bot sent as the mock saw it.

Needs Node >= 18 and the peer's packages: ``npm ci --prefix tests/wechaty_peer/ts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.channels.wechaty import WechatyChannel
from bot.models import IncomingMessage, Outcome, Reply
from tests.wechaty_peer.fake_server import free_port
from tests.wechaty_peer.support import fast_settings, until

TS_DIR = Path(__file__).resolve().parent / "wechaty_peer" / "ts"
ROOM = "10001@chatroom"
TOKEN = "ts-peer-token"
INSTALL = "npm ci --prefix tests/wechaty_peer/ts"


class TsPeer:
    """The node process: JSON lines in on stdin, JSON lines out on stdout."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.events: list[dict[str, Any]] = []
        self._lines: queue.Queue[str] = queue.Queue()
        env = {**os.environ, "WECHATY_PUPPET_SERVICE_NO_TLS_INSECURE_SERVER": "true", "WECHATY_LOG": "warn"}
        self.proc = subprocess.Popen(
            ["node", "server.mjs", "--port", str(port), "--token", TOKEN],
            cwd=TS_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, encoding="utf-8", bufsize=1,
        )
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self._on_line), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr.append), daemon=True).start()

    @staticmethod
    def _read(stream: Any, sink: Any) -> None:
        for line in stream:
            sink(line.rstrip("\n"))

    def _on_line(self, line: str) -> None:
        try:
            self.events.append(json.loads(line))
        except ValueError:
            self.stderr.append(line)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("event") == "listening" for e in self.events):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("TS peer did not start:\n" + "\n".join(self.stderr[-30:]))
            time.sleep(0.05)

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()

    async def say(self, talker: str, text: str, room: str | None = None, mention: list[str] | None = None) -> str:
        before = len(self.events)
        self.send(cmd="say", **{"from": talker}, text=text, room=room, mention=mention or [])

        def said() -> str | None:
            return next((e["id"] for e in self.events[before:] if e.get("event") == "said"), None)

        await until(lambda: said() is not None, what="TS peer 'said'")
        mid = said()
        assert mid
        return mid

    def sent(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == "sent"]

    def errors(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == "error"]

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.send(cmd="bye")
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def ts_peer() -> Iterator[TsPeer]:
    if shutil.which("node") is None:
        message = "the TypeScript contract test needs Node.js >= 18 on PATH (then: " + INSTALL + ")"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI has Node: the contract must really run there
        pytest.skip(message + " — skipped on this machine only; CI runs it")
    for pkg in ("wechaty-puppet-service", "wechaty-puppet-mock", "wechaty-puppet"):
        if not (TS_DIR / "node_modules" / pkg / "package.json").exists():
            pytest.fail(f"node_modules of the TS peer are missing ({pkg}); install them with: {INSTALL}")
    peer = TsPeer(free_port())
    try:
        peer.wait_listening()
        yield peer
    finally:
        peer.close()


class Recorder:
    """Answers mentioned room messages and every 1:1 message; dedupes ids like the pipeline."""

    def __init__(self) -> None:
        self.seen: list[IncomingMessage] = []
        self.answered: set[str] = set()

    async def __call__(self, msg: IncomingMessage) -> Outcome:
        self.seen.append(msg)
        if msg.msg_id in self.answered:
            return Outcome(duplicate=True)
        if msg.msg_id:
            self.answered.add(msg.msg_id)
        if msg.room_id and not msg.mentioned:
            return Outcome()
        mention = [msg.user_id] if msg.room_id else []
        return Outcome(replies=[Reply(text=f"收到{len(msg.text)}字", mention=mention)])

    def ids(self) -> list[str | None]:
        return [m.msg_id for m in self.seen]


@pytest.fixture
async def bot(ts_peer: TsPeer) -> AsyncIterator[tuple[WechatyChannel, Recorder]]:
    rec = Recorder()
    channel = WechatyChannel(fast_settings(ts_peer.endpoint, TOKEN), rec)
    await channel.start()
    try:
        await until(lambda: channel.ready and channel.self_id == "bot-id", timeout=20, what="login via TS peer")
        yield channel, rec
    finally:
        await channel.stop(drain_timeout=1.0)
    assert ts_peer.errors() == []


async def sent_after(peer: TsPeer, n_before: int, n: int = 1) -> list[dict[str, Any]]:
    await until(lambda: len(peer.sent()) >= n_before + n, what="bot's message seen by the TS peer")
    return peer.sent()[n_before:]


async def test_direct_message_is_answered(ts_peer: TsPeer, bot: Any) -> None:
    _, rec = bot
    before = len(ts_peer.sent())
    text = "有人让我下载会议软件共享屏幕"
    mid = await ts_peer.say("alice-id", text)
    sent = await sent_after(ts_peer, before)
    assert sent[0]["conversation"] == "alice-id" and sent[0]["room"] is None
    assert sent[0]["text"] == f"收到{len(text)}字"
    msg = rec.seen[0]
    assert (msg.msg_id, msg.user_id, msg.user_name, msg.room_id, msg.kind) == (mid, "alice-id", "Alice", None, "text")


async def test_room_without_mention_stays_silent(ts_peer: TsPeer, bot: Any) -> None:
    _, rec = bot
    before = len(ts_peer.sent())
    mid = await ts_peer.say("alice-id", "大家晚上好", room=ROOM)
    await until(lambda: mid in rec.ids())
    msg = rec.seen[-1]
    assert (msg.room_id, msg.mentioned, msg.is_admin, msg.user_name) == (ROOM, False, True, "Alice")
    barrier = await ts_peer.say("bob-id", "私聊")
    await sent_after(ts_peer, before)
    assert [s["conversation"] for s in ts_peer.sent()[before:]] == ["bob-id"]
    assert barrier in rec.ids()


@pytest.mark.parametrize("by_id", [True, False], ids=["mention-ids", "text-only"])
async def test_room_mention_is_answered_with_an_at(ts_peer: TsPeer, bot: Any, by_id: bool) -> None:
    _, rec = bot
    before = len(ts_peer.sent())
    await ts_peer.say("bob-id", "@反诈助手\u2005这个链接安全吗", room=ROOM, mention=["bot-id"] if by_id else [])
    sent = await sent_after(ts_peer, before)
    assert rec.seen[-1].mentioned is True and rec.seen[-1].is_admin is False
    assert sent[0]["room"] == ROOM and sent[0]["conversation"] == ROOM
    assert sent[0]["text"].startswith("@Bob ")
    assert sent[0]["mention"] == ["bob-id"]


async def test_duplicate_delivery_gets_one_answer(ts_peer: TsPeer, bot: Any) -> None:
    _, rec = bot
    before = len(ts_peer.sent())
    mid = await ts_peer.say("alice-id", "我刚才转了五千块")
    await sent_after(ts_peer, before)
    ts_peer.send(cmd="redeliver", id=mid)
    await until(lambda: rec.ids().count(mid) == 2, what="redelivery handed over")
    await ts_peer.say("bob-id", "barrier")
    await sent_after(ts_peer, before, 2)
    await asyncio.sleep(0.2)
    assert [s["conversation"] for s in ts_peer.sent()[before:]] == ["alice-id", "bob-id"]


async def test_own_echo_is_ignored(ts_peer: TsPeer, bot: Any) -> None:
    channel, rec = bot
    before = len(ts_peer.sent())
    await ts_peer.say("alice-id", "第一条")
    await sent_after(ts_peer, before)  # PuppetMock emits the bot's own message as an event
    await ts_peer.say("bob-id", "第二条")
    await sent_after(ts_peer, before, 2)
    assert [m.user_id for m in rec.seen] == ["alice-id", "bob-id"]
    assert channel.stats["skipped_own_echo"] >= 1
