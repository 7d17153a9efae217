"""Outbound delivery: a per-conversation outbox, reply splitting, pacing and retries.

Replies are handed over with ``put`` and the caller moves on at once: each conversation's
outbox is drained by its own task, strictly in order, so waiting out send pacing or a retry
backoff never holds up reading and scanning the next message (and never holds one of the
inbound concurrency slots). A failed send is retried with backoff; one that still fails is
logged as an error and counted (``send_lost``) — never dropped silently. A send that timed
out after the gateway may already have delivered it is not resent (``send_uncertain``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from bot.models import Reply

from .directory import Directory, LinkGetter
from .link import _describe
from .pacing import SendPacer
from .runstate import CHANNEL, RunState, log
from .settings import WechatySettings
from .text import split_text, tag


@dataclass
class Delivery:
    """The replies to one message (or one proactive text), as one unit of the outbox."""

    in_room: bool
    replies: list[Reply]
    ref: str
    """What the replies answer (a message id, ``proactive``), for the logs."""
    names: dict[str, str] = field(default_factory=dict)
    """Display names already known (the asker's), so ``@name`` needs no lookup."""
    done: asyncio.Future[bool] | None = None
    """Resolved True when every chunk went out, False when one could not be sent."""


class Outbox:
    """One FIFO queue per conversation, each drained by a task that exists while it has work."""

    def __init__(self, settings: WechatySettings, link: LinkGetter, directory: Directory, run: RunState) -> None:
        self.settings = settings
        self._link = link
        self._directory = directory
        self._run = run
        self._pacer = SendPacer(settings.send_interval_room, settings.send_interval_global)
        self._queues: dict[str, deque[Delivery]] = {}

    @property
    def backlog(self) -> int:
        """Deliveries waiting (not counting the one being sent in each conversation)."""
        return sum(len(q) for q in self._queues.values())

    def put(self, conv: str, delivery: Delivery) -> None:
        """Queue ``delivery`` behind earlier ones of ``conv``; never waits."""
        queue = self._queues.get(conv)
        if queue is not None:
            queue.append(delivery)
            return
        queue = deque([delivery])
        self._queues[conv] = queue
        self._run.spawn(self._drain(conv, queue), "wechaty-send")

    async def send(self, conv: str, delivery: Delivery) -> bool:
        """``put`` and wait until the delivery was sent (True) or given up (False)."""
        delivery.done = asyncio.get_running_loop().create_future()
        self.put(conv, delivery)
        return await delivery.done

    async def _drain(self, conv: str, queue: deque[Delivery]) -> None:
        try:
            while queue:
                delivery = queue.popleft()
                ok = False
                try:
                    ok = await self._deliver(conv, delivery)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # one broken delivery must not drop those behind it
                    self._run.reraise_if_cancelled(exc)
                    self._run.count("send_errors")
                    log.error("wechaty: reply to %s for %s NOT delivered: %s", delivery.ref, tag(conv),
                              type(exc).__name__, extra={"channel": CHANNEL, "error": type(exc).__name__})
                finally:
                    if delivery.done is not None and not delivery.done.done():
                        delivery.done.set_result(ok)
        finally:
            if self._queues.get(conv) is queue:
                del self._queues[conv]
            for left in queue:  # only when cancelled at shutdown: nobody waits forever
                if left.done is not None and not left.done.done():
                    left.done.set_result(False)

    async def _deliver(self, conv: str, d: Delivery) -> bool:
        """Send each reply (split, paced, retried); stop at the first one that cannot be sent."""
        for i, reply in enumerate(d.replies):
            mention = [uid for uid in reply.mention if uid] if d.in_room else []
            prefix = ""
            for uid in mention:
                name = d.names.get(uid) or await self._directory.contact_name(uid)
                if name:
                    prefix += f"@{name} "
            limit = max(20, self.settings.max_reply_chars - len(prefix))
            chunks = split_text(reply.text, limit)
            for j, chunk in enumerate(chunks):
                text = prefix + chunk if j == 0 else chunk
                if not await self._send(conv, text, mention if j == 0 else [], d.ref):
                    lost = (len(chunks) - j) + sum(len(split_text(r.text, limit)) for r in d.replies[i + 1:])
                    self._run.count("send_lost", lost)
                    log.error("wechaty: %d message(s) for %s (reply to %s) NOT delivered after %d tries",
                              lost, tag(conv), d.ref, self.settings.send_retries,
                              extra={"channel": CHANNEL, "count": lost})
                    return False
        return True

    async def _send(self, conv: str, text: str, mention: list[str], ref: str) -> bool:
        s = self.settings
        for attempt in range(1, s.send_retries + 1):
            await self._pacer.wait(conv)
            try:
                link = self._link()
                if link is None:
                    raise ConnectionError("not connected")
                await link.send_text(conv, text, mention)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is retried or counted as lost
                self._run.reraise_if_cancelled(exc)
                self._run.count("send_errors")
                if _maybe_delivered(exc):
                    # The gateway may have sent it and only the answer was late: a retry could
                    # make the user read the same reply twice, so it is logged, not resent.
                    self._run.count("send_uncertain")
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
            self._run.count("sent")
            log.debug("wechaty sent %d chars to %s (reply to %s)", len(text), tag(conv), ref,
                      extra={"channel": CHANNEL, "chars": len(text)})
            return True
        return False


def _maybe_delivered(exc: BaseException) -> bool:
    """A timeout (client side, or the gateway's DEADLINE_EXCEEDED) leaves delivery unknown."""
    status = getattr(exc, "status", None)
    return isinstance(exc, TimeoutError) or getattr(status, "name", "") == "DEADLINE_EXCEEDED"
