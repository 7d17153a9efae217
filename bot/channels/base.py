"""The seam between ``bot.server`` and every channel (NoneBot2's adapter/driver split).

A channel knows one wire protocol and nothing of dialogs: it turns what arrives into an
``IncomingMessage``, awaits the pipeline's handler and delivers the ``Outcome``. The server
only ever talks to channels through this protocol, so adding one never touches the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from aiohttp import web

from bot.models import IncomingMessage, Outcome

Handler = Callable[[IncomingMessage], Awaitable[Outcome]]
"""The pipeline's ``handle``: every channel gets the same one."""


class ChannelStartError(Exception):
    """A channel could not start; the message is one line for the operator (no secrets)."""


@runtime_checkable
class Channel(Protocol):
    """What the server needs from a channel.

    ``routes()`` is read once, before the HTTP app is frozen (webhook channels mount their
    callback URLs there; push channels return ``[]``). ``start()`` either succeeds or leaves
    nothing running behind it and raises; ``stop()`` is safe to call at any time, twice.
    ``send`` is a proactive message (tips, notices) to a conversation id of this channel.
    """

    name: str

    @property
    def ready(self) -> bool: ...

    def routes(self) -> list[web.RouteDef]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, to: str, text: str) -> None: ...
