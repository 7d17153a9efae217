"""The 公众号 message callback: ``GET/POST /wechat/mp`` on the bot's aiohttp server.

WeChat POSTs each user message and waits **5 seconds** for the answer, retrying the same
``MsgId`` up to three times when it gets none. So each request starts the pipeline as a task
and waits for it only ``reply_budget_s``:

* done in time → the first reply text goes back passively (one passive reply per request),
  the rest through the customer-service API (``/cgi-bin/message/custom/send``) in order,
  after a short hold so they land after the passive one;
* too slow → ``success`` now, and every reply through the API when the task finishes;
* a retried ``MsgId`` → the pipeline's dedupe answers "already answered": ``success`` and
  nothing sent, because the first delivery (passive or API) owns that answer.

Every check that can fail on bad input fails with 403 (signature, stale timestamp) or 400
(malformed XML, wrong AppID, bad ciphertext) before anything is processed; nothing here is
allowed to produce a 5xx. Logs carry hashed OpenIDs, never text, the token or secrets.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from aiohttp import web
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from bot.channels.base import Handler
from bot.channels.wxbase.api import AccessToken, ApiError, WxApi
from bot.channels.wxbase.crypto import CryptoError, MessageCrypto, signature, signature_ok, timestamp_fresh
from bot.channels.wxbase.outbox import EVENTS, Outbox, Outgoing
from bot.channels.wxbase.text import pack, split_bytes, tag
from bot.channels.wxbase.wxxml import XmlError, encrypted_envelope, parse, text_reply
from bot.models import IncomingMessage, MessageKind, Outcome
from knowledge.render import render_text
from knowledge.schema import KnowledgeBase

from .settings import MpSettings

log = logging.getLogger("bot.channels.mp")

CHANNEL = "mp"
PATH = "/wechat/mp"
MENU_COMMAND = "菜单"
"""What a new follower 'says' to the pipeline: the global menu command (architecture: fixed)."""
NON_TEXT_TYPES = frozenset({"image", "video", "shortvideo", "location", "link", "file", "voice"})
SUCCESS = "success"
SUBSCRIBE_QUOTA = 3
"""Customer-service messages WeChat allows within a minute of a subscribe (5 per user message)."""


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


class MpChannel:
    """One 公众号; ``routes()`` mounts the callback, ``start()`` opens the API client."""

    name = CHANNEL

    def __init__(self, settings: MpSettings, handle: Handler, kb: KnowledgeBase, *,
                 redis: Redis | RedisCluster | None = None, key_prefix: str = "fanzha") -> None:
        if settings.token is None or settings.app_id is None or settings.app_secret is None:
            raise ValueError("MpChannel needs the token, AppID and AppSecret")
        self.settings = settings
        self._handle = handle
        self.kb = kb
        self._token = settings.token.get_secret_value()
        self._app_id = settings.app_id
        self._secret = settings.app_secret.get_secret_value()
        self.crypto = (MessageCrypto(settings.aes_key.get_secret_value(), settings.app_id)
                       if settings.aes_key is not None else None)
        self.api = WxApi(settings.api_base)
        self.api.token = AccessToken(redis, f"{key_prefix}:mp:token:{settings.app_id}", self._fetch_token)
        self.outbox = Outbox(CHANNEL, self._deliver, per_recipient_s=settings.send_interval_user_s,
                             global_s=settings.send_interval_global_s, retries=settings.send_retries,
                             backoff_s=settings.send_retry_backoff_s)
        self.redis = redis
        self._seen_prefix = f"{key_prefix}:mp:seen:{settings.app_id}:"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._token_broken = False

    # -- the Channel protocol ------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """Serving callbacks, and the last token fetch (if any) was not refused."""
        return self._started and not self._token_broken

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.verify), web.post(PATH, self.receive)]

    async def start(self) -> None:
        await self.api.start()
        self.outbox = Outbox(CHANNEL, self._deliver, per_recipient_s=self.settings.send_interval_user_s,
                             global_s=self.settings.send_interval_global_s, retries=self.settings.send_retries,
                             backoff_s=self.settings.send_retry_backoff_s)
        self._started = True
        log.info("公众号 channel ready at %s (%s mode)", PATH, "safe" if self.crypto else "plain",
                 extra={"channel": CHANNEL})

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Finish answers in progress and queued sends (bounded), then close the client."""
        if not self._started:
            await self.api.close()
            return
        self._started = False
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=drain_timeout)
        await self.outbox.close(drain_timeout)
        await self.api.close()
        log.info("公众号 channel stopped", extra={"channel": CHANNEL})

    async def send(self, to: str, text: str) -> None:
        """A proactive message to an OpenID (within WeChat's 48-hour window)."""
        if self.settings.passive_only:
            self._count("send_lost")
            log.warning("公众号 (passive only): proactive message to %s not sent (no customer-service API)",
                        tag(to), extra={"channel": CHANNEL})
            return
        self.outbox.put([Outgoing(to, piece, tag(to)) for piece in split_bytes(text, self.settings.max_reply_bytes)])

    # -- HTTP ----------------------------------------------------------------------------
    def _count(self, event: str) -> None:
        EVENTS.labels(CHANNEL, event).inc()

    def _fresh(self, timestamp: str) -> bool:
        return timestamp_fresh(timestamp, self.settings.max_clock_skew_s, time.time())

    def _refuse(self, status: int, event: str, message: str) -> web.Response:
        self._count(event)
        log.warning("公众号 callback refused: %s", event, extra={"channel": CHANNEL, "status": status})
        return _plain(status, message)

    async def verify(self, request: web.Request) -> web.Response:
        """``GET``: the admin console's URL check; echo ``echostr`` only if the signature holds."""
        q = request.query
        ts, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not signature_ok(q.get("signature"), self._token, ts, nonce):
            return self._refuse(403, "bad_signature", "bad signature")
        if not self._fresh(ts):
            return self._refuse(403, "stale_timestamp", "stale timestamp")
        echostr = q.get("echostr")
        if echostr is None:
            return self._refuse(400, "bad_request", "echostr missing")
        return _plain(200, echostr)

    async def receive(self, request: web.Request) -> web.Response:
        """``POST``: one message or event, in plain or safe mode."""
        started = time.monotonic()
        try:
            return await self._receive(request, started)
        except web.HTTPRequestEntityTooLarge:
            raise
        except Exception as exc:  # never a 5xx: WeChat would retry into the same bug
            self._count("error")
            log.error("公众号 callback failed: %s", type(exc).__name__, extra={"channel": CHANNEL})
            return _plain(200, SUCCESS)

    async def _receive(self, request: web.Request, started: float) -> web.Response:
        if not self._started:
            return self._refuse(403, "not_started", "channel not started")
        q = request.query
        ts, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not signature_ok(q.get("signature"), self._token, ts, nonce):
            return self._refuse(403, "bad_signature", "bad signature")
        if not self._fresh(ts):
            return self._refuse(403, "stale_timestamp", "stale timestamp")
        body = await request.read()
        try:
            outer = parse(body)
        except XmlError:
            return self._refuse(400, "bad_xml", "malformed XML")
        safe = q.get("encrypt_type", "raw").lower() == "aes"
        if not safe and self.crypto is not None:
            # A plain-mode signature covers token, timestamp and nonce but not the body: with
            # safe mode configured, a plain callback is unauthenticated and is refused.
            return self._refuse(403, "plain_in_safe_mode",
                                "safe mode is configured: plain callbacks are refused")
        if safe:
            if self.crypto is None:
                return self._refuse(400, "aes_not_configured", "safe mode needs FANZHA_MP_AES_KEY")
            encrypted = outer.get("Encrypt", "")
            if not encrypted:
                return self._refuse(400, "bad_xml", "Encrypt missing")
            if not signature_ok(q.get("msg_signature"), self._token, ts, nonce, encrypted):
                return self._refuse(403, "bad_signature", "bad msg_signature")
            try:
                msg = parse(self.crypto.decrypt(encrypted))
            except CryptoError as exc:
                return self._refuse(400, f"crypto_{exc.reason}", "cannot decrypt")
            except XmlError:
                return self._refuse(400, "bad_xml", "malformed XML inside Encrypt")
        else:
            if await self._reused_for_another_body(ts, nonce, body):
                return self._refuse(403, "replayed_signature", "signature already used for another message")
            msg = outer
        user, account, mtype = msg.get("FromUserName", ""), msg.get("ToUserName", ""), msg.get("MsgType", "")
        if not user or not account or not mtype or len(user) > 64 or len(account) > 64:
            return self._refuse(400, "bad_message", "FromUserName, ToUserName and MsgType are required")

        incoming, welcome = self._to_incoming(msg, user, mtype)
        if incoming is None:
            return _plain(200, SUCCESS)
        texts = await self._answer(incoming, welcome, started)
        if not texts:
            return _plain(200, SUCCESS)
        if self.outbox.busy(user):
            # The previous answer is still going out through the API: a passive reply now
            # would overtake it, so this one queues behind it instead.
            self._count("queued_behind")
            self.outbox.put([Outgoing(user, t, tag(user)) for t in texts])
            return _plain(200, SUCCESS)
        first, rest = texts[0], texts[1:]
        if rest:
            self.outbox.hold(user, self.settings.send_interval_user_s)
            self.outbox.put([Outgoing(user, t, tag(user)) for t in rest])
        self._count("passive")
        xml = text_reply(user, account, first)
        if safe and self.crypto is not None:
            reply_ts = str(int(time.time()))
            encrypted = self.crypto.encrypt(xml.encode("utf-8"))
            xml = encrypted_envelope(encrypted, signature(self._token, reply_ts, nonce, encrypted), reply_ts, nonce)
        return web.Response(text=xml, content_type="application/xml")

    async def _reused_for_another_body(self, timestamp: str, nonce: str, body: bytes) -> bool:
        """Plain mode: has this signed (timestamp, nonce) already come with a different body?

        The plain signature covers only token, timestamp and nonce, so one signed URL seen in
        a log would carry any body for the whole clock-skew window. Remembering the body each
        signed URL first came with (for twice that window) lets WeChat's retries through (same
        body; the pipeline's dedupe answers them) and refuses a different body. Redis down:
        not checked rather than no service.
        """
        if self.redis is None:
            return False
        key = self._seen_prefix + hashlib.blake2b(f"{timestamp}\x1f{nonce}".encode(), digest_size=12).hexdigest()
        digest = hashlib.blake2b(body, digest_size=16).hexdigest()
        try:
            if await self.redis.set(key, digest, nx=True, ex=2 * self.settings.max_clock_skew_s):
                return False
            first = await self.redis.get(key)
        except (RedisError, OSError):
            return False
        first_text = first.decode() if isinstance(first, bytes) else first
        return first_text is not None and first_text != digest

    # -- messages ------------------------------------------------------------------------
    def _to_incoming(self, msg: dict[str, str], user: str, mtype: str) -> tuple[IncomingMessage | None, bool]:
        """The pipeline's message for this callback (None: nothing to answer) and 'is a welcome'."""
        created = msg.get("CreateTime", "")
        msg_id = msg.get("MsgId") or f"{user}:{created}:{msg.get('Event', '')}"
        kind: MessageKind = "text"
        text = ""
        welcome = False
        if mtype == "event":
            event = msg.get("Event", "").lower()
            if event != "subscribe":  # unsubscribe, menu clicks, scans...: nothing to say
                self._count(f"event_{event}" if event in {"unsubscribe", "click", "view", "scan"} else "event_other")
                return None, False
            text, welcome = MENU_COMMAND, True
        elif mtype == "text":
            text = msg.get("Content", "")
        elif mtype == "voice" and msg.get("Recognition", "").strip():
            text = msg["Recognition"]  # the account's speech recognition did the work
        else:
            kind = "non_text"  # images, video, files, links, unrecognised voice: ask to type
        return IncomingMessage(channel=CHANNEL, user_id=user, text=text, msg_id=msg_id[:128], kind=kind), welcome

    async def _answer(self, incoming: IncomingMessage, welcome: bool, started: float) -> list[str]:
        """The texts to answer with now; [] when they will go through the API (or nowhere)."""
        async def turn() -> Outcome:
            return await self._handle(incoming)

        task = asyncio.create_task(turn(), name="mp-turn")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        budget = self.settings.reply_budget_s - (time.monotonic() - started)
        done, _ = await asyncio.wait({task}, timeout=max(budget, 0.0))
        if not done:
            self._count("passive_timeout")
            task.add_done_callback(lambda t: self._late(t, incoming.user_id, welcome))
            return []
        return self._texts(task.result(), welcome)

    def _texts(self, outcome: Outcome, welcome: bool) -> list[str]:
        """The messages of one answer: one passive plus at most ``max_sends_per_message`` more
        (WeChat's customer-service quota per user message; three after a subscribe)."""
        if outcome.duplicate:
            self._count("duplicate")
            return []
        texts = [r.text for r in outcome.replies]
        if welcome:  # welcome and menu in one passive message: no API call needed to greet
            texts[:1] = ["\n".join([render_text(self.kb, "mp_welcome"), *texts[:1]])]
        if not texts:
            return []
        size = self.settings.max_reply_bytes
        if self.settings.passive_only:
            # No customer-service API: as much of the answer as one passive reply holds, in order.
            one, dropped = pack(texts, 1, size)
            if dropped:
                self._count("send_lost")
                log.warning("公众号 (passive only): %d reply piece(s) did not fit the one passive reply", dropped,
                            extra={"channel": CHANNEL})
            return one
        first = split_bytes(texts[0], size)
        quota = min(self.settings.max_sends_per_message, SUBSCRIBE_QUOTA) if welcome else self.settings.max_sends_per_message
        rest, dropped = pack([*first[1:], *texts[1:]], quota, size)
        if dropped:
            self._count("send_lost")
            log.error("公众号: %d reply piece(s) over the customer-service quota not sent", dropped,
                      extra={"channel": CHANNEL})
        return [*first[:1], *rest]

    def _late(self, task: asyncio.Task[Outcome], user: str, welcome: bool) -> None:
        if task.cancelled() or task.exception() is not None:
            self._count("send_lost")  # never silent, even though the pipeline does not raise
            log.error("公众号: a late answer to %s failed", tag(user), extra={"channel": CHANNEL})
            return
        texts = self._texts(task.result(), welcome)
        if texts and self.settings.passive_only:
            self._count("send_lost")  # the passive reply is gone and there is no API to use
            log.error("公众号 (passive only): the answer to %s missed the %.1f s reply budget and cannot be sent",
                      tag(user), self.settings.reply_budget_s, extra={"channel": CHANNEL})
            return
        self.outbox.put([Outgoing(user, t, tag(user)) for t in texts])

    # -- the customer-service API --------------------------------------------------------
    async def _fetch_token(self, api: WxApi) -> tuple[str, int]:
        try:
            out = await api.get_plain("/cgi-bin/token", {"grant_type": "client_credential",
                                                         "appid": self._app_id, "secret": self._secret})
        except ApiError as exc:
            self._token_broken = not exc.retryable
            log.error("公众号 access token refused (%s): check AppID/AppSecret and the IP whitelist",
                      exc, extra={"channel": CHANNEL})
            raise
        token, expires = out.get("access_token"), out.get("expires_in", 7200)
        if not isinstance(token, str) or not token:
            raise ApiError("/cgi-bin/token", None, "no access_token", retryable=True)
        self._token_broken = False
        return token, int(expires) if isinstance(expires, int | str) and str(expires).isdigit() else 7200

    async def _deliver(self, item: Outgoing) -> None:
        await self.api.call("/cgi-bin/message/custom/send",
                            {"touser": item.to, "msgtype": "text", "text": {"content": item.text}})
