"""The path of one message, in one place (architecture.md "The flow of one message").

    IncomingMessage
      → clean + cut to size        (bad input gets an answer, never an exception)
      → redact personal data       (only the redacted text goes any further)
      → understand                 (pure: commands, scenario, amount, flags — outside the lock)
      → lock conversation + dedupe + rate limit + load session   (one Redis round trip)
      → dialog step / group rules (both pure; a group decision's gates and writes are then
                                   carried out on the room store by bot/group.py)
      → save session + record replies for the msg id + unlock     (one Redis round trip)
      → Outcome

When Redis fails the user still gets a safe static answer: the urgent reply of the scenario
the message names (understanding needs no Redis), else the 110/96110 fallback text.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
import unicodedata
from collections.abc import Callable

from redis.exceptions import RedisError

from bot import metrics
from bot.group import GroupHandler
from bot.group_rules import GroupRules
from bot.models import IncomingMessage, Outcome, Reply
from bot.privacy import redact
from bot.store.rooms import RoomStore
from bot.store.sessions import (
    DuplicateMessage,
    LockLost,
    LockTimeout,
    RateLimited,
    SessionStore,
    conversation_id,
)
from dialogs.construct import fast_constructor
from dialogs.engine import Dialog
from dialogs.session import Session
from dialogs.understand import Command, Understander, Understood
from knowledge.matcher import Matcher
from knowledge.render import render, render_text, with_legal_note
from knowledge.scanner import Scanner
from knowledge.schema import KnowledgeBase

log = logging.getLogger("bot.pipeline")

_reply: Callable[..., Reply] = fast_constructor(Reply)
_outcome: Callable[..., Outcome] = fast_constructor(Outcome)
"""The answer of every message, built from values already of the declared types (the dialog
returns ``str`` texts): ``model_construct`` without its per-field loop, as for ``Understood``."""

def _frames(exc: BaseException) -> str:
    """Where it failed (file:line of each frame), without the exception's message, which may
    quote the user's words."""
    return " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in traceback.extract_tb(exc.__traceback__)[-4:])


STORE_FAULTS = (RedisError, LockLost, OSError, TimeoutError)
"""Redis is down, stalled or lost the lock: the user gets the static answer. A LockTimeout is
not among them: it means a live holder (this user's earlier message) is still at work."""


def clean_text(text: str, limit: int) -> tuple[str, bool]:
    """Drop control characters (keep newlines), normalise width, cut to ``limit``."""
    text = "".join(
        ch for ch in text
        if ch in "\n\t" or unicodedata.category(ch)[0] != "C" or ch in "\u200d"
    )
    text = unicodedata.normalize("NFKC", text).strip()
    if len(text) > limit:
        return text[:limit], True
    return text, False


