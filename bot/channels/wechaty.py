"""WeChat through a Wechaty puppet-service gateway (gRPC), as a thin adapter around the pipeline.

The gateway (a puppet-service server that someone runs next to a WeChat account) streams
events; for each text message this adapter builds an ``IncomingMessage``, awaits the pipeline
and sends the ``Outcome``'s replies back to the same conversation.

Only ``_PuppetLink`` touches the Python protocol client (``wechaty-puppet-service``, which is
unmaintained since 2022/23): if its pins ever break, a client generated from ``puppet.proto``
replaces that one class. The python ``wechaty`` package itself is never imported (it does not
import on Python >= 3.11). What the adapter adds on top of the bare client:

* a reconnect loop with exponential backoff, and a watchdog (``ding`` keepalives; no event for
  N minutes -> reconnect), because the client has neither and a silent TCP drop hangs it;
* ordering: payloads are fetched in arrival order, then each conversation (room, or talker in
  1:1) is handled strictly in order, different conversations concurrently (bounded);
* filters: the bot's own echoes, history replayed after a (re)connect, and a message id that is
  already being processed; non-text in rooms is dropped, non-text in 1:1 becomes ``non_text``;
* mention detection by id list *or* by ``@<bot name>`` / ``@<bot alias in the room>`` text;
* sending: long replies split at natural boundaries, paced per conversation and globally,
  each send retried with backoff and, when it still fails, logged as an error (never silent).

Logs carry message ids, hashed contact/room ids and lengths; never message text or the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import random
import re
import time
import traceback
import warnings
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter as PromCounter
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.metrics import REGISTRY
from bot.models import IncomingMessage, Outcome, Reply

log = logging.getLogger("bot.channels.wechaty")

EVENTS = PromCounter(
    "fanzha_wechaty_events_total",
    "WeChat channel events: handled, sent, skipped_<reason>, send_errors, send_lost, disconnects, ...",
    ["event"], registry=REGISTRY,
)

CHANNEL = "wechaty"
Handler = Callable[[IncomingMessage], Awaitable[Outcome]]

INSTALL_HINT = "pip install 'fanzha-bot[wechaty]'"

# Message types as the gateway sends them (TypeScript wechaty-puppet numbering; the Python
# client's own remapping table stops at 15 and raises IndexError for Post = 16).
TYPE_TEXT = 7
TYPES_NON_TEXT = frozenset({1, 2, 3, 4, 5, 6, 8, 9, 11, 12, 14, 15})
"""Attachment, Audio, Contact card, ChatHistory, Emoticon, Image, Location, MiniProgram,
Transfer, RedEnvelope, Url, Video. Unknown (0), GroupNote (10), Recalled (13), Post (16) and
anything newer are system-ish and ignored."""

CONTACT_OFFICIAL = 2
CLIENT_STOP_TIMEOUT = 5.0
"""Seconds to wait for the protocol client's tasks when disconnecting or stopping."""

ENDPOINT_RE = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>\d{1,5})$")


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------
class WechatySettings(BaseSettings):
    """How to reach the puppet-service gateway, and how politely to talk to WeChat.

    Endpoint and token are read from ``FANZHA_WECHATY_ENDPOINT`` / ``FANZHA_WECHATY_TOKEN``
    first, then from Wechaty's standard ``WECHATY_PUPPET_SERVICE_ENDPOINT`` /
    ``WECHATY_PUPPET_SERVICE_TOKEN``: the project's own names win when both are set.
    """

    model_config = SettingsConfigDict(
        env_prefix="FANZHA_WECHATY_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("FANZHA_WECHATY_ENDPOINT", "WECHATY_PUPPET_SERVICE_ENDPOINT"),
        description="host:port of the puppet-service gateway (plain h2c, no TLS)",
    )
    token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("FANZHA_WECHATY_TOKEN", "WECHATY_PUPPET_SERVICE_TOKEN"),
        description="the gateway's token (sent as the HTTP/2 :authority)",
    )
    send_interval_room: float = Field(default=1.0, ge=0, le=60, description="s between sends to one conversation")
    send_interval_global: float = Field(default=0.2, ge=0, le=60, description="s between any two sends")
    max_reply_chars: int = Field(default=600, ge=40, le=10_000, description="longer replies are split")
    send_retries: int = Field(default=3, ge=1, le=10, description="tries per outgoing message")
    send_retry_backoff: float = Field(default=1.0, ge=0, le=60, description="s before the 2nd try, doubled after")
    watchdog_minutes: float = Field(default=5.0, gt=0, le=120, description="no event this long -> reconnect")
    reconnect_backoff: float = Field(default=1.0, gt=0, le=600, description="first reconnect delay, s")
    reconnect_backoff_max: float = Field(default=60.0, gt=0, le=3600, description="reconnect delay cap, s")
    history_skew: float = Field(default=10.0, ge=0, le=3600, description="s of clock skew allowed for history")
    rpc_timeout: float = Field(default=15.0, gt=0, le=300, description="s per gateway call")
    max_concurrency: int = Field(default=8, ge=1, le=256, description="conversations handled at once")
    bot_name: str | None = Field(
        default=None, max_length=64,
        description="extra name for '@name' detection when the gateway reports none",
    )

    @field_validator("endpoint", mode="before")
    @classmethod
    def _endpoint(cls, v: object) -> object:
        if v is None:
            return None
        v = str(v).strip()
        if not v:
            return None
        if "://" in v:
            raise ValueError("use host:port without a scheme (the client speaks plain h2c, no TLS)")
        m = ENDPOINT_RE.match(v)
        if m is None or not 0 < int(m.group("port")) < 65536:
            raise ValueError("must be host:port, e.g. 10.0.0.5:8788")
        return v

    @field_validator("token", mode="before")
    @classmethod
    def _token(cls, v: object) -> object:
        if v is None:
            return None
        raw = v.get_secret_value() if isinstance(v, SecretStr) else str(v)
        raw = raw.strip()
        return raw or None

    @property
    def host_port(self) -> tuple[str, int]:
        assert self.endpoint is not None
        host, _, port = self.endpoint.rpartition(":")
        return host.strip("[]"), int(port)


