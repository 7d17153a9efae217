"""The WeChat channel: the three parts wired together, and start/stop in the right order.

* ``connection`` — connect, stream, reconnect, watchdog; who the bot is; the history cutoff;
* ``inbound`` — filters gateway events, keeps per-conversation order, calls the handler;
* ``outbound`` — a per-conversation outbox: split, paced, retried sends.

They share a ``RunState`` (counters, background tasks, the stop flag) and a ``Directory``
(cached names and room admins). *How* the gateway is spoken to lives in ``link``.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from aiohttp import web

from bot.models import Reply

from . import connection
from .connection import Connection
from .directory import Directory
from .inbound import Handler, Inbound
from .link import _client
from .outbound import Delivery, Outbox
from .runstate import CHANNEL, EVENTS, RunState, log
from .settings import WechatySettings

__all__ = ["CHANNEL", "EVENTS", "Handler", "WechatyChannel"]


class WechatyChannel:
    """The WeChat channel: ``await start()`` spawns its tasks, ``await stop()`` ends them."""

    name = CHANNEL

    def __init__(self, settings: WechatySettings, handle: Handler) -> None:
        if settings.endpoint is None or settings.token is None:
            raise ValueError("WechatyChannel needs both an endpoint and a token")
        self.settings = settings
        self._run = RunState()
        # The connection calls into inbound, which reads the connection: hence the lambdas.
        self.connection = Connection(settings, self._run, lambda message_id: self.inbound.on_message(message_id),
                                     lambda payload: self.inbound.on_join(payload))
        self.directory = Directory(lambda: self.connection.link, self._run)
        self.outbox = Outbox(settings, lambda: self.connection.link, self.directory, self._run)
        self.inbound = Inbound(settings, handle, self.connection, self.directory, self.outbox, self._run)
        self._runner: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def stats(self) -> Counter[str]:
        """Event counts since start (the same names as ``fanzha_wechaty_events_total``)."""
        return self._run.stats

    @property
    def ready(self) -> bool:
        """Logged in and the event stream alive (an event within the watchdog window)."""
        return self.connection.ready

    @property
    def self_id(self) -> str | None:
        return self.connection.self_id

    @property
    def connections(self) -> int:
        return self.connection.connections

    async def start(self) -> None:
        if self._runner is not None:
            return
        _client()  # fail here, with the install hint, if the extra is missing
        self._run.stopping = self._run.cancelled = False
        self._consumer = asyncio.create_task(self.inbound.consume(), name="wechaty-consume")
        self._runner = asyncio.create_task(self.connection.run(), name="wechaty-connect")
        self._watchdog = asyncio.create_task(self.connection.watch(), name="wechaty-watchdog")
        log.info("wechaty channel starting, gateway %s", self.settings.endpoint, extra={"channel": CHANNEL})

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop taking messages, let handling and sending in progress finish (bounded), then
        disconnect. Handling can queue more sends while we wait, so wait until nothing is left."""
        self._run.stopping = True
        if self._consumer is not None:
            self._consumer.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        while (pending := self._run.pending()) and (left := deadline - loop.time()) > 0:
            await asyncio.wait(pending, timeout=left)
        if still := self._run.pending():
            log.warning("wechaty: %d task(s) still busy at shutdown are cancelled (their replies "
                        "are not sent)", len(still), extra={"channel": CHANNEL, "count": len(still)})
        self._run.cancelled = True
        tasks = [t for t in (self._watchdog, self._runner, self._consumer, *self._run.tasks) if t is not None]
        for task in tasks:
            task.cancel()
        self.connection.close()  # any call still in flight fails at once
        _, stuck = await asyncio.wait(tasks, timeout=connection.CLIENT_STOP_TIMEOUT) if tasks else (set(), set())
        if stuck:
            log.warning("wechaty: %d task(s) did not stop within %.0fs, abandoned", len(stuck),
                        connection.CLIENT_STOP_TIMEOUT, extra={"channel": CHANNEL, "count": len(stuck)})
        self.connection.close()
        self._runner = self._consumer = self._watchdog = None
        log.info("wechaty channel stopped", extra={"channel": CHANNEL})

    def routes(self) -> list[web.RouteDef]:
        """A push channel: nothing to mount on the HTTP server (``Channel`` protocol)."""
        return []

    async def send(self, to: str, text: str) -> None:
        """``Channel.send``: a proactive message to a room (weekly tips)."""
        await self.send_to_room(to, text)

    async def send_to_room(self, room_id: str, text: str) -> None:
        """Proactive message to a room (the weekly tip): split, paced and retried like replies,
        behind any replies already queued for the room. Raises when it could not be sent, so
        the caller can try again later."""
        if not await self.outbox.send(room_id, Delivery(in_room=True, replies=[Reply(text=text)], ref="proactive")):
            raise ConnectionError("the message could not be sent to the room")
