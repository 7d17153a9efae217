"""Conversation sessions on Redis: lock before load, save and unlock together, dedupe replies.

The invariants, and why they are built this way:

* **Lock before load** (aiogram #1317): a conversation's state is read only by the holder of
  its lock, so two messages of one conversation never run their dialog step at the same time,
  in one process or in several.
* **Two levels of lock.** In-process, an ``asyncio.Lock`` per conversation keeps arrival order
  (asyncio locks are FIFO) and stops local waiters from spinning on Redis. Across processes, a
  Redis key holding a random token with a PX expiry: a crashed holder's lock expires by itself,
  and release/commit are compare-token scripts, so a slow holder can never delete or overwrite
  what a newer holder did.
* **One round trip each way.** ``begin`` takes the lock, checks the message id and loads the
  session in one script; ``commit`` saves the session, records the replies for the message id
  and releases the lock in another.
* **Dedupe by message id, inside the lock.** The first delivery stores its replies under the
  message id when it commits; a redelivery (WeChat retries, puppet duplicates) waits for the
  lock and gets those replies again without advancing the dialog. A delivery whose processing
  died before commit left no record, so its retry is processed rather than lost.
* **Cluster-ready keys.** All keys of one conversation share the hash tag ``{<conv hash>}`` so
  the scripts also run on Redis Cluster. Conversation ids are hashed, so no WeChat id appears
  in a key name.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from pydantic import BaseModel
from redis.asyncio import Redis

from bot.models import Reply
from bot.store.autopipe import AutoPipeline

BEGIN_LUA = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return {0, ''} end
if ARGV[3] == '1' then
  local done = redis.call('GET', KEYS[3])
  if done then
    if cur then redis.call('DEL', KEYS[1]) end
    return {2, done}
  end
end
if not cur and tonumber(ARGV[4]) > 0 then
  local n = redis.call('INCR', KEYS[4])
  if n == 1 then redis.call('EXPIRE', KEYS[4], 60) end
  if n > tonumber(ARGV[4]) then return {3, tostring(n)} end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, redis.call('GET', KEYS[2]) or ''}
"""
"""KEYS: lock, session, msg, rate. ARGV: token, lock_ttl_ms, has_msg, rate_limit (0 = none).
Returns {0} locked by another holder, {2, replies} already answered (checked before the rate
limit, so a redelivery always gets its replies), {3, count} over the per-minute limit (lock not
taken), {1, session} acquired. Running it twice with the same token is harmless (a client
retry after a lost reply finds its own lock and takes it again)."""