_ENV_NAMES = {
    "endpoint": "FANZHA_WECHATY_ENDPOINT / WECHATY_PUPPET_SERVICE_ENDPOINT",
    "token": "FANZHA_WECHATY_TOKEN / WECHATY_PUPPET_SERVICE_TOKEN",
}


def wechaty_settings_from_env(**overrides: Any) -> WechatySettings | None:
    """The WeChat channel's settings, or None when it is not configured at all.

    Raises ``ValueError`` (one line, naming the variable) when only one of endpoint and token
    is set, or when a value is invalid. The token's value never appears in the message.
    """
    try:
        settings = WechatySettings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]).lower() if err["loc"] else "settings"
        field = next((f for f in _ENV_NAMES if f in field), field)  # aliases name the env var
        name = _ENV_NAMES.get(field, "FANZHA_WECHATY_" + field.upper())
        shown = "" if field == "token" else f" (got {err.get('input')!r})"
        raise ValueError(f"{name}: {err['msg']}{shown}") from None
    if settings.endpoint is None and settings.token is None:
        return None
    if settings.endpoint is None:
        raise ValueError(
            "WECHATY_PUPPET_SERVICE_TOKEN is set but WECHATY_PUPPET_SERVICE_ENDPOINT is not: set the "
            "gateway's host:port (token-only discovery over the internet is not supported)"
        )
    if settings.token is None:
        raise ValueError(
            "WECHATY_PUPPET_SERVICE_ENDPOINT is set but WECHATY_PUPPET_SERVICE_TOKEN is not: "
            "the puppet-service gateway needs its token (any non-empty string it was started with)"
        )
    return settings


# --------------------------------------------------------------------------------------
# Pure helpers: splitting, mentions, timestamps, log-safe ids
# --------------------------------------------------------------------------------------
_BOUNDARIES = ("\n\n", "\n", "。", "！", "？", "；", "!", "?", ";", "，", ",", "、", " ")


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into chunks of at most ``limit`` characters at natural boundaries.

    Prefers a blank line, then a newline, then 。 (kept with its sentence), then other
    punctuation, then a space, as long as the chunk stays at least 30% full; otherwise the
    latest boundary of any kind; cuts hard only when the window has no boundary at all.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    text = text.strip()
    chunks: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = best = 0
        for sep in _BOUNDARIES:
            idx = window.rfind(sep)
            if idx <= 0:
                continue
            end = idx + len(sep)
            if end >= limit * 0.3:
                cut = end
                break
            best = max(best, end)
        if cut <= 0:
            cut = best or limit
        chunk = text[:cut].strip()
        if chunk:
            chunks.append(chunk)
        text = text[cut:].strip()
    if text:
        chunks.append(text)
    return chunks


@functools.lru_cache(maxsize=256)
def _mention_re(name: str) -> re.Pattern[str]:
    return re.compile("@" + re.escape(name) + r"(?:[\u2005\u0020]|$)")


def mentions_name(text: str, names: Iterable[str | None]) -> bool:
    """True when ``text`` has ``@<name>`` followed by U+2005, a space or the end of the text."""
    return any(name and _mention_re(name).search(text) for name in names)


