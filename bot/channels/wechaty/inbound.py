"""Inbound: which gateway events become pipeline messages, in what order, and who answers.

* **Filtering**: the bot's own echoes, history replayed after a (re)connect, a message id
  already in progress, non-text in rooms, unknown system types and official accounts are
  dropped (each counted as ``skipped_<reason>``); non-text in 1:1 becomes ``non_text``.
* **Order**: payloads are fetched in arrival order (one consumer), then each conversation
  (room, or talker in 1:1) is handled strictly in order and different ones concurrently, at
  most ``max_concurrency`` at a time. A slot is held only while the handler runs: the replies
  go to the outbox, which sends them on its own time.
* **Who is talking**: mentions by id list or by ``@<bot name>`` / ``@<alias in the room>``
  text, admin rights from the room's owner/admin list.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from bot.channels.base import Handler
from bot.models import IncomingMessage

from .connection import Connection
from .directory import Directory
from .link import TYPE_TEXT, TYPES_NON_TEXT, WireMessage, _describe
from .outbound import Delivery, Outbox
from .runstate import CHANNEL, RunState, log
from .settings import WechatySettings
from .text import _frames, mentions_name, tag, to_seconds

Job = Callable[[], Awaitable[None]]


class Inbound:
    """Gateway events in, ``IncomingMessage`` to the handler, its replies to the outbox."""

    def __init__(self, settings: WechatySettings, handle: Handler, conn: Connection, directory: Directory,
                 outbox: Outbox, run: RunState) -> None:
        self.settings = settings
        self._handle = handle
        self._conn = conn
        self._directory = directory
        self._outbox = outbox
        self._run = run
        self._sem = asyncio.Semaphore(settings.max_concurrency)
        self._inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._inflight: set[str] = set()
        self._convs: dict[str, deque[Job]] = {}

    # -- from the connection's (sync) event listener ----------------------------------------
    def on_message(self, message_id: str) -> None:
        self._enqueue("message", message_id)

    def on_join(self, payload: Any) -> None:
        self._enqueue("join", payload)

    def _enqueue(self, kind: str, value: Any) -> None:
        key = self._inflight_key(kind, value)
        if key is not None:
            if key in self._inflight:
                self._run.count("dropped_inflight_duplicate")
                log.info("wechaty message %s already in progress, duplicate dropped", key,
                         extra={"channel": CHANNEL, "duplicate": True})
                return
            self._inflight.add(key)
        self._inbox.put_nowait((kind, value))

    def _inflight_key(self, kind: str, value: Any) -> str | None:
        """The id an inbox item is deduplicated on while in flight: the message id, or the
        join key (None for a join that does not add the bot, which is then never tracked)."""
        return value if kind == "message" else self._join_key(value)

    def _join_key(self, p: Any) -> str | None:
        """A stable id for a room-join event that adds the bot (the pipeline dedupes on it)."""
        self_id = self._conn.self_id
        ts = to_seconds(getattr(p, "timestamp", None))
        room = getattr(p, "room_id", None)
        if not room or not ts or not self_id or self_id not in (p.invited_ids or ()):
            return None
        return f"join:{room}:{int(ts * 1000)}"[:128]

    # -- arrival order -> per-conversation order ---------------------------------------------
    async def consume(self) -> None:
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
            except Exception as exc:  # one unreadable payload must not stop the consumer
                self._run.reraise_if_cancelled(exc)
                self._run.count("ingest_errors")
                log.error("wechaty message %s not processed: %s", key, _describe(exc),
                          extra={"channel": CHANNEL, "error": type(exc).__name__})
            finally:
                if not routed and key is not None:
                    self._inflight.discard(key)

    def _skip(self, reason: str, m_id: str) -> bool:
        self._run.count("skipped_" + reason)
        log.debug("wechaty message %s skipped: %s", m_id, reason, extra={"channel": CHANNEL})
        return False

    async def _ingest_message(self, message_id: str) -> bool:
        link = self._conn.link
        if link is None:
            raise ConnectionError("gateway disconnected before the payload was read")
        m = await link.message(message_id)
        cutoff, self_id = self._conn.cutoff, self._conn.self_id
        if not m.talker_id:
            return self._skip("no_talker", m.id)
        if self_id and m.talker_id == self_id:
            return self._skip("own_echo", m.id)
        if m.timestamp and cutoff and m.timestamp < cutoff:
            return self._skip("history", m.id)
        if m.type != TYPE_TEXT:
            if m.room_id:
                return self._skip("room_non_text", m.id)
            if m.type not in TYPES_NON_TEXT:
                return self._skip("unsupported_type", m.id)
        self._route(m.room_id or m.talker_id, functools.partial(self._process_message, m, message_id))
        return True

    def _ingest_join(self, p: Any) -> bool:
        self_id, cutoff = self._conn.self_id, self._conn.cutoff
        if not self_id or self_id not in (p.invited_ids or ()):
            return self._skip("other_join", "join")
        ts = to_seconds(p.timestamp)
        if ts and cutoff and ts < cutoff:
            return self._skip("history", "join")
        if not p.room_id:
            return self._skip("no_room", "join")
        self._route(p.room_id, functools.partial(self._process_join, p))
        return True

    def _route(self, conv: str, job: Job) -> None:
        """Queue ``job`` behind earlier jobs of the same conversation (strict order per conv)."""
        queue = self._convs.get(conv)
        if queue is not None:
            queue.append(job)
            return
        queue = deque([job])
        self._convs[conv] = queue
        self._run.spawn(self._drain(conv, queue), "wechaty-conv")

    async def _drain(self, conv: str, queue: deque[Job]) -> None:
        try:
            while queue:
                job = queue.popleft()
                async with self._sem:  # held while the handler runs, not while replies are sent
                    await job()
        finally:
            if self._convs.get(conv) is queue:
                del self._convs[conv]

    # -- one message / one join ---------------------------------------------------------------
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
            except Exception as exc:  # one bad message must not stop the loop
                self._run.reraise_if_cancelled(exc)
                self._run.count("handler_errors")
                log.error("wechaty message %s: handler failed with %s (conv %s)\n%s", m.id,
                          type(exc).__name__, tag(m.room_id or m.talker_id), _frames(exc),
                          extra={"channel": CHANNEL, "error": type(exc).__name__})
                return
            self._run.count("handled")
            log.info("wechaty message %s handled: %d chars in, %d replies%s", m.id, len(m.text),
                     len(outcome.replies), " (duplicate)" if outcome.duplicate else "",
                     extra={"channel": CHANNEL, "chars": len(m.text), "replies": len(outcome.replies),
                            "room": tag(m.room_id) if m.room_id else None})
            if outcome.duplicate:
                # The pipeline already answered this id (its replies come back for HTTP
                # idempotency): a redelivered WeChat message must not be answered twice.
                self._run.count("duplicates")
                return
            if outcome.replies:
                self._outbox.put(m.room_id or m.talker_id, Delivery(
                    in_room=bool(m.room_id), replies=outcome.replies, ref=m.id,
                    names={m.talker_id: incoming.user_name or ""}))
        finally:
            self._inflight.discard(key)

    async def _process_join(self, p: Any) -> None:
        key = self._join_key(p)
        try:
            inviter = p.inviter_id or ""
            name = await self._directory.contact_name(inviter) if inviter else None
            incoming = IncomingMessage(
                channel=CHANNEL, kind="join", room_id=p.room_id, user_id=inviter or p.room_id, text="",
                msg_id=key, user_name=(name or None) and name[:64],
                is_admin=await self._directory.is_admin(p.room_id, inviter),
            )
            try:
                outcome = await self._handle(incoming)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad join must not stop the loop
                self._run.reraise_if_cancelled(exc)
                self._run.count("handler_errors")
                log.error("wechaty join %s: handler failed with %s\n%s", tag(p.room_id), type(exc).__name__,
                          _frames(exc), extra={"channel": CHANNEL, "error": type(exc).__name__})
                return
            log.info("wechaty: added to room %s, %d replies", tag(p.room_id), len(outcome.replies),
                     extra={"channel": CHANNEL, "room": tag(p.room_id), "replies": len(outcome.replies)})
            if outcome.duplicate:
                self._run.count("duplicates")
                return
            if outcome.replies:
                self._outbox.put(p.room_id, Delivery(in_room=True, replies=outcome.replies, ref=key or "join",
                                                     names={inviter: name or ""}))
        finally:
            if key is not None:
                self._inflight.discard(key)

    async def _to_incoming(self, m: WireMessage) -> IncomingMessage | None:
        contact = await self._directory.contact(m.talker_id)
        if contact is not None and contact.official:
            return None
        name = contact.name if contact else None
        mentioned = is_admin = False
        if m.room_id:
            is_admin = await self._directory.is_admin(m.room_id, m.talker_id)
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
        self_id = self._conn.self_id
        if self_id and self_id in m.mention_ids:
            return True
        if "@" not in m.text:
            return False
        if mentions_name(m.text, (self._conn.self_name, self.settings.bot_name)):
            return True
        alias = await self._directory.self_alias(m.room_id, self_id) if self_id else None
        return mentions_name(m.text, (alias,))
