"""Connection upkeep: connect, stream events, reconnect with backoff, and a watchdog.

The protocol client has no reconnect and no keepalive, and a silently dropped TCP connection
would hang it forever: this module adds both, and knows who the bot is (login id and name)
and since when messages count (the history cutoff). It hands message ids and join payloads
on through two callbacks and knows nothing about what is done with them.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable
from typing import Any

from .link import _describe, _PuppetLink
from .runstate import CHANNEL, RunState, log, retrieve
from .settings import WechatySettings
from .text import tag

CLIENT_STOP_TIMEOUT = 5.0
"""Seconds to wait for the protocol client's tasks when disconnecting or stopping."""


class Connection:
    """One gateway at a time: ``run()`` until stopped; ``link`` is the current one (or None)."""

    def __init__(self, settings: WechatySettings, run: RunState,
                 on_message: Callable[[str], None], on_join: Callable[[Any], None]) -> None:
        self.settings = settings
        self._run_state = run
        self._on_message = on_message
        self._on_join = on_join
        self.watchdog_s = settings.watchdog_minutes * 60.0
        self.link: _PuppetLink | None = None
        self.self_id: str | None = None
        self.self_name: str | None = None
        self.logged_in = False
        self.alive = False
        self.connections = 0
        self.cutoff: float | None = None
        """Messages older than this (epoch seconds) are replayed history and dropped."""
        self._last_event = time.monotonic()
        self._last_event_wall = 0.0
        self._last_ding = 0.0
        self._watchdog_fired = False
        self._stream_task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Logged in and the event stream alive (an event within the watchdog window)."""
        return (self.link is not None and self.logged_in and self.alive
                and time.monotonic() - self._last_event < self.watchdog_s)

    def close(self) -> None:
        """Make any call in flight fail at once (stop() cancels the tasks around it)."""
        if self.link is not None:
            self.link.close()
        self.link = None
        self.logged_in = self.alive = False

    async def run(self) -> None:
        """Connect, stream, and reconnect with exponential backoff, until stopped."""
        s = self.settings
        delay = s.reconnect_backoff
        while not self._run_state.stopping:
            # History cutoff: on the first connection, its start; on a reconnection, the last
            # moment the previous stream was known alive (messages sent during the outage
            # still count; replayed older history does not). The skew covers clock drift.
            now = time.time()
            if self.cutoff is None:
                self.cutoff = now - s.history_skew
            elif self._last_event_wall:
                self.cutoff = max(self.cutoff, self._last_event_wall - s.history_skew)
            link = _PuppetLink(s)
            self.link = link
            self.alive = self.logged_in = False
            self._watchdog_fired = False
            self._last_event = time.monotonic()
            self.connections += 1
            task = self._stream_task = asyncio.create_task(
                link.run(functools.partial(self._on_event, link)), name="wechaty-stream")
            task.add_done_callback(retrieve)  # its outcome is read below, unless we are stopping
            try:
                await asyncio.wait({task})
            finally:
                got_events = self.alive
                self.alive = self.logged_in = False
                if self.link is link:
                    self.link = None
                if not task.done():
                    task.cancel()
                link.close()  # also what lets a server shut down on Python >= 3.12
                if not task.done():
                    # Never hang here: the client may swallow a cancellation (its start() does
                    # Stop in a try and Start in the finally).
                    await asyncio.wait({task}, timeout=CLIENT_STOP_TIMEOUT)
            reason = self._why_it_ended(task)
            self._run_state.count("disconnects")
            if self._run_state.stopping:
                break
            if got_events:
                delay = s.reconnect_backoff
            wait = delay * random.uniform(0.8, 1.2)
            log.warning("wechaty gateway disconnected (%s); reconnecting in %.1fs", reason, wait,
                        extra={"channel": CHANNEL, "delay": round(wait, 2), "error": reason})
            await asyncio.sleep(wait)
            delay = min(delay * 2, s.reconnect_backoff_max)

    def _why_it_ended(self, task: asyncio.Task[None]) -> str:
        if not task.done():
            return "client did not stop; abandoned"
        if task.cancelled():
            return f"watchdog: no event for {self.watchdog_s:.0f}s" if self._watchdog_fired else "cancelled"
        if task.exception() is not None:
            return _describe(task.exception())
        return "event stream ended"

    async def watch(self) -> None:
        """Keepalive + watchdog: ding when idle; no event at all for too long -> reconnect."""
        limit = self.watchdog_s
        ding_every = min(60.0, limit / 3)
        tick = max(0.05, min(5.0, limit / 10))
        while True:
            await asyncio.sleep(tick)
            task, link = self._stream_task, self.link
            if task is None or task.done() or link is None:
                continue
            idle = time.monotonic() - self._last_event
            if idle > limit:
                self._run_state.count("watchdog")
                log.warning("wechaty watchdog: no event for %.0fs, reconnecting", idle,
                            extra={"channel": CHANNEL})
                self._watchdog_fired = True
                task.cancel()
                link.close()
            elif idle > ding_every and time.monotonic() - self._last_ding > ding_every:
                self._last_ding = time.monotonic()
                self._run_state.spawn(self._ding(link), "wechaty-ding")

    async def _ding(self, link: _PuppetLink) -> None:
        try:
            await link.ding()
        except Exception as exc:  # the watchdog decides, this only logs
            log.info("wechaty ding failed: %s", _describe(exc), extra={"channel": CHANNEL})

    # -- events (sync listeners: they must never raise into the client's stream loop) ----
    def _on_event(self, link: _PuppetLink, name: str, payload: Any = None) -> None:
        try:
            if link is not self.link:
                return
            self._last_event = time.monotonic()
            self._last_event_wall = time.time()
            self.alive = True
            if name == "message":
                self._on_message(payload.message_id)
            elif name == "room-join":
                self._on_join(payload)
            elif name == "login":
                self.self_id = payload.contact_id
                self.logged_in = True
                log.info("wechaty logged in as %s", tag(self.self_id), extra={"channel": CHANNEL})
                self._run_state.spawn(self._refresh_self_name(link), "wechaty-self-name")
            elif name == "logout":
                self.logged_in = False
                log.warning("wechaty account logged out", extra={"channel": CHANNEL})
            elif name == "scan":
                log.info("wechaty gateway waiting for a QR-code scan (status %s)",
                         getattr(payload, "status", "?"), extra={"channel": CHANNEL})
            elif name == "error":
                self._run_state.count("client_errors")
                log.warning("wechaty error event: %s", _describe(payload), extra={"channel": CHANNEL})
        except Exception as exc:  # a listener must not break the stream
            log.error("wechaty event %s not handled: %s", name, type(exc).__name__, extra={"channel": CHANNEL})

    async def _refresh_self_name(self, link: _PuppetLink) -> None:
        if not self.self_id:
            return
        try:
            self.self_name = (await link.contact(self.self_id)).name or None
        except Exception as exc:  # mentions by id still work without the name
            log.info("wechaty: own name not available (%s)", _describe(exc), extra={"channel": CHANNEL})