class Pipeline:
    """Stateless per process: everything a conversation remembers is in Redis."""

    def __init__(
        self,
        kb: KnowledgeBase,
        store: SessionStore,
        rooms: RoomStore,
        *,
        matcher: Matcher | None = None,
        scanner: Scanner | None = None,
        max_text_chars: int = 2000,
        resume_after_s: float = 1800,
        bot_name: str = "反诈助手",
        rate_room_per_min: int = 10,
        group_pattern_cooldown_s: int = 1800,
        group_alert_gap_s: int = 120,
        redis_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kb = kb
        self.clock = clock
        """Wall-clock seconds as the dialog sees them (idle time before "continue?"); tests
        pass their own instead of editing stored sessions."""
        self.store = store
        self.rooms = rooms
        self.matcher = matcher or Matcher.from_kb(kb)
        self.scanner = scanner or Scanner.from_kb(kb)
        self.understander = Understander(kb, self.matcher, self.scanner)
        self.dialog = Dialog(kb, resume_after_s=resume_after_s)
        self.group = GroupHandler(GroupRules(
            kb, self.understander, bot_name=bot_name,
            pattern_cooldown_s=group_pattern_cooldown_s, room_gap_s=group_alert_gap_s,
            replies_per_min=rate_room_per_min,
        ), self.scanner, rooms)
        self.max_text_chars = max_text_chars
        # A hung Redis must not hang the user. Every store call is bounded inside the store
        # (each script call, the wait for the lock, the local queue). A group message's
        # locked section (the group policy's room reads and writes + commit) has this
        # deadline; it starts when this message's turn comes, so a message queued behind its
        # own conversation's earlier ones is not timed out by them.
        self.section_timeout_s = redis_timeout_s + 1.0

    async def handle(self, msg: IncomingMessage) -> Outcome:
        """Answer one message. Never raises; never returns a reply twice for one msg id."""
        started = time.perf_counter()
        metrics.child(metrics.MESSAGES_IN, msg.channel, msg.kind).inc()
        outcome = await self._handle(msg)
        metrics.LATENCY.observe(time.perf_counter() - started)
        metrics.child(metrics.REPLIES_OUT, msg.channel).inc(len(outcome.replies))
        if outcome.scenario:
            metrics.child(metrics.SCENARIOS, outcome.scenario).inc()
        return outcome

    async def _handle(self, msg: IncomingMessage) -> Outcome:
        text, truncated = clean_text(msg.text, self.max_text_chars)
        red = redact(text)
        conv = conversation_id(msg.channel, msg.user_id, msg.room_id)
        u: Understood | None = None
        try:
            if msg.in_room:
                return await self._room(msg, conv, red.text, red.secrets)
            u = self.understander.understand(
                red.text, secrets=red.secrets, personal=red.personal, truncated=truncated
            )
            # the step is pure CPU and the commit is bounded by the store (every script call has
            # a deadline), so this section needs no timer of its own
            async with self.store.hold(conv, msg.msg_id) as held:
                session = Session.from_raw(held.raw)
                if msg.kind == "non_text":  # deduped and rate-limited like text; the dialog stays put
                    new, texts = session, [render_text(self.kb, "non_text")]
                else:
                    new, texts = self.dialog.step(session, u, self.clock())
                replies = [_reply(text=x) for x in texts]
                await self.store.commit(held, new, replies, scenario=new.scenario, state=new.state)
            if log.isEnabledFor(logging.INFO):  # the extra fields cost a hash; skip when unused
                log.info("turn", extra={"conv": self.store.tag(conv), "state": new.state,
                                        "scenario": new.scenario, "replies": len(texts),
                                        "kinds": sorted(red.kinds)})
            return _outcome(replies=replies, scenario=new.scenario, state=new.state,
                            handoff=u.command is Command.human)
        except DuplicateMessage as dup:
            # An idempotent retry gets the first delivery's whole answer, marked as a replay.
            metrics.DUPLICATES.inc()
            return Outcome(replies=dup.replies, duplicate=True, scenario=dup.scenario,
                           state=dup.state or "duplicate")
        except LockTimeout:
            # Not an outage: this conversation's earlier message is still being answered
            # (or another process holds it). Say so, and ask for the message again.
            metrics.LOCK_BUSY.inc()
            log.warning("conversation busy", extra={"conv": self.store.tag(conv)})
            if msg.in_room and not msg.mentioned:
                return Outcome(state="busy")
            return Outcome(replies=[Reply(text=render_text(self.kb, "busy"))], state="busy")
        except RateLimited as rl:
            metrics.RATE_LIMITED.inc()
            first_over = rl.count == self.store.rate_per_min + 1
            notice = [Reply(text=render_text(self.kb, "rate_limited"))] if first_over else []
            return Outcome(replies=notice, state="rate_limited")
        except STORE_FAULTS as exc:
            metrics.REDIS_FAILURES.inc()
            log.warning("store unavailable, static answer",
                        extra={"conv": self.store.tag(conv), "error": type(exc).__name__})
            return self._static(msg, u)
        except Exception as exc:  # the user must get an answer whatever broke
            metrics.ERRORS.labels("pipeline").inc()
            log.error("turn failed", extra={"conv": self.store.tag(conv), "error": type(exc).__name__,
                                            "where": _frames(exc)})
            if msg.in_room and not msg.mentioned:
                return Outcome(state="error")  # never post an apology nobody asked for into a group
            return Outcome(replies=[Reply(text=render_text(self.kb, "error_fallback"))], state="error")

    def _static(self, msg: IncomingMessage, u: Understood | None) -> Outcome:
        """Safe answer without Redis: the scenario's urgent step if known, else the hotlines."""
        if msg.in_room and not msg.mentioned:
            return Outcome(state="degraded")
        if u is not None and u.scenario:
            sc = self.kb.scenarios[u.scenario]
            text = "\n".join(with_legal_note(self.kb, [render(self.kb, sc.urgent)]))  # kb check: fits
            return Outcome(replies=[Reply(text=text)], scenario=sc.id, state="degraded")
        return Outcome(replies=[Reply(text=render_text(self.kb, "static_fallback"))], state="degraded")

    async def _room(self, msg: IncomingMessage, conv: str, text: str, secrets: set[str]) -> Outcome:
        """Group messages: dedupe and per-member lock as in 1:1, then the group policy.

        No per-member flood notice here: chatty members are the group's business, and the
        scanner must keep reading every message. What the bot itself says per room is capped
        inside the group policy. No session is stored for a member: no dialog reads one, and
        one per member of every group would only grow (the commit records the replies for
        dedupe and unlocks).
        """
        async with (self.store.hold(conv, msg.msg_id, limit=False) as held,
                    asyncio.timeout(self.section_timeout_s)):
            replies, scenario = await self.group.handle(msg, text, sorted(secrets))
            await self.store.commit(held, None, replies, scenario=scenario, state="group")
        return Outcome(replies=replies, scenario=scenario, state="group")
