"""Group messages, the bot's side: read, fetch the room's settings if needed, decide, carry out.

The decisions are ``bot/group_rules.py`` (pure, tested without Redis); this module only does
what a decision asks — the writes, the gates in order, the room's budget — through
``RoomStore.carry_out`` (one script: an ad warning used to take five round trips, now the
settings read plus one), and counts what happened. It holds no policy of its own.
"""

from __future__ import annotations

from bot import metrics
from bot.group_rules import Decision, GroupRules, strip_mentions
from bot.models import IncomingMessage, Reply
from bot.store.rooms import Increment, RoomStore, Step
from knowledge.scanner import Scanner

__all__ = ["GroupHandler", "strip_mentions"]

ALERT_COUNTER = Increment("n_alerts")


class GroupHandler:
    """One room message → its replies (already gated) and the scenario they answer."""

    def __init__(self, rules: GroupRules, scanner: Scanner, rooms: RoomStore) -> None:
        self.rules = rules
        self.scanner = scanner
        self.rooms = rooms

    async def handle(self, msg: IncomingMessage, text: str,
                     secrets: list[str] | None = None) -> tuple[list[Reply], str | None]:
        """Replies for one room message (``text`` already redacted) and the scenario it touched."""
        scan = None
        if msg.kind == "text":
            # A mention spares nothing by itself: "@bot 高价收微信号…" is scanned without the
            # mention, so an ad cannot dodge the warning by naming the bot.
            body = strip_mentions(text, self.rules.bot_name) if msg.mentioned else text
            scan = self.scanner.scan(body, bot_name=self.rules.bot_name)
        reading = self.rules.read(msg, text, secrets or [], scan)
        settings = await self.rooms.get(msg.channel, msg.room_id or "") if reading.needs_settings else None
        decision = self.rules.decide(msg, reading, settings)
        replies = await self.carry_out(msg, decision)
        return replies, decision.scenario if replies else None

    async def carry_out(self, msg: IncomingMessage, d: Decision) -> list[Reply]:
        """Hand the decision to the room store (one round trip) and keep the parts it passed."""
        if not d.writes and not d.parts:
            return []
        steps = [Step(gates=p.gates, speaks=bool(p.replies), if_sent=p.if_sent) for p in d.parts]
        passed = await self.rooms.carry_out(msg.channel, msg.room_id or "", d.writes, steps, d.budget)
        if passed is None:  # the bot's own flood limit: an @-mention flood must not make it a spammer
            metrics.RATE_LIMITED.inc()
            return []
        said = [(p, ok) for p, ok in zip(d.parts, passed, strict=True) if ok]
        metrics.ALERTS.inc(sum(1 for p, _ in said if ALERT_COUNTER in p.if_sent))
        return [r for p, _ in said for r in p.replies]
