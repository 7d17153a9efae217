"""``python -m bot run``: HTTP server plus every configured channel, with graceful shutdown.

SIGTERM/SIGINT stop accepting new work, let in-flight messages finish (aiohttp's shutdown
timeout), stop the channels, then close Redis and the embedded server.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from bot.http_app import make_app
from bot.runtime import Runtime
from bot.settings import Settings, SettingsError
from bot.tips import run_tips

log = logging.getLogger("bot.server")


async def serve(settings: Settings) -> int:
    from bot.channels.wechaty import wechaty_settings_from_env

    try:
        wechaty_settings = wechaty_settings_from_env()
    except ValueError as exc:
        raise SettingsError(str(exc)) from None

    runtime = Runtime(settings)
    pipeline = await runtime.start()
    channels: list[object] = []
    if wechaty_settings is not None:
        from bot.channels.wechaty import WechatyChannel

        channels.append(WechatyChannel(wechaty_settings, pipeline.handle))

    async def ready() -> dict[str, bool]:
        checks = {"redis": await runtime.redis_ok(), "knowledge": runtime.kb is not None}
        for ch in channels:
            checks[type(ch).__name__] = bool(getattr(ch, "ready", False))
        return checks

    token = settings.api_token.get_secret_value() if settings.api_token else None
    app = make_app(pipeline.handle, ready, api_token=token)
    runner = web.AppRunner(app, shutdown_timeout=10.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    for ch in channels:
        await ch.start()  # type: ignore[attr-defined]
    proactive = [ch for ch in channels if hasattr(ch, "send_to_room")]  # only Wechaty sends unasked today
    senders = {"wechaty": proactive[-1].send_to_room} if proactive else {}
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
    for ch in channels:
        await ch.stop()  # type: ignore[attr-defined]
    await runner.cleanup()
    await runtime.close()
    return 0
