"""Per-group settings, counters and alert cooldowns on Redis.

Admins switch alerts and tips on or off; the bot counts what it did so admins can see it;
cooldowns stop a pasted ad from making the bot flood the group. Every key of one room shares
a hash tag and carries a TTL that each touch renews, so abandoned groups clean themselves up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from pydantic import BaseModel
from redis.asyncio import Redis, RedisCluster

ROOM_TTL_S = 180 * 24 * 3600

CLAIM_TIP_LUA = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""
"""Claim a room's due tip: move its score to now only if still due (one sender wins)."""

CARRY_OUT_LUA = """
local plan = cjson.decode(ARGV[1])
local ttl = tonumber(ARGV[2])
local function incr(name)
  redis.call('HINCRBY', KEYS[1], name, 1)
  redis.call('EXPIRE', KEYS[1], ttl)
end
local function passes(g)
  if g[1] == 'once' then
    if redis.call('HSETNX', KEYS[1], 'once:' .. g[2], '1') == 0 then return false end
    redis.call('EXPIRE', KEYS[1], ttl)
    return true
  elseif g[1] == 'budget_left' then
    return tonumber(redis.call('GET', KEYS[2]) or '0') < tonumber(g[2])
  elseif g[1] == 'cooldown' then
    if redis.call('EXISTS', KEYS[3]) == 1 then return false end
    if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', g[2]) then return false end
    if tonumber(g[3]) > 0 then redis.call('SET', KEYS[3], '1', 'EX', g[3]) end
    return true
  end
  return false
end
for _, name in ipairs(plan.counts) do incr(name) end
local out, speaks = {}, false
for i, part in ipairs(plan.parts) do
  local ok = true
  for _, g in ipairs(part.gates) do
    if not passes(g) then ok = false break end
  end
  out[i] = ok and 1 or 0
  if ok and part.speaks then speaks = true end
end
if speaks and plan.budget >= 0 then
  local n = redis.call('INCR', KEYS[2])
  if n == 1 then redis.call('EXPIRE', KEYS[2], 60) end
  if n > plan.budget then return {0} end
end
for i, part in ipairs(plan.parts) do
  if out[i] == 1 then
    for _, name in ipairs(part.if_sent) do incr(name) end
  end
end
table.insert(out, 1, 1)
return out
"""
"""One group decision in one round trip. KEYS: room hash, rate, gap, pattern cooldown (all
one hash tag). ARGV: the plan as JSON — counts to increment, then parts, each with gates
checked in order (stopping at the first no), whether it says anything and the counts to
increment if it is said; budget (< 0: none) spent once for everything that passed — and the
room TTL. Returns {0} when the room's budget is used up (nothing is said), else {1, then 1/0
per part: 1 = say it}."""



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


Write = SetFlag | Increment
Gate = FirstTime | BudgetLeft | AlertCooldown


@dataclass(frozen=True)
class Step:
    """One part of a group decision as the store sees it: gates, then writes if it is said."""

    gates: tuple[Gate, ...]
    if_sent: tuple[Increment, ...] = ()
    speaks: bool = True


class RoomStore:
    """Room-level state; a group decision is carried out in one round trip (``carry_out``)."""

    def __init__(self, redis: Redis | RedisCluster, prefix: str = "fanzha") -> None:
        self.redis = redis
        self.prefix = prefix
        self._claim_tip = redis.register_script(CLAIM_TIP_LUA)
        self._carry_out = redis.register_script(CARRY_OUT_LUA)

    async def carry_out(self, channel: str, room_id: str, writes: Sequence[Write], steps: Sequence[Step],
                        budget: int | None) -> list[bool] | None:
        """Make ``writes``, check each step's gates, spend ``budget`` once for all that passed,
        make their ``if_sent`` writes: which steps are said, or None when the budget was used
        up (then nothing is said and no ``if_sent`` write is made).

        One round trip (a script), except an admin's setting, which also updates the tips
        index (another hash slot) and is rare.
        """
        counts = [w.name for w in writes if isinstance(w, Increment)]
        for w in writes:
            if isinstance(w, SetFlag):
                await self.set_flag(channel, room_id, w.name, w.on)
        if not counts and not steps:
            return []
        base = self._base(channel, room_id)
        pattern = next((g.pattern for st in steps for g in st.gates if isinstance(g, AlertCooldown)), "")
        plan = {
            "counts": counts,
            "parts": [{"gates": [_gate_args(g) for g in st.gates], "speaks": st.speaks,
                       "if_sent": [w.name for w in st.if_sent]} for st in steps],
            "budget": -1 if budget is None else budget,
        }
        keys = [f"{base}:room", f"{base}:rate", f"{base}:gap", f"{base}:cd:{_pattern_tag(pattern)}"]
        budget_ok, *passed = [int(x) for x in await self._carry_out(keys=keys, args=[json.dumps(plan), ROOM_TTL_S])]
        return [bool(x) for x in passed] if budget_ok else None

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


def _pattern_tag(pattern: str) -> str:
    """A pattern id as it appears in a cooldown key (hashed, fixed length)."""
    return hashlib.blake2b(pattern.encode(), digest_size=6).hexdigest()


def _gate_args(g: Gate) -> list[object]:
    """A gate as the carry-out script reads it."""
    if isinstance(g, FirstTime):
        return ["once", g.what]
    if isinstance(g, BudgetLeft):
        return ["budget_left", g.per_min]
    return ["cooldown", max(g.cooldown_s, 1), g.gap_s]