COMMIT_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5]) end
redis.call('DEL', KEYS[1])
return 1
"""
"""KEYS: lock, session, msg. ARGV: token, session_json ('' = keep no session), session_ttl,
replies_json, dedupe_ttl."""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class LockTimeout(Exception):
    """The conversation stayed locked by another holder longer than ``lock_wait_s``."""


class LockLost(Exception):
    """The lock expired before commit; another holder may have run. Nothing was written."""


class RateLimited(Exception):
    """Too many messages in this conversation this minute; ``count`` says how many."""

    def __init__(self, count: int) -> None:
        super().__init__(f"rate limited ({count} this minute)")
        self.count = count


class DuplicateMessage(Exception):
    """This message id was already answered; ``replies`` are the replies it got."""

    def __init__(self, replies: list[Reply]) -> None:
        super().__init__("duplicate message")
        self.replies = replies


@dataclass
class _LocalLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class Held:
    """A held conversation: its raw session JSON ('' when new) and what commit needs."""

    conv: str
    token: str
    msg_id: str | None
    raw: str


def conversation_id(channel: str, user_id: str, room_id: str | None) -> str:
    """Group and private sessions are kept apart: the room (or its absence) is part of the key.

    JSON keeps the parts unambiguous: no room id (not even "dm") can collide with a private chat.
    """
    return json.dumps([channel, room_id, user_id], ensure_ascii=False)


class SessionStore:
    """All session I/O of the pipeline; one instance per process, many processes per Redis."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "fanzha",
        session_ttl_s: int = 7 * 24 * 3600,
        dedupe_ttl_s: int = 24 * 3600,
        lock_ttl_ms: int = 10_000,
        lock_wait_s: float = 5.0,
        rate_per_min: int = 0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.session_ttl_s = session_ttl_s
        self.dedupe_ttl_s = dedupe_ttl_s
        self.lock_ttl_ms = lock_ttl_ms
        self.lock_wait_s = lock_wait_s
        self.rate_per_min = rate_per_min
        self._local: dict[str, _LocalLock] = {}
        self._begin = redis.register_script(BEGIN_LUA)
        self._commit = redis.register_script(COMMIT_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._pipe = AutoPipeline(redis)

    # -- keys ---------------------------------------------------------------------------
    def tag(self, conv: str) -> str:
        """Hash tag shared by every key of one conversation (no raw ids in key names)."""
        return hashlib.blake2b(conv.encode(), digest_size=10).hexdigest()

    def keys(self, conv: str, msg_id: str | None) -> list[str]:
        base = f"{self.prefix}:{{{self.tag(conv)}}}"
        msg = hashlib.blake2b((msg_id or "").encode(), digest_size=10).hexdigest()
        return [f"{base}:lock", f"{base}:sess", f"{base}:msg:{msg}", f"{base}:rate"]

    # -- the critical section -----------------------------------------------------------
    @asynccontextmanager
    async def _local_lock(self, conv: str) -> AsyncIterator[None]:
        """FIFO in-process lock; the map entry is dropped when nobody uses it (no leak)."""
        entry = self._local.get(conv)
        if entry is None:
            entry = self._local[conv] = _LocalLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                self._local.pop(conv, None)

    @asynccontextmanager
    async def hold(self, conv: str, msg_id: str | None = None, *, limit: bool = True) -> AsyncIterator[Held]:
        """Lock the conversation and load its session; release on exit unless committed.

        Raises DuplicateMessage, RateLimited (only with ``limit``) or LockTimeout before yielding.
        """
        async with self._local_lock(conv):
            held = await self._acquire(conv, msg_id, self.rate_per_min if limit else 0)
            try:
                yield held
            finally:
                if held.token:
                    await self._pipe.run(self._release, self.keys(conv, msg_id)[:1], [held.token])

    async def _acquire(self, conv: str, msg_id: str | None, rate_per_min: int) -> Held:
        keys = self.keys(conv, msg_id)
        token = secrets.token_hex(8)
        deadline = time.monotonic() + self.lock_wait_s
        delay = 0.002
        while True:
            code, payload = await self._pipe.run(
                self._begin, keys, [token, self.lock_ttl_ms, "1" if msg_id else "0", rate_per_min]
            )
            code = int(code)
            if code == 1:
                raw = payload.decode() if isinstance(payload, bytes) else str(payload)
                return Held(conv=conv, token=token, msg_id=msg_id, raw=raw)
            if code == 2:
                raise DuplicateMessage([Reply.model_validate(r) for r in json.loads(payload)])
            if code == 3:
                raise RateLimited(int(payload))
            if time.monotonic() >= deadline:
                raise LockTimeout(f"conversation locked for more than {self.lock_wait_s}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def commit(self, held: Held, session: BaseModel | None, replies: list[Reply]) -> None:
        """Save the session (sliding TTL; None: none to keep), remember the replies for the msg
        id, unlock."""
        keys = self.keys(held.conv, held.msg_id)[:3]
        ok = await self._pipe.run(
            self._commit,
            keys,
            [
                held.token,
                session.model_dump_json() if session is not None else "",
                self.session_ttl_s,
                json.dumps([r.model_dump() for r in replies], ensure_ascii=False) if held.msg_id else "",
                self.dedupe_ttl_s,
            ],
        )
        held.token = ""
        if not int(ok):
            raise LockLost("lock expired before commit; the step ran too long")

    async def peek(self, conv: str) -> str | None:
        """Read a session without locking (diagnostics and tests only)."""
        raw = await self.redis.get(self.keys(conv, None)[1])
        return raw.decode() if isinstance(raw, bytes) else raw

    @property
    def local_lock_count(self) -> int:
        """Conversations with an in-process lock entry right now (should return to 0)."""
        return len(self._local)
