"""The channel seam of ``python -m bot run``: every configured channel mounted, started,
reported in /readyz, and cleaned up when one of them cannot start."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.channels.base import Channel, ChannelStartError
from bot.channels.wxbase.wxxml import parse
from bot.server import start_channels
from tests.wx_peer import callbacks as wx
from tests.wx_peer.fake_api import APP_ID, APP_SECRET, CORP_ID, CORP_SECRET, FakeWeChatApi

ROOT = Path(__file__).resolve().parents[1]


class Probe:
    """A minimal channel that records its lifecycle; ``fail`` makes start() raise."""

    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail
        self.running = False

    @property
    def ready(self) -> bool:
        return self.running

    def routes(self) -> list[web.RouteDef]:
        return []

    async def start(self) -> None:
        self.log.append(f"start {self.name}")
        if self.fail:
            raise RuntimeError("gateway unreachable")
        self.running = True

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        self.running = False

    async def send(self, to: str, text: str) -> None:
        pass


def test_every_channel_implements_the_protocol() -> None:
    from bot.channels.kf import KfChannel
    from bot.channels.mp import MpChannel
    from bot.channels.wechaty import WechatyChannel

    for cls in (KfChannel, MpChannel, WechatyChannel):
        for member in ("name", "ready", "routes", "start", "stop", "send"):
            assert hasattr(cls, member), (cls.__name__, member)
    assert isinstance(Probe("p", []), Channel)


async def test_a_channel_that_fails_to_start_stops_the_others() -> None:
    log: list[str] = []
    a, b, c = Probe("a", log), Probe("b", log, fail=True), Probe("c", log)
    with pytest.raises(ChannelStartError, match="channel b failed to start: gateway unreachable"):
        await start_channels([a, b, c])
    assert log == ["start a", "start b", "stop b", "stop a"]
    assert not a.running and not c.running


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_bot_run_serves_both_official_channels(redis_url: str) -> None:
    fake = FakeWeChatApi()
    await fake.start()
    port = _free_port()
    env = {**os.environ, "FANZHA_REDIS_URL": redis_url, "FANZHA_HTTP_PORT": str(port),
           "FANZHA_MP_TOKEN": wx.MP_TOKEN, "FANZHA_MP_APP_ID": APP_ID, "FANZHA_MP_APP_SECRET": APP_SECRET,
           "FANZHA_MP_AES_KEY": wx.MP_AES_KEY, "FANZHA_MP_API_BASE": fake.url,
           "FANZHA_KF_CORP_ID": CORP_ID, "FANZHA_KF_SECRET": CORP_SECRET, "FANZHA_KF_TOKEN": wx.KF_TOKEN,
           "FANZHA_KF_AES_KEY": wx.KF_AES_KEY, "FANZHA_KF_API_BASE": fake.url}
    for name in ("FANZHA_WECHATY_ENDPOINT", "FANZHA_WECHATY_TOKEN", "WECHATY_PUPPET_SERVICE_ENDPOINT",
                 "WECHATY_PUPPET_SERVICE_TOKEN"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with http.get(f"{base}/readyz") as r:
                        body = await r.json()
                        break
                except aiohttp.ClientError:
                    assert proc.returncode is None, "bot exited"
                    assert time.monotonic() < deadline, "bot did not come up"
                    await asyncio.sleep(0.2)
            assert body["ready"] is True and body["checks"]["mp"] is True and body["checks"]["kf"] is True
            query, xml = wx.mp_safe(wx.mp_text("oRun", "我的微信号被盗了怎么办", "1"), APP_ID)
            async with http.post(f"{base}/wechat/mp", params=query, data=xml) as r:
                assert r.status == 200
                inner, _ = wx.decrypt(wx.MP_AES_KEY, parse(await r.read())["Encrypt"])
                assert parse(inner)["ToUserName"] == "oRun"
            fake.customer_message("wkRUN", "wmRun", "我的微信号被盗了怎么办")
            query, xml = wx.kf_event_callback(CORP_ID, "wkRUN", "T")
            async with http.post(f"{base}/wechat/kf", params=query, data=xml) as r:
                assert r.status == 200 and await r.text() == "success"
            deadline = time.monotonic() + 10
            while not fake.of("/cgi-bin/kf/send_msg"):
                assert time.monotonic() < deadline, "kf answer not sent"
                await asyncio.sleep(0.05)
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await fake.stop()
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert "Traceback" not in stderr
    assert "TOKEN0" not in stderr and APP_SECRET not in stderr and CORP_SECRET not in stderr


async def test_bot_run_refuses_half_configured_channel_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "FANZHA_MP_TOKEN": "abc123", "FANZHA_HTTP_PORT": str(_free_port()),
           "FANZHA_DATA_DIR": str(tmp_path)}
    for name in ("FANZHA_MP_APP_ID", "FANZHA_MP_APP_SECRET"):
        env.pop(name, None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    text = err.decode()
    assert "FANZHA_MP_APP_ID" in text and "Traceback" not in text