def to_seconds(ts: float | int | None) -> float:
    """Gateway timestamps are milliseconds (TypeScript servers) or seconds (some puppets)."""
    if not ts:
        return 0.0
    ts = float(ts)
    return ts / 1000.0 if ts > 1e11 else ts


def tag(value: str | None) -> str:
    """Short stable hash of a contact/room id, for logs."""
    if not value:
        return "-"
    return hashlib.blake2b(value.encode(), digest_size=5).hexdigest()


def _frames(exc: BaseException) -> str:
    """Where an exception happened, without its message (which may quote user text)."""
    return "".join(traceback.format_tb(exc.__traceback__)[-6:]).rstrip()


class _TTLCache:
    """A small LRU with per-entry expiry (names, room info); bounded, so it never grows."""

    def __init__(self, ttl: float, size: int = 2048) -> None:
        self.ttl = ttl
        self.size = size
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any) -> Any:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    def put(self, key: Any, value: Any) -> None:
        self._data[key] = (time.monotonic() + self.ttl, value)
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)


class SendPacer:
    """Two-level pacing of outgoing messages: per conversation and globally.

    Modelled on python-telegram-bot's ``AIORateLimiter`` (per chat + overall), as minimum
    intervals: WeChat limits accounts that send in bursts. Slots are reserved without an
    ``await`` between read and write, so concurrent callers never share a slot.
    """

    def __init__(self, per_key: float, global_: float) -> None:
        self.per_key = per_key
        self.global_ = global_
        self._next: dict[str, float] = {}
        self._next_global = 0.0

    async def wait(self, key: str) -> None:
        now = time.monotonic()
        slot = max(now, self._next.get(key, 0.0))
        self._next[key] = slot + self.per_key
        if slot > now:
            await asyncio.sleep(slot - now)
        now = time.monotonic()
        gslot = max(now, self._next_global)
        self._next_global = gslot + self.global_
        if gslot > now:
            await asyncio.sleep(gslot - now)
        done = time.monotonic()
        self._next[key] = max(self._next.get(key, 0.0), done + self.per_key)
        if len(self._next) > 1024:
            self._next = {k: t for k, t in self._next.items() if t > done}


# --------------------------------------------------------------------------------------
# The protocol client, behind the smallest surface we need (the swap point)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WireMessage:
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
    id: str
    name: str
    official: bool  # an official (subscription/service) account: never answered


@dataclass(frozen=True)
class WireRoom:
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


# --------------------------------------------------------------------------------------
# The channel
# --------------------------------------------------------------------------------------
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
        self._names = _TTLCache(ttl=3600.0)
        self._rooms = _TTLCache(ttl=60.0)
        self._aliases = _TTLCache(ttl=600.0)
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
                reason = "watchdog: no event for %.0fs" % self._watchdog_s if self._watchdog_fired else "cancelled"
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
        key = value if kind == "message" else self._join_key(value)
        if key is not None:
            if key in self._inflight:
                self._count("dropped_inflight_duplicate")
                log.info("wechaty message %s already in progress, duplicate dropped", key,
                         extra={"channel": CHANNEL, "duplicate": True})
                return
            self._inflight.add(key)
        self._inbox.put_nowait(item)

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
            key = value if kind == "message" else self._join_key(value)
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
    async def _contact(self, contact_id: str) -> WireContact | None:
        cached = self._names.get(contact_id)
        if cached is not None:
            return cached
        link = self._link
        if link is None:
            return None
        try:
            contact = await link.contact(contact_id)
        except Exception as exc:  # noqa: BLE001
            self._reraise_if_cancelled(exc)
            log.info("wechaty contact %s: payload unavailable (%s)", tag(contact_id), _describe(exc),
                     extra={"channel": CHANNEL})
            return None
        self._names.put(contact_id, contact)
        return contact

    async def _contact_name(self, contact_id: str) -> str | None:
        contact = await self._contact(contact_id)
        return (contact.name or None) if contact else None

    async def _room(self, room_id: str) -> WireRoom | None:
        cached = self._rooms.get(room_id)
        if cached is not None:
            return cached
        link = self._link
        if link is None:
            return None
        try:
            room = await link.room(room_id)
        except Exception as exc:  # noqa: BLE001
            self._reraise_if_cancelled(exc)
            log.info("wechaty room %s: payload unavailable (%s)", tag(room_id), _describe(exc),
                     extra={"channel": CHANNEL})
            return None
        self._rooms.put(room_id, room)
        return room

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


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a task's exception as seen (no 'exception was never retrieved' at shutdown)."""
    if not task.cancelled():
        task.exception()


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
