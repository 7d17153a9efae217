"""What the parts of one channel share: event counters, its background tasks, the stop flag.

Connection upkeep, inbound filtering and outbound delivery live in their own modules; each
needs to count what happened, start tasks that ``stop()`` can wait for, and know whether an
error is real or just the channel shutting down. Those three things are here, and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable
from typing import Any

from prometheus_client import Counter as PromCounter

from bot.metrics import REGISTRY

log = logging.getLogger("bot.channels.wechaty")

CHANNEL = "wechaty"

EVENTS = PromCounter(
    "fanzha_wechaty_events_total",
    "WeChat channel events: handled, sent, skipped_<reason>, send_errors, send_lost, disconnects, ...",
    ["event"], registry=REGISTRY,
)


class RunState:
    """Counters (``stats`` for tests and debugging, Prometheus for operators), tasks, stop flags."""

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[Any]] = set()
        self.stopping = False
        self.cancelled = False

    def count(self, event: str, n: int = 1) -> None:
        """Count ``event`` (a fixed name, never user data: it is a Prometheus label)."""
        self.stats[event] += n
        EVENTS.labels(event).inc(n)

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        """A task that ``stop()`` waits for (bounded) and then cancels."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def pending(self) -> list[asyncio.Task[Any]]:
        return [t for t in self.tasks if not t.done()]

    def reraise_if_cancelled(self, exc: BaseException) -> None:
        """Closing the channel makes grpclib turn our tasks' cancellation into
        ``StreamTerminatedError`` (it cancels them itself, and never uncancels, so
        ``Task.cancelling()`` cannot tell): once stop() cancels, no error is "just an error"."""
        if self.cancelled:
            raise asyncio.CancelledError() from exc


def retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a task's exception as seen (no 'exception was never retrieved' at shutdown)."""
    if not task.cancelled():
        task.exception()
