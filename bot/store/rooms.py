"""Per-group settings, counters and alert cooldowns on Redis.

Admins switch alerts and tips on or off; the bot counts what it did so admins can see it;
cooldowns stop a pasted ad from making the bot flood the group. Every key of one room shares
a hash tag and carries a TTL that each touch renews, so abandoned groups clean themselves up.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import cast

from pydantic import BaseModel
from redis.asyncio import Redis

ROOM_TTL_S = 180 * 24 * 3600

ALERT_GATE_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[2], '1', 'EX', ARGV[2]) end
return 1
"""
"""KEYS: per-pattern key, room gap key. ARGV: pattern cooldown s, room gap s.
1 = this alert may be sent (and both cooldowns start), 0 = stay quiet."""

RATE_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], 60) end
return n
"""
"""Messages this minute in the room (fixed one-minute window)."""

CLAIM_TIP_LUA = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
"""Claim a room's due tip: move its score to now only if still due (one sender wins)."""

ONCE_LUA = """
if redis.call('HSETNX', KEYS[1], ARGV[1], '1') == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class RoomSettings(BaseModel):
    """What admins control, with the defaults a newly joined group gets."""

    alerts: bool = True
    tips: bool = False
    keywords: bool = False
    n_alerts: int = 0
    n_mentions: int = 0


_BOOL_FIELDS = ("alerts", "tips", "keywords")


# -- what a group decision may ask of a room (bot/group_rules.py decides, RoomStore does) --
@dataclass(frozen=True)
class SetFlag:
    """Write: an admin switched ``name`` (alerts, tips, keywords) on or off."""

    name: str
    on: bool


@dataclass(frozen=True)
class Increment:
    """Write: count one more ``name`` (n_alerts, n_mentions) for the room's statistics."""

    name: str


@dataclass(frozen=True)
class FirstTime:
    """Gate: passes exactly once per room and ``what`` (the join introduction)."""

    what: str


@dataclass(frozen=True)
class BudgetLeft:
    """Gate, read-only: the bot has said fewer than ``per_min`` things in the room this minute."""

    per_min: int


@dataclass(frozen=True)
class AlertCooldown:
    """Gate: no warning about ``pattern`` for ``cooldown_s`` and none at all for ``gap_s``;
    passing it starts both cooldowns."""

    pattern: str
    cooldown_s: int
    gap_s: int


@dataclass(frozen=True)
class SpendBudget:
    """Gate: count one message against the room's ``per_min``; passes while within it."""

    per_min: int


Write = SetFlag | Increment
Gate = FirstTime | BudgetLeft | AlertCooldown | SpendBudget


