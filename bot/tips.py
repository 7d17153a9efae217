"""The optional weekly anti-fraud tip, for groups whose admins switched it on (off by default).

Rooms that opted in sit in one Redis ZSET scored by when they last got a tip, so the schedule
survives restarts and several bot processes never send the same week's tip twice (a Lua
claim moves the score before the send; a failed send makes the room due again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.store.rooms import RoomStore
from knowledge.render import render, with_legal_note
from knowledge.schema import KnowledgeBase

log = logging.getLogger("bot.tips")

WEEK_S = 7 * 24 * 3600
Sender = Callable[[str, str], Awaitable[None]]
"""send(room_id, text) of one channel."""


def tip_for(kb: KnowledgeBase, now: float) -> str:
    """This week's tip: the ``tip_N`` texts in rotation, with the legal note when one cites law."""
    tips = sorted(k for k in kb.texts if k.startswith("tip_"))
    key = tips[int(now // WEEK_S) % len(tips)]
    return "\n".join(with_legal_note(kb, [render(kb, kb.texts[key])]))


async def send_due_tips(kb: KnowledgeBase, rooms: RoomStore, senders: dict[str, Sender],
                        now: float | None = None, period_s: float = WEEK_S) -> int:
    """Send the tip to every room that is due; returns how many were sent."""
    now = time.time() if now is None else now
    sent = 0
    for channel, room_id in await rooms.due_tips(now, period_s):
        send = senders.get(channel)
        if send is None:
            continue
        if not await rooms.claim_tip(channel, room_id, now, period_s):
            continue
        try:
            await send(room_id, tip_for(kb, now))
            sent += 1
        except Exception as exc:  # one failing room must not stop the others
            await rooms.release_tip(channel, room_id)  # due again next round
            log.warning("tip send failed", extra={"error": type(exc).__name__})
    return sent


async def run_tips(kb: KnowledgeBase, rooms: RoomStore, senders: dict[str, Sender],
                   every_s: float = 3600) -> None:
    """Background loop started by ``python -m bot run`` when a channel can send to rooms."""
    while True:
        try:
            await send_due_tips(kb, rooms, senders)
        except Exception as exc:  # Redis down: try again next round
            log.warning("tip round failed", extra={"error": type(exc).__name__})
        await asyncio.sleep(every_s)
