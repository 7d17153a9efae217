"""The WeChat channel itself: connection lifecycle, inbound routing and outbound delivery.

Everything here is about *when* things happen (reconnects, the watchdog, per-conversation
ordering, pacing and retries); *how* the gateway is spoken to lives in ``link``, and the pure
text rules in ``text``, so this module never touches the protocol client directly.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prometheus_client import Counter as PromCounter

from bot.metrics import REGISTRY
from bot.models import IncomingMessage, Outcome, Reply

from .link import TYPE_TEXT, TYPES_NON_TEXT, WireContact, WireMessage, WireRoom, _client, _describe, _PuppetLink
from .pacing import SendPacer, _TTLCache
from .settings import WechatySettings
from .text import _frames, mentions_name, split_text, tag, to_seconds

log = logging.getLogger("bot.channels.wechaty")

EVENTS = PromCounter(
    "fanzha_wechaty_events_total",
    "WeChat channel events: handled, sent, skipped_<reason>, send_errors, send_lost, disconnects, ...",
    ["event"], registry=REGISTRY,
)

CHANNEL = "wechaty"
Handler = Callable[[IncomingMessage], Awaitable[Outcome]]

CLIENT_STOP_TIMEOUT = 5.0
"""Seconds to wait for the protocol client's tasks when disconnecting or stopping."""

P = TypeVar("P")
"""A gateway payload type (``WireContact``, ``WireRoom``) kept in a ``_TTLCache``."""


