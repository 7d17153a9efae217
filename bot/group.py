"""Group messages, the bot's side: read, fetch the room's settings if needed, decide, carry out.

The decisions are ``bot/group_rules.py`` (pure, tested without Redis); this module only does
what a decision asks — the writes, the gates in order, the room's budget — on the
``RoomStore``, and counts what happened. It holds no policy of its own.
"""

from __future__ import annotations

from bot import metrics
from bot.group_rules import Decision, GroupRules, strip_mentions
from bot.models import IncomingMessage, Reply
from bot.store.rooms import Gate, Increment, RoomStore, SpendBudget, Write
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
        scan = self.scanner.scan(text) if msg.kind == "text" and not msg.mentioned else None
        reading = self.rules.read(msg, text, secrets or [], scan)
        settings = await self.rooms.get(msg.channel, msg.room_id or "") if reading.needs_settings else None
        decision = self.rules.decide(msg, reading, settings)
        replies = await self.carry_out(msg, decision)
        return replies, decision.scenario if replies else None

    async def carry_out(self, msg: IncomingMessage, d: Decision) -> list[Reply]:
        """Make the writes, check each part's gates, spend the room's budget once for what is
        left, then make the writes that depend on it having been said."""
        channel, room = msg.channel, msg.room_id or ""
        for w in d.writes:
            await self.rooms.write(channel, room, w)
        said: list[Reply] = []
        after: list[Write] = []
        for part in d.parts:
            if await self._all_pass(channel, room, part.gates):
                said += part.replies
                after += part.if_sent
        if said and d.budget is not None and not await self.rooms.passes(channel, room, SpendBudget(d.budget)):
            metrics.RATE_LIMITED.inc()  # the bot's own flood limit: an @-mention flood must not make it a spammer
            return []
        for w in after:
            await self.rooms.write(channel, room, w)
            if w == ALERT_COUNTER:
                metrics.ALERTS.inc()
        return said

    async def _all_pass(self, channel: str, room: str, gates: tuple[Gate, ...]) -> bool:
        for g in gates:
            if not await self.rooms.passes(channel, room, g):
                return False
        return True
