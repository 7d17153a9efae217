"""Ordered, paced, retried delivery of the messages a webhook answer cannot carry.

Each recipient has its own FIFO and worker, so one user's messages arrive in order while
different users are served concurrently; a minimum interval per recipient and a global one
keep the account from sending in bursts (python-telegram-bot's two-level limiter, as
intervals). A failed send is retried with exponential backoff when the error is transient; a
message that still cannot be delivered is logged as an error and counted (``send_lost``),
never dropped in silence. Workers end when their queue is empty (no task per idle user).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter as PromCounter

from bot.metrics import REGISTRY

from .api import ApiError

log = logging.getLogger("bot.channels.outbox")

EVENTS = PromCounter(
    "fanzha_official_events_total",
    "公众号 / 微信客服 channel events: passive, sent, send_retry, send_lost, bad_signature, ...",
    ["channel", "event"], registry=REGISTRY,
)


@dataclass
class Outgoing:
    """One text to one recipient; ``ref`` is a log-safe id (hashed), ``extra`` goes to the API.

    ``done``, if given, is resolved True once the platform accepted the text and False once it
    is lost: for a step that must wait until the message is out (微信客服's handoff).
    """

    to: str
    text: str
    ref: str
    extra: dict[str, Any] = field(default_factory=dict)
    done: asyncio.Future[bool] | None = None

    def settle(self, delivered: bool) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(delivered)


Deliver = Callable[[Outgoing], Awaitable[None]]


class Outbox:
    """Per-recipient ordered queues with pacing and retries; ``close()`` drains (bounded)."""

    def __init__(self, channel: str, deliver: Deliver, *, per_recipient_s: float, global_s: float,
                 retries: int, backoff_s: float) -> None:
        self.channel = channel
        self.deliver = deliver
        self.per_recipient_s = per_recipient_s
        self.global_s = global_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._queues: dict[str, deque[Outgoing]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._next: dict[str, float] = {}
        self._next_global = 0.0
        self._closed = False
        self.sent: list[Outgoing] = []  # the last few, for tests and debugging
        self.lost = 0

    def count(self, event: str, n: int = 1) -> None:
        EVENTS.labels(self.channel, event).inc(n)

    def hold(self, to: str, seconds: float) -> None:
        """Keep ``to``'s next send at least ``seconds`` away (a passive reply just went out)."""
        self._next[to] = max(self._next.get(to, 0.0), time.monotonic() + seconds)

    def put(self, items: list[Outgoing]) -> None:
        if self._closed:
            for item in items:
                self._lose(item, "closed")
            return
        for item in items:
            self._queues.setdefault(item.to, deque()).append(item)
            if item.to not in self._workers:
                task = asyncio.create_task(self._work(item.to), name=f"{self.channel}-outbox")
                self._workers[item.to] = task

    def busy(self, to: str) -> bool:
        """``to`` still has messages waiting: anything newer must queue behind them."""
        return bool(self._queues.get(to))

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def _work(self, to: str) -> None:
        queue = self._queues[to]
        try:
            while queue:
                await self._send(queue[0])
                queue.popleft()
        finally:
            self._workers.pop(to, None)
            if not queue:
                self._queues.pop(to, None)

    async def _pace(self, to: str) -> None:
        now = time.monotonic()
        slot = max(now, self._next.get(to, 0.0), self._next_global)
        self._next[to] = slot + self.per_recipient_s
        self._next_global = max(self._next_global, slot) + self.global_s
        if slot > now:
            await asyncio.sleep(slot - now)
        if len(self._next) > 4096:
            self._next = {k: t for k, t in self._next.items() if t > now}

    async def _send(self, item: Outgoing) -> None:
        delay = self.backoff_s
        for attempt in range(1, self.retries + 1):
            await self._pace(item.to)
            try:
                await self.deliver(item)
            except ApiError as exc:
                if not exc.retryable or attempt == self.retries:
                    self._lose(item, f"errcode {exc.errcode}" if exc.errcode is not None else str(exc))
                    return
                self.count("send_retry")
                await asyncio.sleep(delay)
                delay *= 2
                continue
            except Exception as exc:  # a bug in one send must not stop the queue
                self._lose(item, type(exc).__name__)
                return
            self.count("sent")
            item.settle(True)
            self.sent.append(item)
            del self.sent[:-256]
            return

    def _lose(self, item: Outgoing, reason: str) -> None:
        item.settle(False)
        self.lost += 1
        self.count("send_lost")
        log.error("%s: message to %s not delivered (%s)", self.channel, item.ref, reason,
                  extra={"channel": self.channel, "ref": item.ref, "reason": reason})

    async def close(self, drain_s: float = 5.0) -> None:
        """Stop taking work, let queued sends finish within ``drain_s``, count the rest lost."""
        self._closed = True
        workers = list(self._workers.values())
        if workers:
            _, still = await asyncio.wait(workers, timeout=drain_s)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
        for queue in list(self._queues.values()):
            for item in queue:
                self._lose(item, "shutdown")
        self._queues.clear()
