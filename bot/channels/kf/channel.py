"""企业微信 微信客服: ``GET/POST /wechat/kf`` plus the pull (``kf/sync_msg``) and send APIs.

(Over 350 lines on purpose: the callback, the cursor-under-lock pull loop and the send limits
are one protocol whose invariants — read once, answer once, move the cursor last — must be
read together; crypto, XML, the token and the outbox already live in ``bot.channels.wxbase``.)

The callback only says "messages are waiting for account X" (``kf_msg_or_event`` with a
short-lived ``Token``); the messages themselves are pulled with ``kf/sync_msg`` from a cursor.
The cursor lives in Redis and each account's pull runs under a Redis lock, so across restarts
and several bot processes a page is read by one holder at a time and the cursor only moves
forward after that page was handled. If a process dies between handling and saving the
cursor, the page is read again and the pipeline's dedupe by ``msgid`` answers nothing twice.

The platform's limits are respected here: at most ``max_sends_per_message`` (5) sends per
customer message, packed rather than dropped; no answer outside the 48-hour window; the
welcome goes with ``send_msg_on_event`` and the one-time ``welcome_code``. ``人工`` hands the
conversation to ``servicer_userid`` (``kf/service_state/trans``) when one is configured, and
the bot then stays silent for that customer until the session ends; without one, the
pipeline's honest "there is no human here, call ..." answer is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from aiohttp import web
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import LockError, RedisError

from bot.channels.base import Handler
from bot.channels.wxbase.api import AccessToken, ApiError, WxApi
from bot.channels.wxbase.crypto import CryptoError, MessageCrypto, signature_ok, timestamp_fresh
from bot.channels.wxbase.outbox import EVENTS, Outbox, Outgoing
from bot.channels.wxbase.text import pack, split_bytes, tag
from bot.channels.wxbase.wxxml import XmlError, parse
from bot.models import IncomingMessage, MessageKind, Outcome
from knowledge.render import render_text
from knowledge.schema import KnowledgeBase

from .settings import KfSettings

log = logging.getLogger("bot.channels.kf")

CHANNEL = "kf"
PATH = "/wechat/kf"
MENU_COMMAND = "菜单"
SUCCESS = "success"
ORIGIN_CUSTOMER, ORIGIN_EVENT = 3, 4
STATE_HUMAN = 3
"""kf/service_state: 0 new, 1 bot, 2 queue, 3 a human servicer, 4 ended."""
SESSION_ENDED = 3
"""session_status_change change_type 3: the servicer ended the session."""
CURSOR_TTL_S = 180 * 24 * 3600
HANDOFF_NOTICE_WAIT_S = 30.0
"""How long a handoff waits for its notice to be delivered before transferring anyway."""


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


def _key_hash(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()


class KfChannel:
    """One 企业 (CorpID) with any number of 客服 accounts (``open_kfid``)."""

    name = CHANNEL

    def __init__(self, settings: KfSettings, handle: Handler, kb: KnowledgeBase, *,
                 redis: Redis | RedisCluster, key_prefix: str = "fanzha") -> None:
        if None in (settings.corp_id, settings.secret, settings.token, settings.aes_key):
            raise ValueError("KfChannel needs the CorpID, Secret, Token and EncodingAESKey")
        assert settings.corp_id and settings.secret and settings.token and settings.aes_key
        self.settings = settings
        self._handle = handle
        self.kb = kb
        self.redis = redis
        self.prefix = f"{key_prefix}:kf"
        self._token = settings.token.get_secret_value()
        self._corp_id = settings.corp_id
        self._secret = settings.secret.get_secret_value()
        self.crypto = MessageCrypto(settings.aes_key.get_secret_value(), settings.corp_id)
        self.api = WxApi(settings.api_base)
        self.api.token = AccessToken(redis, f"{self.prefix}:token:{settings.corp_id}", self._fetch_token)
        self.outbox = self._new_outbox()
        self._wanted: dict[str, str] = {}
        self._syncers: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self._token_broken = False

    def _new_outbox(self) -> Outbox:
        s = self.settings
        return Outbox(CHANNEL, self._deliver, per_recipient_s=s.send_interval_user_s,
                      global_s=s.send_interval_global_s, retries=s.send_retries, backoff_s=s.send_retry_backoff_s)

    # -- the Channel protocol ------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._started and not self._token_broken

    def routes(self) -> list[web.RouteDef]:
        return [web.get(PATH, self.verify), web.post(PATH, self.receive)]

    async def start(self) -> None:
        await self.api.start()
        self.outbox = self._new_outbox()
        self._started = True
        log.info("微信客服 channel ready at %s", PATH, extra={"channel": CHANNEL})

    async def stop(self, drain_timeout: float = 5.0) -> None:
        if not self._started:
            await self.api.close()
            return
        self._started = False
        self._wanted.clear()
        syncers = list(self._syncers.values())
        if syncers:
            _, still = await asyncio.wait(syncers, timeout=drain_timeout)
            for task in still:
                task.cancel()
            if still:
                await asyncio.wait(still, timeout=1.0)
        await self.outbox.close(drain_timeout)
        await self.api.close()
        log.info("微信客服 channel stopped", extra={"channel": CHANNEL})

    async def send(self, to: str, text: str) -> None:
        """A proactive message; ``to`` is ``open_kfid:external_userid`` (the conversation's user id)."""
        kfid, _, user = to.partition(":")
        self.outbox.put(self._outgoing(kfid, user, split_bytes(text, self.settings.max_reply_bytes)))

    # -- HTTP ----------------------------------------------------------------------------
    def _count(self, event: str, n: int = 1) -> None:
        EVENTS.labels(CHANNEL, event).inc(n)

    def _fresh(self, timestamp: str) -> bool:
        return timestamp_fresh(timestamp, self.settings.max_clock_skew_s, time.time())

    def _refuse(self, status: int, event: str, message: str) -> web.Response:
        self._count(event)
        log.warning("微信客服 callback refused: %s", event, extra={"channel": CHANNEL, "status": status})
        return _plain(status, message)

    def _check(self, request: web.Request, payload: str) -> web.Response | None:
        q = request.query
        ts, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not signature_ok(q.get("msg_signature"), self._token, ts, nonce, payload):
            return self._refuse(403, "bad_signature", "bad msg_signature")
        if not self._fresh(ts):
            return self._refuse(403, "stale_timestamp", "stale timestamp")
        return None

    async def verify(self, request: web.Request) -> web.Response:
        """``GET``: the console's URL check: decrypt ``echostr`` and answer its plaintext."""
        # base64 has no spaces: a '+' that arrived unescaped was decoded as one by form rules
        echostr = request.query.get("echostr", "").replace(" ", "+")
        refused = self._check(request, echostr)
        if refused is not None:
            return refused
        try:
            plain = self.crypto.decrypt(echostr)
        except CryptoError as exc:
            return self._refuse(400, f"crypto_{exc.reason}", "cannot decrypt echostr")
        return _plain(200, plain.decode("utf-8", "replace"))

    async def receive(self, request: web.Request) -> web.Response:
        try:
            return await self._receive(request)
        except web.HTTPRequestEntityTooLarge:
            raise
        except Exception as exc:  # never a 5xx for a callback
            self._count("error")
            log.error("微信客服 callback failed: %s", type(exc).__name__, extra={"channel": CHANNEL})
            return _plain(200, SUCCESS)

    async def _receive(self, request: web.Request) -> web.Response:
        if not self._started:
            return self._refuse(403, "not_started", "channel not started")
        try:
            outer = parse(await request.read())
        except XmlError:
            return self._refuse(400, "bad_xml", "malformed XML")
        encrypted = outer.get("Encrypt", "")
        if not encrypted:
            return self._refuse(400, "bad_xml", "Encrypt missing")
        refused = self._check(request, encrypted)
        if refused is not None:
            return refused
        try:
            event = parse(self.crypto.decrypt(encrypted))
        except CryptoError as exc:
            return self._refuse(400, f"crypto_{exc.reason}", "cannot decrypt")
        except XmlError:
            return self._refuse(400, "bad_xml", "malformed XML inside Encrypt")
        if event.get("MsgType") == "event" and event.get("Event") == "kf_msg_or_event":
            kfid = event.get("OpenKfId", "")  # older callbacks name no account: pull them all
            if len(kfid) > 64:
                return self._refuse(400, "bad_message", "OpenKfId too long")
            self._count("callback")
            self.schedule_sync(kfid, event.get("Token", ""))
        return _plain(200, SUCCESS)

    # -- pulling messages ----------------------------------------------------------------
    def schedule_sync(self, kfid: str, token: str) -> None:
        """Pull ``kfid``'s messages soon ('' = every account, with its own cursor); callbacks
        during a pull coalesce into one more pull."""
        self._wanted[kfid] = token
        if kfid not in self._syncers:
            task = asyncio.create_task(self._sync_loop(kfid), name="kf-sync")
            self._syncers[kfid] = task

    async def _sync_loop(self, kfid: str) -> None:
        try:
            while self._started and kfid in self._wanted:
                token = self._wanted.pop(kfid)
                try:
                    await self._sync(kfid, token)
                except (ApiError, RedisError, OSError, LockError) as exc:
                    # Nothing is lost: the cursor did not move past what was handled, and the
                    # next callback (or this one's retry) pulls from there.
                    self._count("sync_failed")
                    log.warning("微信客服 sync failed: %s", exc if isinstance(exc, ApiError) else type(exc).__name__,
                                extra={"channel": CHANNEL})
                except Exception as exc:  # a bug must not end the pulls for this account
                    self._count("sync_failed")
                    log.error("微信客服 sync failed: %s", type(exc).__name__, extra={"channel": CHANNEL})
        finally:
            self._syncers.pop(kfid, None)

    async def _sync(self, kfid: str, token: str) -> None:
        h = _key_hash(self._corp_id, kfid)
        cursor_key = f"{self.prefix}:cursor:{h}"
        lock = self.redis.lock(f"{self.prefix}:sync:{h}:lock", timeout=60, blocking_timeout=30)
        if not await lock.acquire():
            # Another process has been pulling for 30 s; what this callback announced may have
            # arrived after its last page, so try again rather than assume it was read.
            self._count("sync_busy")
            self._wanted.setdefault(kfid, token)
            return
        try:
            raw = await self.redis.get(cursor_key)
            cursor = raw.decode() if isinstance(raw, bytes) else (raw or "")
            # No cursor yet: kf/sync_msg starts at the platform's oldest kept messages (days of
            # them on an account that was already in use, or after Redis lost its data), and
            # answering those now would reply to yesterday's questions, or twice.
            backlog_before = time.time() - self.settings.first_pull_max_age_s if not cursor else None
            while self._started:
                body: dict[str, Any] = {"cursor": cursor, "limit": self.settings.sync_limit}
                if kfid:
                    body["open_kfid"] = kfid
                if token:
                    body["token"] = token
                out = await self.api.call("/cgi-bin/kf/sync_msg", body)
                items = out.get("msg_list") or []
                for item in items if isinstance(items, list) else []:
                    if isinstance(item, dict):
                        await self._on_item_safely(kfid, item, backlog_before)
                nxt = out.get("next_cursor")
                if isinstance(nxt, str) and nxt and nxt != cursor:
                    await self.redis.set(cursor_key, nxt, ex=CURSOR_TTL_S)
                    await lock.extend(60, replace_ttl=True)
                    cursor = nxt
                if not out.get("has_more"):
                    break
        finally:
            try:
                await lock.release()
            except (LockError, RedisError, OSError):
                log.warning("微信客服 sync lock already gone", extra={"channel": CHANNEL})

    async def _on_item_safely(self, kfid: str, item: dict[str, Any], backlog_before: float | None = None) -> None:
        """One item that cannot be handled is logged and skipped: re-reading it forever would
        stop every later message of the account (a poison message)."""
        try:
            await self._on_item(kfid, item, backlog_before)
        except (RedisError, OSError, LockError):
            raise  # the store is down: stop here, the cursor stays before this item
        except Exception as exc:
            self._count("item_failed")
            log.error("微信客服 message %s not handled: %s", tag(str(item.get("msgid", ""))), type(exc).__name__,
                      extra={"channel": CHANNEL})

    async def _on_item(self, kfid: str, item: dict[str, Any], backlog_before: float | None = None) -> None:
        """One entry of msg_list: a customer's message, or an event."""
        origin = item.get("origin")
        msgtype = str(item.get("msgtype", ""))
        kfid = str(item.get("open_kfid") or kfid)
        if msgtype == "event":
            await self._on_event(kfid, item)
            return
        if origin != ORIGIN_CUSTOMER:
            return  # the servicer's own messages (5), system notices
        user = str(item.get("external_userid", ""))
        msgid = str(item.get("msgid", ""))
        if not user or not msgid or len(user) > 64 or len(kfid) > 63 or len(msgid) > 128:
            self._count("bad_item")  # cut ids would merge different customers' conversations
            return
        sent_at = item.get("send_time")
        if isinstance(sent_at, int) and time.time() - sent_at > self.settings.send_window_s:
            self._count("skipped_window")  # too old to answer: the platform refuses sends by now
            return
        if backlog_before is not None and isinstance(sent_at, int) and sent_at < backlog_before:
            self._count("skipped_backlog")
            log.info("微信客服: message from before the first pull not answered", extra={"channel": CHANNEL})
            return
        if await self._with_human(kfid, user):
            self._count("skipped_human")
            return
        kind: MessageKind = "text"
        text = ""
        if msgtype == "text" and isinstance(item.get("text"), dict):
            text = str(item["text"].get("content", ""))
        else:
            kind = "non_text"
        msg = IncomingMessage(channel=CHANNEL, user_id=f"{kfid}:{user}", text=text, msg_id=msgid, kind=kind)
        outcome = await self._handle(msg)
        await self._answer(kfid, user, outcome)

    async def _answer(self, kfid: str, user: str, outcome: Outcome) -> None:
        if outcome.duplicate:
            self._count("duplicate")
            return
        texts = [r.text for r in outcome.replies]
        if outcome.handoff and self.settings.servicer_userid:
            handed, told = await self._hand_over(kfid, user)
            if handed:
                return
            if told:  # "transferring..." is out: say it did not work before the honest answer
                texts = [render_text(self.kb, "kf_handoff_failed"), *texts]
        self.outbox.put(self._outgoing(kfid, user, self._pack(texts)))

    def _pack(self, texts: list[str]) -> list[str]:
        """At most ``max_sends_per_message`` texts (the platform allows five per customer message)."""
        out, dropped = pack(texts, self.settings.max_sends_per_message, self.settings.max_reply_bytes)
        if dropped:
            self._count("send_lost", dropped)
            log.error("微信客服: %d reply piece(s) over the platform's per-message limit not sent", dropped,
                      extra={"channel": CHANNEL})
        return out

    def _outgoing(self, kfid: str, user: str, texts: list[str], **extra: Any) -> list[Outgoing]:
        to = f"{kfid}:{user}"
        return [Outgoing(to, t, tag(to), extra=dict(extra)) for t in texts]

    async def _on_event(self, kfid: str, item: dict[str, Any]) -> None:
        ev = item.get("event")
        if not isinstance(ev, dict):
            return
        etype = str(ev.get("event_type", ""))
        user = str(ev.get("external_userid", ""))
        kfid = str(ev.get("open_kfid") or kfid)
        if etype == "enter_session" and user and len(user) <= 64 and len(kfid) <= 63:
            self._count("enter_session")
            code = str(ev.get("welcome_code", ""))
            if not code:
                # The platform gives a code only when it allows a welcome (no recent contact);
                # without one, leave the conversation where it is: the customer may be mid-way.
                return
            msgid = str(item.get("msgid") or f"enter:{user}:{item.get('send_time', '')}")
            outcome = await self._handle(IncomingMessage(channel=CHANNEL, user_id=f"{kfid}:{user}",
                                                         text=MENU_COMMAND, msg_id=msgid[:128]))
            if outcome.duplicate:
                return
            text = "\n".join([render_text(self.kb, "kf_welcome"), *(r.text for r in outcome.replies)])
            self.outbox.put(self._outgoing(kfid, user, split_bytes(text, self.settings.max_reply_bytes)[:1],
                                           welcome_code=code))
        elif etype == "session_status_change" and user and ev.get("change_type") == SESSION_ENDED:
            await self._set_human(kfid, user, False)
        elif etype == "msg_send_fail":
            self._count("msg_send_fail")
            log.error("微信客服 reports a message not delivered (fail_type %s)", ev.get("fail_type"),
                      extra={"channel": CHANNEL})

    # -- human servicer ------------------------------------------------------------------
    def _human_key(self, kfid: str, user: str) -> str:
        return f"{self.prefix}:human:{_key_hash(self._corp_id, kfid, user)}"

    async def _with_human(self, kfid: str, user: str) -> bool:
        try:
            return bool(await self.redis.exists(self._human_key(kfid, user)))
        except (RedisError, OSError):
            return False

    async def _set_human(self, kfid: str, user: str, on: bool) -> None:
        key = self._human_key(kfid, user)
        if on:
            await self.redis.set(key, "1", ex=self.settings.send_window_s)
        else:
            await self.redis.delete(key)

    async def _hand_over(self, kfid: str, user: str) -> tuple[bool, bool]:
        """Tell the customer, then give the conversation to the servicer: (handed over, told).

        The notice goes first and is waited for: once a human has the conversation (state 3)
        the platform refuses API sends (95018), so a notice sent after the transfer is lost.
        """
        notice = self._outgoing(kfid, user, [render_text(self.kb, "kf_handoff")])[0]
        notice.done = asyncio.get_running_loop().create_future()
        self.outbox.put([notice])
        told = False
        try:
            told = await asyncio.wait_for(asyncio.shield(notice.done), timeout=HANDOFF_NOTICE_WAIT_S)
        except TimeoutError:
            log.warning("微信客服 handoff notice still queued; handing over anyway", extra={"channel": CHANNEL})
        try:
            await self.api.call("/cgi-bin/kf/service_state/trans", {
                "open_kfid": kfid, "external_userid": user, "service_state": STATE_HUMAN,
                "servicer_userid": self.settings.servicer_userid,
            })
        except ApiError as exc:
            self._count("handoff_failed")
            log.warning("微信客服 handoff failed: %s", exc, extra={"channel": CHANNEL})
            return False, told
        self._count("handoff")
        try:
            await self._set_human(kfid, user, True)
        except (RedisError, OSError):
            pass
        return True, told

    # -- the API -------------------------------------------------------------------------
    async def _fetch_token(self, api: WxApi) -> tuple[str, int]:
        try:
            out = await api.get_plain("/cgi-bin/gettoken", {"corpid": self._corp_id, "corpsecret": self._secret})
        except ApiError as exc:
            self._token_broken = not exc.retryable
            log.error("微信客服 access token refused (%s): check CorpID/Secret and the IP whitelist",
                      exc, extra={"channel": CHANNEL})
            raise
        token, expires = out.get("access_token"), out.get("expires_in", 7200)
        if not isinstance(token, str) or not token:
            raise ApiError("/cgi-bin/gettoken", None, "no access_token", retryable=True)
        self._token_broken = False
        return token, int(expires) if str(expires).isdigit() else 7200

    async def _deliver(self, item: Outgoing) -> None:
        kfid, _, user = item.to.partition(":")
        content = {"msgtype": "text", "text": {"content": item.text}}
        code = item.extra.get("welcome_code")
        if code:
            await self.api.call("/cgi-bin/kf/send_msg_on_event", {"code": code, **content})
        else:
            await self.api.call("/cgi-bin/kf/send_msg", {"touser": user, "open_kfid": kfid, **content})
