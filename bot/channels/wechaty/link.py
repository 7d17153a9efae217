"""The protocol client, behind the smallest surface the channel needs (the swap point).

This is the only module that knows ``wechaty-puppet-service`` (unmaintained since 2022/23): if
its pins ever break, a client generated from ``puppet.proto`` replaces ``_PuppetLink`` here and
nothing else changes. The python ``wechaty`` package itself is never imported (it does not
import on Python >= 3.11). Payloads leave this module as the frozen ``Wire*`` dataclasses.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .settings import WechatySettings
from .text import to_seconds

INSTALL_HINT = "pip install 'fanzha-bot[wechaty]'"

# Message types as the gateway sends them (TypeScript wechaty-puppet numbering; the Python
# client's own remapping table stops at 15 and raises IndexError for Post = 16).
TYPE_TEXT = 7
TYPES_NON_TEXT = frozenset({1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 14, 15})
"""Attachment, Audio, Contact card, ChatHistory, Emoticon, Image, Location, MiniProgram,
Transfer, RedEnvelope, Url, Video. Unknown (0), GroupNote (10), Recalled (13), Post (16) and
anything newer are system-ish and ignored."""

CONTACT_OFFICIAL = 2


@dataclass(frozen=True)
class WireMessage:
    """A message payload as the channel needs it (the client's own type never leaks out)."""

    id: str
    text: str
    talker_id: str
    room_id: str
    listener_id: str
    mention_ids: tuple[str, ...]
    type: int
    timestamp: float  # seconds since the epoch; 0 = unknown


@dataclass(frozen=True)
class WireContact:
    """A contact payload: only what names and filters need."""

    id: str
    name: str
    official: bool  # an official (subscription/service) account: never answered


@dataclass(frozen=True)
class WireRoom:
    """A room payload: only what the admin check needs."""

    id: str
    topic: str
    owner_id: str
    admin_ids: frozenset[str]


class _TokenFilter(logging.Filter):
    """The client logs its options at WARNING, token included: drop those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "token" not in str(record.msg).lower()


@functools.lru_cache(maxsize=1)
def _client() -> tuple[Any, Any, Any]:
    """Import the protocol client lazily: the rest of the bot runs without the extra."""
    try:
        with warnings.catch_warnings():  # "'telnetlib' is deprecated" on 3.11/3.12
            warnings.simplefilter("ignore", DeprecationWarning)
            from wechaty_grpc.wechaty import PuppetStub
            from wechaty_puppet import PuppetOptions
            from wechaty_puppet_service import PuppetService
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(f"the WeChat channel needs the wechaty extra: {INSTALL_HINT} ({exc})") from None
    for name in ("hpack", "h2", "grpclib"):
        # At DEBUG these log every HTTP/2 header, the token (:authority) included.
        lg = logging.getLogger(name)
        if lg.level == logging.NOTSET or lg.level < logging.INFO:
            lg.setLevel(logging.INFO)
    for name in ("PuppetService", "WechatyPuppetServiceConfig"):
        # Route the client's own loggers into ours (they bypass logging config by default).
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
        lg.setLevel(logging.WARNING)
        if not any(isinstance(f, _TokenFilter) for f in lg.filters):
            lg.addFilter(_TokenFilter())
    return PuppetOptions, PuppetService, PuppetStub


class _PuppetLink:
    """One connection to the gateway: the only code that knows the Python client's API."""

    EVENTS = ("message", "room-join", "login", "logout", "heartbeat", "dong", "ready", "scan",
              "friendship", "room-leave", "room-topic", "room-invite", "error")

    def __init__(self, settings: WechatySettings) -> None:
        self.settings = settings
        self._puppet: Any = None
        self._rpc: Any = None

    async def run(self, on_event: Callable[[str, Any], None]) -> None:
        """Connect, Stop/Start the gateway's puppet, and stream events until the stream ends."""
        host, port = self.settings.host_port
        # The client's own reachability check is a blocking telnet with a 3 s timeout; probe
        # without blocking the loop first, so a dead gateway costs nothing but a refused connect.
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=3.0)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        options_cls, service_cls, _ = _client()
        assert self.settings.token is not None
        puppet = service_cls(options_cls(end_point=self.settings.endpoint,
                                         token=self.settings.token.get_secret_value()))
        self._puppet = puppet
        for name in self.EVENTS:
            puppet.on(name, functools.partial(on_event, name))
        await puppet.start()  # returns only when the event stream ends

    def close(self) -> None:
        """Close the HTTP/2 channel (also needed on Python >= 3.12 for servers to shut down)."""
        puppet, self._puppet = self._puppet, None
        if puppet is not None and getattr(puppet, "channel", None) is not None:
            with contextlib.suppress(Exception):
                puppet.channel.close()
            puppet.channel = None

    @property
    def _stub(self) -> Any:
        """A stub of our own on the client's channel, with a per-call timeout (the client's
        stub has none, and must not: it also carries the endless event stream)."""
        channel = getattr(self._puppet, "channel", None)
        if channel is None:
            raise ConnectionError("not connected to the wechaty gateway")
        if self._rpc is None or self._rpc.channel is not channel:
            self._rpc = _client()[2](channel, timeout=self.settings.rpc_timeout)
        return self._rpc

    async def message(self, message_id: str) -> WireMessage:
        r = await self._stub.message_payload(id=message_id)
        return WireMessage(
            id=r.id or message_id, text=r.text or "", talker_id=r.from_id or "", room_id=r.room_id or "",
            listener_id=r.to_id or "", mention_ids=tuple(r.mention_ids or ()), type=int(r.type or 0),
            timestamp=to_seconds(r.timestamp),
        )

    async def contact(self, contact_id: str) -> WireContact:
        r = await self._stub.contact_payload(id=contact_id)
        return WireContact(id=contact_id, name=r.name or "", official=int(r.type or 0) == CONTACT_OFFICIAL)

    async def room(self, room_id: str) -> WireRoom:
        r = await self._stub.room_payload(id=room_id)
        return WireRoom(id=r.id or room_id, topic=r.topic or "", owner_id=r.owner_id or "",
                        admin_ids=frozenset(r.admin_ids or ()))

    async def room_alias(self, room_id: str, member_id: str) -> str:
        r = await self._stub.room_member_payload(id=room_id, member_id=member_id)
        return r.room_alias or ""

    async def send_text(self, conversation_id: str, text: str, mention_ids: list[str]) -> str:
        r = await self._stub.message_send_text(
            conversation_id=conversation_id, text=text, mentonal_ids=mention_ids)
        return r.id or ""

    async def ding(self) -> None:
        await self._stub.ding(data="fanzha")


def _describe(exc: object) -> str:
    """A log-safe one-liner for client/transport errors (gRPC status, connection errors)."""
    status = getattr(exc, "status", None)
    if status is not None and hasattr(status, "name"):
        detail = getattr(exc, "message", None) or ""
        return f"{type(exc).__name__} {status.name}{': ' + str(detail)[:120] if detail else ''}"
    if isinstance(exc, BaseException):
        if isinstance(exc, (OSError, asyncio.TimeoutError, ConnectionError)):
            return f"{type(exc).__name__}: {str(exc)[:120]}"
        return type(exc).__name__
    data = getattr(exc, "data", None)
    return f"{type(exc).__name__}: {str(data)[:200]}" if data is not None else type(exc).__name__