class RoomStore:
    """Room-level state; all methods are single round trips."""

    def __init__(self, redis: Redis, prefix: str = "fanzha") -> None:
        self.redis = redis
        self.prefix = prefix
        self._gate = redis.register_script(ALERT_GATE_LUA)
        self._once = redis.register_script(ONCE_LUA)
        self._rate = redis.register_script(RATE_LUA)
        self._claim_tip = redis.register_script(CLAIM_TIP_LUA)

    async def write(self, channel: str, room_id: str, w: Write) -> None:
        """Carry out one write of a group decision."""
        if isinstance(w, SetFlag):
            await self.set_flag(channel, room_id, w.name, w.on)
        else:
            await self.count(channel, room_id, w.name)

    async def passes(self, channel: str, room_id: str, g: Gate) -> bool:
        """Check (and, for the claiming gates, claim) one gate of a group decision."""
        if isinstance(g, FirstTime):
            return await self.first_time(channel, room_id, g.what)
        if isinstance(g, BudgetLeft):
            return not await self.rate_exceeded(channel, room_id, g.per_min)
        if isinstance(g, AlertCooldown):
            return await self.alert_allowed(channel, room_id, g.pattern, g.cooldown_s, g.gap_s)
        return not await self.over_rate(channel, room_id, g.per_min)

    def _base(self, channel: str, room_id: str) -> str:
        tag = hashlib.blake2b(f"room\x1f{channel}\x1f{room_id}".encode(), digest_size=10).hexdigest()
        return f"{self.prefix}:{{{tag}}}"

    async def get(self, channel: str, room_id: str) -> RoomSettings:
        raw = await self.redis.hgetall(f"{self._base(channel, room_id)}:room")
        data = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                for k, v in raw.items()}
        fields: dict[str, object] = {}
        for name in _BOOL_FIELDS:
            if name in data:
                fields[name] = data[name] == "1"
        for name in ("n_alerts", "n_mentions"):
            if name in data:
                fields[name] = int(data[name])
        return RoomSettings.model_validate(fields)

    async def set_flag(self, channel: str, room_id: str, name: str, on: bool) -> None:
        if name not in _BOOL_FIELDS:
            raise ValueError(name)
        key = f"{self._base(channel, room_id)}:room"
        async with self.redis.pipeline(transaction=True) as p:
            p.hset(key, name, "1" if on else "0")
            p.expire(key, ROOM_TTL_S)
            await p.execute()
        if name == "tips":
            await self._tips_index(channel, room_id, on)

    @property
    def tips_key(self) -> str:
        """Rooms that asked for the weekly tip, scored by when they last got one."""
        return f"{self.prefix}:tips"

    async def _tips_index(self, channel: str, room_id: str, on: bool) -> None:
        member = json.dumps([channel, room_id])
        async with self.redis.pipeline(transaction=True) as p:
            if on:
                p.zadd(self.tips_key, {member: 0}, nx=True)
            else:
                p.zrem(self.tips_key, member)
            p.expire(self.tips_key, ROOM_TTL_S)
            await p.execute()

    async def due_tips(self, now: float, period_s: float, limit: int = 50) -> list[tuple[str, str]]:
        """(channel, room) pairs whose last tip is older than ``period_s``."""
        members = await self.redis.zrangebyscore(self.tips_key, "-inf", now - period_s, start=0, num=limit)
        pairs = [json.loads(cast(str | bytes, m)) for m in members]  # members are the JSON we wrote
        return [(str(channel), str(room)) for channel, room in pairs]

    async def claim_tip(self, channel: str, room_id: str, now: float, period_s: float) -> bool:
        """True for exactly one caller per due room (several bot processes may run)."""
        member = json.dumps([channel, room_id])
        return bool(int(await self._claim_tip(keys=[self.tips_key], args=[member, now, now - period_s, ROOM_TTL_S])))

    async def release_tip(self, channel: str, room_id: str) -> None:
        """A send failed: make the room due again."""
        await self.redis.zadd(self.tips_key, {json.dumps([channel, room_id]): 0}, xx=True)

    async def count(self, channel: str, room_id: str, name: str) -> None:
        key = f"{self._base(channel, room_id)}:room"
        async with self.redis.pipeline(transaction=True) as p:
            p.hincrby(key, name, 1)
            p.expire(key, ROOM_TTL_S)
            await p.execute()

    async def first_time(self, channel: str, room_id: str, what: str) -> bool:
        """True exactly once per room and ``what`` (e.g. the join introduction)."""
        key = f"{self._base(channel, room_id)}:room"
        return bool(int(await self._once(keys=[key], args=[f"once:{what}", ROOM_TTL_S])))

    async def over_rate(self, channel: str, room_id: str, per_min: int) -> bool:
        """Count one message for the room; True once it exceeds ``per_min`` this minute."""
        n = await self._rate(keys=[f"{self._base(channel, room_id)}:rate"], args=[])
        return int(n) > per_min

    async def rate_exceeded(self, channel: str, room_id: str, per_min: int) -> bool:
        """Read-only: has the room used up ``per_min`` this minute (nothing is counted)."""
        n = await self.redis.get(f"{self._base(channel, room_id)}:rate")
        return n is not None and int(n) >= per_min

    async def alert_allowed(
        self, channel: str, room_id: str, pattern: str, pattern_cooldown_s: int, room_gap_s: int
    ) -> bool:
        """Claim the right to warn about ``pattern`` now; False while a cooldown runs."""
        base = self._base(channel, room_id)
        pat = hashlib.blake2b(pattern.encode(), digest_size=6).hexdigest()
        ok = await self._gate(
            keys=[f"{base}:cd:{pat}", f"{base}:gap"],
            args=[max(pattern_cooldown_s, 1), room_gap_s],
        )
        return bool(int(ok))
