"""``python -m bot run``: HTTP server plus every configured channel, with graceful shutdown.

Channels are found from their own settings (``bot/channels/<name>/settings.py``), speak to
the server only through ``bot.channels.base.Channel``, mount their webhook routes on the one
aiohttp app, and appear one by one in ``/readyz``. They start before the port opens (no
callback reaches a channel that is not ready); a channel that fails to start is stopped along
with those already started, so nothing is left running, and start-up ends with one line.

SIGTERM/SIGINT stop accepting new work, let in-flight messages finish (aiohttp's shutdown
timeout), stop the channels, then close Redis and the embedded server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from aiohttp import web

from bot.channels.base import Channel, ChannelStartError
from bot.channels.kf.settings import KfSettings, kf_settings_from_env
from bot.channels.mp.settings import MpSettings, mp_settings_from_env
from bot.channels.wechaty.settings import WechatySettings, wechaty_settings_from_env
from bot.http_app import RUNNER_OPTIONS, make_app
from bot.pipeline import Pipeline
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError
from bot.tips import Sender, run_tips
from bot.webchat import page_data, render_index

log = logging.getLogger("bot.server")


@dataclass(frozen=True)
class ChannelSettings:
    """Each channel's own settings, or None where it is not configured."""

    wechaty: WechatySettings | None
    mp: MpSettings | None
    kf: KfSettings | None


def read_channel_settings() -> ChannelSettings:
    """Read every channel's settings before anything starts; SettingsError (one line) for a bad one."""
    try:
        return ChannelSettings(wechaty_settings_from_env(), mp_settings_from_env(), kf_settings_from_env())
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def build_channels(cs: ChannelSettings, runtime: Runtime, pipeline: Pipeline) -> list[Channel]:
    """One channel object per configured channel (nothing started yet)."""
    prefix = runtime.settings.key_prefix
    channels: list[Channel] = []
    if cs.wechaty is not None:
        from bot.channels.wechaty import WechatyChannel

        channels.append(WechatyChannel(cs.wechaty, pipeline.handle))
    if cs.mp is not None:
        from bot.channels.mp import MpChannel

        channels.append(MpChannel(cs.mp, pipeline.handle, pipeline.kb, redis=runtime.redis, key_prefix=prefix))
    if cs.kf is not None:
        from bot.channels.kf import KfChannel

        assert runtime.redis is not None
        channels.append(KfChannel(cs.kf, pipeline.handle, pipeline.kb, redis=runtime.redis, key_prefix=prefix))
    return channels


def mount(app: web.Application, channels: list[Channel]) -> None:
    """Add each channel's webhook routes (before the app is frozen by ``AppRunner.setup``)."""
    for ch in channels:
        app.router.add_routes(ch.routes())


async def start_channels(channels: list[Channel]) -> None:
    """Start them in order; on a failure stop every one started so far (and the failed one)."""
    started: list[Channel] = []
    for ch in channels:
        try:
            await ch.start()
        except Exception as exc:
            log.error("channel %s failed to start: %s", ch.name, type(exc).__name__)
            for other in reversed([*started, ch]):
                try:
                    await other.stop()
                except Exception as stop_exc:  # keep cleaning up the rest
                    log.warning("channel %s did not stop cleanly: %s", other.name, type(stop_exc).__name__)
            raise ChannelStartError(f"channel {ch.name} failed to start: {exc}") from exc
        started.append(ch)


async def stop_channels(channels: list[Channel]) -> None:
    for ch in reversed(channels):
        try:
            await ch.stop()
        except Exception as exc:  # the others must still stop
            log.warning("channel %s did not stop cleanly: %s", ch.name, type(exc).__name__)


async def serve(settings: Settings) -> int:
    channel_settings = read_channel_settings()  # a bad channel setting stops us before Redis starts
    runtime = Runtime(settings)
    pipeline = await runtime.start()
    channels = build_channels(channel_settings, runtime, pipeline)

    async def ready() -> dict[str, bool]:
        checks = {"redis": await runtime.redis_ok(), "knowledge": runtime.kb is not None}
        for ch in channels:
            checks[ch.name] = ch.ready
        return checks

    token = settings.api_token.get_secret_value() if settings.api_token else None
    app = make_app(pipeline.handle, ready, api_token=token, page=render_index(page_data(pipeline.kb)))
    mount(app, channels)
    runner = web.AppRunner(app, shutdown_timeout=10.0, access_log=None, **RUNNER_OPTIONS)
    await runner.setup()
    try:
        await start_channels(channels)
    except ChannelStartError as exc:
        await runner.cleanup()
        await runtime.close()
        raise SettingsError(str(exc)) from None
    try:
        # WeChat opens a connection per callback: a burst over the default backlog (128) would
        # wait a whole SYN retransmission (1 s) in the kernel, a fifth of the reply budget.
        site = web.TCPSite(runner, settings.http_host, settings.http_port, backlog=1024)
        await site.start()
    except OSError:
        await stop_channels(channels)
        await runner.cleanup()
        await runtime.close()
        raise
    senders: dict[str, Sender] = {ch.name: ch.send for ch in channels}
    tips = asyncio.create_task(run_tips(pipeline.kb, pipeline.rooms, senders)) if senders else None
    host, port = settings.http_host, settings.http_port
    log.info("listening", extra={"url": f"http://{host}:{port}/"})
    print(f"反诈助手 running: open http://{host}:{port}/  (Ctrl+C to stop)", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    if tips is not None:
        tips.cancel()
    await stop_channels(channels)
    await runner.cleanup()
    await runtime.close()
    return 0