class WechatyChannel:
    """The WeChat channel: ``await start()`` spawns its tasks, ``await stop()`` ends them."""

    def __init__(self, settings: WechatySettings, handle: Handler) -> None:
        if settings.endpoint is None or settings.token is None:
            raise ValueError("WechatyChannel needs both an endpoint and a token")
        self.settings = settings
        self._handle = handle
        self.stats: Counter[str] = Counter()
        self._pacer = SendPacer(settings.send_interval_room, settings.send_interval_global)
        self._sem = asyncio.Semaphore(settings.max_concurrency)
        self._watchdog_s = settings.watchdog_minutes * 60.0
        self._names: _TTLCache[str, WireContact] = _TTLCache(ttl=3600.0)
        self._rooms: _TTLCache[str, WireRoom] = _TTLCache(ttl=60.0)
        self._aliases: _TTLCache[str, str] = _TTLCache(ttl=600.0)
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._inflight: set[str] = set()
        self._convs: dict[str, deque[Callable[[], Awaitable[None]]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._link: _PuppetLink | None = None
        self._self_id: str | None = None
        self._self_name: str | None = None
        self._logged_in = False
        self._alive = False
        self._last_event = time.monotonic()
        self._last_event_wall = 0.0
        self._last_ding = 0.0
        self._cutoff: float | None = None
        self._watchdog_fired = False
        self._stopping = False
        self._cancelled = False
        self.connections = 0

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Logged in and the event stream alive (an event within the watchdog window)."""
        return (
            self._link is not None
            and self._logged_in
            and self._alive
            and time.monotonic() - self._last_event < self._watchdog_s
        )

    @property
    def self_id(self) -> str | None:
        return self._self_id

    async def start(self) -> None:
        if self._runner is not None:
            return
        _client()  # fail here, with the install hint, if the extra is missing
        self._stopping = self._cancelled = False
        self._consumer = asyncio.create_task(self._consume(), name="wechaty-consume")
        self._runner = asyncio.create_task(self._run(), name="wechaty-connect")
        self._watchdog = asyncio.create_task(self._watch(), name="wechaty-watchdog")
        log.info("wechaty channel starting, gateway %s", self.settings.endpoint, extra={"channel": CHANNEL})

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Stop taking messages, let replies in progress finish (bounded), then disconnect."""
        self._stopping = True
        if self._consumer is not None:
            self._consumer.cancel()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _, still = await asyncio.wait(pending, timeout=drain_timeout)
            if still:
                log.warning("wechaty: %d task(s) still busy at shutdown are cancelled (their replies "
                            "are not sent)", len(still), extra={"channel": CHANNEL, "count": len(still)})
        self._cancelled = True
        tasks = [t for t in (self._watchdog, self._runner, self._consumer, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        if self._link is not None:
            self._link.close()  # any call still in flight fails at once
        _, stuck = await asyncio.wait(tasks, timeout=CLIENT_STOP_TIMEOUT) if tasks else (set(), set())
        if stuck:
            log.warning("wechaty: %d task(s) did not stop within %.0fs, abandoned", len(stuck),
                        CLIENT_STOP_TIMEOUT, extra={"channel": CHANNEL, "count": len(stuck)})
        self._link = None
        self._runner = self._consumer = self._watchdog = None
        self._logged_in = self._alive = False
        log.info("wechaty channel stopped", extra={"channel": CHANNEL})

    def _reraise_if_cancelled(self, exc: BaseException) -> None:
        """Closing the channel makes grpclib turn our tasks' cancellation into
        ``StreamTerminatedError`` (it cancels them itself, and never uncancels, so
        ``Task.cancelling()`` cannot tell): once stop() cancels, no error is "just an error"."""
        if self._cancelled:
            raise asyncio.CancelledError() from exc

    def _count(self, event: str, n: int = 1) -> None:
        """Count in ``stats`` (tests, debugging) and in Prometheus (label: a fixed event name)."""
        self.stats[event] += n
        EVENTS.labels(event).inc(n)

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self) -> None:
        """Connect, stream, and reconnect with exponential backoff, until stopped."""
        s = self.settings
        delay = s.reconnect_backoff
        while not self._stopping:
            # History cutoff: on the first connection, its start; on a reconnection, the last
            # moment the previous stream was known alive (messages sent during the outage
            # still count; replayed older history does not). The skew covers clock drift.
            now = time.time()
            if self._cutoff is None:
                self._cutoff = now - s.history_skew
            elif self._last_event_wall:
                self._cutoff = max(self._cutoff, self._last_event_wall - s.history_skew)
            link = _PuppetLink(s)
            self._link = link
            self._alive = self._logged_in = False
            self._watchdog_fired = False
            self._last_event = time.monotonic()
            self.connections += 1
            self._stream_task = asyncio.create_task(
                link.run(functools.partial(self._on_event, link)), name="wechaty-stream")
            task = self._stream_task
            task.add_done_callback(_retrieve)  # its outcome is read below, unless we are stopping
            try:
                await asyncio.wait({task})
            finally:
                got_events = self._alive
                self._alive = self._logged_in = False
                if self._link is link:
                    self._link = None
                if not task.done():
                    task.cancel()
                link.close()  # also what lets a server shut down on Python >= 3.12
                if not task.done():
                    # Never hang here: the client may swallow a cancellation (its start() does
                    # Stop in a try and Start in the finally).
                    await asyncio.wait({task}, timeout=CLIENT_STOP_TIMEOUT)
            if not task.done():
                reason = "client did not stop; abandoned"
            elif task.cancelled():
                reason = f"watchdog: no event for {self._watchdog_s:.0f}s" if self._watchdog_fired else "cancelled"
            elif task.exception() is not None:
                reason = _describe(task.exception())
            else:
                reason = "event stream ended"
            self._count("disconnects")
            if self._stopping:
                break
            if got_events:
                delay = s.reconnect_backoff
            wait = delay * random.uniform(0.8, 1.2)
            log.warning("wechaty gateway disconnected (%s); reconnecting in %.1fs", reason, wait,
                        extra={"channel": CHANNEL, "delay": round(wait, 2), "error": reason})
            await asyncio.sleep(wait)
            delay = min(delay * 2, s.reconnect_backoff_max)

    async def _watch(self) -> None:
        """Keepalive + watchdog: ding when idle; no event at all for too long -> reconnect."""
        limit = self._watchdog_s
        ding_every = min(60.0, limit / 3)
        tick = max(0.05, min(5.0, limit / 10))
        while True:
            await asyncio.sleep(tick)
            task, link = self._stream_task, self._link
            if task is None or task.done() or link is None:
                continue
            idle = time.monotonic() - self._last_event
            if idle > limit:
                self._count("watchdog")
                log.warning("wechaty watchdog: no event for %.0fs, reconnecting", idle,
                            extra={"channel": CHANNEL})
                self._watchdog_fired = True
                task.cancel()
                link.close()
            elif idle > ding_every and time.monotonic() - self._last_ding > ding_every:
                self._last_ding = time.monotonic()
                self._spawn(self._ding(link), "wechaty-ding")

    async def _ding(self, link: _PuppetLink) -> None:
        try:
            await link.ding()
        except Exception as exc:  # noqa: BLE001 - the watchdog decides, this only logs
            log.info("wechaty ding failed: %s", _describe(exc), extra={"channel": CHANNEL})

    # -- events (sync listeners: they must never raise into the client's stream loop) ----
    def _on_event(self, link: _PuppetLink, name: str, payload: Any = None) -> None:
        try:
            if link is not self._link:
                return
            self._last_event = time.monotonic()
            self._last_event_wall = time.time()
            self._alive = True
            if name == "message":
                self._enqueue(("message", payload.message_id))
            elif name == "room-join":
                self._enqueue(("join", payload))
            elif name == "login":
                self._self_id = payload.contact_id
                self._logged_in = True
                log.info("wechaty logged in as %s", tag(self._self_id), extra={"channel": CHANNEL})
                self._spawn(self._refresh_self_name(link), "wechaty-self-name")
            elif name == "logout":
                self._logged_in = False
                log.warning("wechaty account logged out", extra={"channel": CHANNEL})
            elif name == "scan":
                log.info("wechaty gateway waiting for a QR-code scan (status %s)",
                         getattr(payload, "status", "?"), extra={"channel": CHANNEL})
            elif name == "error":
                self._count("client_errors")
                log.warning("wechaty error event: %s", _describe(payload), extra={"channel": CHANNEL})
        except Exception as exc:  # noqa: BLE001 - a listener must not break the stream
            log.error("wechaty event %s not handled: %s", name, type(exc).__name__, extra={"channel": CHANNEL})

    def _enqueue(self, item: tuple[str, Any]) -> None:
        kind, value = item
        key = self._inflight_key(kind, value)
        if key is not None:
            if key in self._inflight:
                self._count("dropped_inflight_duplicate")
                log.info("wechaty message %s already in progress, duplicate dropped", key,
                         extra={"channel": CHANNEL, "duplicate": True})
                return
            self._inflight.add(key)
        self._inbox.put_nowait(item)

    def _inflight_key(self, kind: str, value: Any) -> str | None:
        """The id an inbox item is deduplicated on while in flight: the message id, or the
        join key (None for a join that does not add the bot, which is then never tracked)."""
        return value if kind == "message" else self._join_key(value)

    def _join_key(self, p: Any) -> str | None:
        """A stable id for a room-join event that adds the bot (the pipeline dedupes on it)."""
        ts = to_seconds(getattr(p, "timestamp", None))
        room = getattr(p, "room_id", None)
        if not room or not ts or not self._self_id or self._self_id not in (p.invited_ids or ()):
            return None
        return f"join:{room}:{int(ts * 1000)}"[:128]

    async def _refresh_self_name(self, link: _PuppetLink) -> None:
        if not self._self_id:
            return
        try:
            self._self_name = (await link.contact(self._self_id)).name or None
        except Exception as exc:  # noqa: BLE001
            log.info("wechaty: own name not available (%s)", _describe(exc), extra={"channel": CHANNEL})

    # -- inbound: arrival order -> per-conversation order ---------------------------------
    async def _consume(self) -> None:
        while True:
            kind, value = await self._inbox.get()
            key = self._inflight_key(kind, value)
            routed = False
            try:
                if kind == "message":
                    routed = await self._ingest_message(value)
                else:
                    routed = self._ingest_join(value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self._reraise_if_cancelled(exc)
                self._count("ingest_errors")
                log.error("wechaty message %s not processed: %s", key, _describe(exc),
                          extra={"channel": CHANNEL, "error": type(exc).__name__})
            finally:
                if not routed and key is not None:
                    self._inflight.discard(key)

    def _skip(self, reason: str, m_id: str) -> bool:
        self._count("skipped_" + reason)
        log.debug("wechaty message %s skipped: %s", m_id, reason, extra={"channel": CHANNEL})
        return False

    async def _ingest_message(self, message_id: str) -> bool:
        link = self._link
        if link is None:
            raise ConnectionError("gateway disconnected before the payload was read")
        m = await link.message(message_id)
        if not m.talker_id:
            return self._skip("no_talker", m.id)
        if self._self_id and m.talker_id == self._self_id:
            return self._skip("own_echo", m.id)
        if m.timestamp and self._cutoff and m.timestamp < self._cutoff:
            return self._skip("history", m.id)
        if m.type != TYPE_TEXT:
            if m.room_id:
                return self._skip("room_non_text", m.id)
            if m.type not in TYPES_NON_TEXT:
                return self._skip("unsupported_type", m.id)
        conv = m.room_id or m.talker_id
        self._route(conv, functools.partial(self._process_message, m, message_id))
        return True

    def _ingest_join(self, p: Any) -> bool:
        if not self._self_id or self._self_id not in (p.invited_ids or ()):
            return self._skip("other_join", "join")
        ts = to_seconds(p.timestamp)
        if ts and self._cutoff and ts < self._cutoff:
            return self._skip("history", "join")
        if not p.room_id:
            return self._skip("no_room", "join")
        self._route(p.room_id, functools.partial(self._process_join, p))
        return True

    def _route(self, conv: str, job: Callable[[], Awaitable[None]]) -> None:
        """Queue ``job`` behind earlier jobs of the same conversation (strict order per conv)."""
        queue = self._convs.get(conv)
        if queue is not None:
            queue.append(job)
            return
        queue = deque([job])
        self._convs[conv] = queue
        self._spawn(self._drain(conv, queue), "wechaty-conv")

    async def _drain(self, conv: str, queue: deque[Callable[[], Awaitable[None]]]) -> None:
        try:
            while queue:
                job = queue.popleft()
                async with self._sem:
                    await job()
        finally:
            if self._convs.get(conv) is queue:
                del self._convs[conv]

    async def _process_message(self, m: WireMessage, key: str) -> None:
        try:
            try:
                incoming = await self._to_incoming(m)
                if incoming is None:
                    self._skip("official_account", m.id)
                    return
                outcome = await self._handle(incoming)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the loop
                self._reraise_if_cancelled(exc)
                self._count("handler_errors")
                log.error("wechaty message %s: handler failed with %s (conv %s)\n%s", m.id,
                          type(exc).__name__, tag(m.room_id or m.talker_id), _frames(exc),
                          extra={"channel": CHANNEL, "error": type(exc).__name__})
                return
            self._count("handled")
            log.info("wechaty message %s handled: %d chars in, %d replies%s", m.id, len(m.text),
                     len(outcome.replies), " (duplicate)" if outcome.duplicate else "",
                     extra={"channel": CHANNEL, "chars": len(m.text), "replies": len(outcome.replies),
                            "room": tag(m.room_id) if m.room_id else None})
            if outcome.duplicate:
                # The pipeline already answered this id (its replies come back for HTTP
                # idempotency): a redelivered WeChat message must not be answered twice.
                self._count("duplicates")
                return
            names = {m.talker_id: incoming.user_name or ""}
            await self._deliver(m.room_id or m.talker_id, bool(m.room_id), outcome.replies, m.id, names)
        finally:
            self._inflight.discard(key)

    async def _process_join(self, p: Any) -> None:
        key = self._join_key(p)
        try:
            inviter = p.inviter_id or ""
            name = await self._contact_name(inviter) if inviter else None
            room = await self._room(p.room_id)
            is_admin = bool(room and inviter and (inviter == room.owner_id or inviter in room.admin_ids))
            incoming = IncomingMessage(
                channel=CHANNEL, kind="join", room_id=p.room_id, user_id=inviter or p.room_id, text="",
                msg_id=key, user_name=(name or None) and name[:64], is_admin=is_admin,
            )
            try:
                outcome = await self._handle(incoming)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self._reraise_if_cancelled(exc)
                self._count("handler_errors")
                log.error("wechaty join %s: handler failed with %s\n%s", tag(p.room_id), type(exc).__name__,
                          _frames(exc), extra={"channel": CHANNEL, "error": type(exc).__name__})
                return
            log.info("wechaty: added to room %s, %d replies", tag(p.room_id), len(outcome.replies),
                     extra={"channel": CHANNEL, "room": tag(p.room_id), "replies": len(outcome.replies)})
            if outcome.duplicate:
                self._count("duplicates")
                return
            await self._deliver(p.room_id, True, outcome.replies, key or "join", {inviter: name or ""})
        finally:
            if key is not None:
                self._inflight.discard(key)

    async def _to_incoming(self, m: WireMessage) -> IncomingMessage | None:
        contact = await self._contact(m.talker_id)
        if contact is not None and contact.official:
            return None
        name = contact.name if contact else None
        mentioned = is_admin = False
        if m.room_id:
            room = await self._room(m.room_id)
            is_admin = bool(room and (m.talker_id == room.owner_id or m.talker_id in room.admin_ids))
            mentioned = await self._mentioned(m)
        text_kind = m.type == TYPE_TEXT
        return IncomingMessage(
            channel=CHANNEL, user_id=m.talker_id, text=m.text if text_kind else "",
            room_id=m.room_id or None, mentioned=mentioned, msg_id=m.id,
            kind="text" if text_kind else "non_text", user_name=(name or None) and name[:64],
            is_admin=is_admin,
        )

    async def _mentioned(self, m: WireMessage) -> bool:
        """Mention-self: by id list, else by '@name' text (own name, configured name, room alias)."""
        if self._self_id and self._self_id in m.mention_ids:
            return True
        if "@" not in m.text:
            return False
        if mentions_name(m.text, (self._self_name, self.settings.bot_name)):
            return True
        alias = await self._self_alias(m.room_id)
        return mentions_name(m.text, (alias,))

    # -- cached lookups (failures degrade to "unknown", never fail the message) -----------
    async def _cached_payload(self, cache: _TTLCache[str, P], kind: str, key: str,
                              fetch: Callable[[_PuppetLink], Awaitable[P]]) -> P | None:
        """``cache[key]``, else ``fetch`` it from the gateway and cache it; ``None`` when not
        connected or the gateway fails (logged with ``kind``; failures are not cached, so the
        next message retries)."""
        cached = cache.get(key)
        if cached is not None:
            return cached
        link = self._link
        if link is None:
            return None
        try:
            payload = await fetch(link)
        except Exception as exc:  # noqa: BLE001
            self._reraise_if_cancelled(exc)
            # ``kind`` goes into the template (not the args) so each record's ``msg`` stays
            # the fixed "wechaty contact|room %s: ..." string that log grouping keys on.
            log.info(f"wechaty {kind} %s: payload unavailable (%s)", tag(key), _describe(exc),
                     extra={"channel": CHANNEL})
            return None
        cache.put(key, payload)
        return payload

    async def _contact(self, contact_id: str) -> WireContact | None:
        return await self._cached_payload(self._names, "contact", contact_id,
                                          lambda link: link.contact(contact_id))

    async def _contact_name(self, contact_id: str) -> str | None:
        contact = await self._contact(contact_id)
        return (contact.name or None) if contact else None

    async def _room(self, room_id: str) -> WireRoom | None:
        return await self._cached_payload(self._rooms, "room", room_id, lambda link: link.room(room_id))

    async def _self_alias(self, room_id: str) -> str | None:
        if not self._self_id:
            return None
        cached = self._aliases.get(room_id)
        if cached is not None:
            return cached or None
        link = self._link
        if link is None:
            return None
        try:
            alias = await link.room_alias(room_id, self._self_id)
        except Exception as exc:  # noqa: BLE001 - many gateways do not implement it
            self._reraise_if_cancelled(exc)
            alias = ""
        self._aliases.put(room_id, alias)
        return alias or None

    # -- outbound ------------------------------------------------------------------------
    async def _deliver(self, conv: str, in_room: bool, replies: list[Reply], ref: str,
                       names: dict[str, str]) -> None:
        """Send each reply (split, paced, retried); stop at the first one that cannot be sent."""
        for i, reply in enumerate(replies):
            mention = [uid for uid in reply.mention if uid] if in_room else []
            prefix = ""
            for uid in mention:
                name = names.get(uid) or await self._contact_name(uid)
                if name:
                    prefix += f"@{name} "
            limit = max(20, self.settings.max_reply_chars - len(prefix))
            chunks = split_text(reply.text, limit)
            for j, chunk in enumerate(chunks):
                text = prefix + chunk if j == 0 else chunk
                ok = await self._send(conv, text, mention if j == 0 else [], ref)
                if not ok:
                    lost = (len(chunks) - j) + sum(len(split_text(r.text, limit)) for r in replies[i + 1:])
                    self._count("send_lost", lost)
                    log.error("wechaty: %d message(s) for %s (reply to %s) NOT delivered after %d tries",
                              lost, tag(conv), ref, self.settings.send_retries,
                              extra={"channel": CHANNEL, "count": lost})
                    return

    async def send_to_room(self, room_id: str, text: str) -> None:
        """Proactive message to a room (the weekly tip): split, paced and retried like replies."""
        await self._deliver(room_id, True, [Reply(text=text)], "proactive", {})

    async def _send(self, conv: str, text: str, mention: list[str], ref: str) -> bool:
        s = self.settings
        for attempt in range(1, s.send_retries + 1):
            await self._pacer.wait(conv)
            try:
                link = self._link
                if link is None:
                    raise ConnectionError("not connected")
                await link.send_text(conv, text, mention)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                self._reraise_if_cancelled(exc)
                self._count("send_errors")
                if _maybe_delivered(exc):
                    # The gateway may have sent it and only the answer was late: a retry could
                    # make the user read the same reply twice, so it is logged, not resent.
                    self._count("send_uncertain")
                    log.warning("wechaty send to %s timed out (%s); not retried, may have been delivered",
                                tag(conv), _describe(exc), extra={"channel": CHANNEL, "attempt": attempt})
                    return True
                if attempt == s.send_retries:
                    log.warning("wechaty send to %s failed (%s), try %d/%d", tag(conv), _describe(exc),
                                attempt, s.send_retries, extra={"channel": CHANNEL, "attempt": attempt})
                    return False
                delay = s.send_retry_backoff * (2 ** (attempt - 1))
                log.warning("wechaty send to %s failed (%s), try %d/%d, retrying in %.1fs", tag(conv),
                            _describe(exc), attempt, s.send_retries, delay,
                            extra={"channel": CHANNEL, "attempt": attempt, "delay": delay})
                await asyncio.sleep(delay)
                continue
            self._count("sent")
            log.debug("wechaty sent %d chars to %s (reply to %s)", len(text), tag(conv), ref,
                      extra={"channel": CHANNEL, "chars": len(text)})
            return True
        return False


def _maybe_delivered(exc: BaseException) -> bool:
    """A timeout (client side, or the gateway's DEADLINE_EXCEEDED) leaves delivery unknown."""
    status = getattr(exc, "status", None)
    return isinstance(exc, TimeoutError) or getattr(status, "name", "") == "DEADLINE_EXCEEDED"


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a task's exception as seen (no 'exception was never retrieved' at shutdown)."""
    if not task.cancelled():
        task.exception()
