"""Conversation sessions on Redis: lock before load, save and unlock together, dedupe replies.

(Over 350 lines on purpose: the lock, its lease renewal, dedupe and the replay record are
one protocol whose Lua scripts and Python halves must be read side by side.)

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
import logging
import secrets
import time
from dataclasses import dataclass, field
from types import TracebackType

from pydantic import BaseModel
from pydantic_core import to_json
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from bot.models import Reply
from bot.store.autopipe import AutoPipeline

log = logging.getLogger("bot.store")

BEGIN_LUA = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return {0, tostring(redis.call('PTTL', KEYS[1]))} end
if redis.call('EXISTS', KEYS[5]) == 1 then return {4, ''} end
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
"""KEYS: lock, session, msg, rate, tombstone of this token. ARGV: token, lock_ttl_ms, has_msg,
rate_limit (0 = none). Returns {0, pttl} locked by another holder, {4} this token was abandoned
(the caller gave up while this call sat on the wire: take nothing), {2, record} already
answered (checked before the rate limit, so a redelivery always gets its answer), {3, count}
over the per-minute limit (lock not taken), {1, session} acquired. Running it twice with the
same token is harmless (a retry after a lost reply finds its own lock and takes it again)."""

COMMIT_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5]) end
redis.call('DEL', KEYS[1])
return 1
"""
"""KEYS: lock, session, msg. ARGV: token, session_json ('' = keep no session), session_ttl,
record_json, dedupe_ttl."""

RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

ABANDON_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 0
"""
"""KEYS: lock, tombstone. A caller that gave up (deadline, stall, cancellation) does not know
whether its BEGIN ran, is still queued on a stalled server, or never arrived. This works in
every order: it deletes the lock if the BEGIN already ran, and otherwise leaves a tombstone
that makes a late BEGIN take nothing."""

ABANDON_TTL_MS = 120_000
"""How long a tombstone (and the background retries of an abandon) last: longer than a
Redis stall the bot is expected to live through."""


class LockTimeout(Exception):
    """The conversation stayed locked by a live holder longer than the store waits."""


class LockLost(Exception):
    """The lock expired before commit; another holder may have run. Nothing was written."""


class RateLimited(Exception):
    """Too many messages in this conversation this minute; ``count`` says how many
    (0: refused in this process without asking Redis, never the first one over)."""

    def __init__(self, count: int) -> None:
        super().__init__(f"rate limited ({count} this minute)")
        self.count = count


class DuplicateMessage(Exception):
    """This message id was already answered; ``replies``, ``scenario`` and ``state`` are the
    first delivery's answer (``state`` is None for records written before it was kept)."""

    def __init__(self, replies: list[Reply], scenario: str | None = None, state: str | None = None) -> None:
        super().__init__("duplicate message")
        self.replies = replies
        self.scenario = scenario
        self.state = state

    @classmethod
    def from_record(cls, payload: bytes | str) -> DuplicateMessage:
        data = json.loads(payload)
        if isinstance(data, list):  # the format before the whole answer was recorded
            return cls([Reply.model_validate(r) for r in data])
        return cls([Reply.model_validate(r) for r in data.get("replies", [])],
                   data.get("scenario"), data.get("state"))


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
    keys: list[str] = field(default_factory=list)
    """lock, session, msg (as ``SessionStore.keys``): hashed once per message, for commit."""


_encode = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(..., ensure_ascii=False)`` without building an encoder per call (same output:
the ids are hashed into key names, so it must never change)."""


def conversation_id(channel: str, user_id: str, room_id: str | None) -> str:
    """Group and private sessions are kept apart: the room (or its absence) is part of the key.

    JSON keeps the parts unambiguous: no room id (not even "dm") can collide with a private chat.
    """
    return _encode([channel, room_id, user_id])


class SessionStore:
    """All session I/O of the pipeline; one instance per process, many processes per Redis."""

    def __init__(
        self,
        redis: Redis | RedisCluster,
        *,
        prefix: str = "fanzha",
        session_ttl_s: int = 7 * 24 * 3600,
        dedupe_ttl_s: int = 24 * 3600,
        lock_ttl_ms: int = 3_000,
        lock_wait_s: float = 5.0,
        rate_per_min: int = 0,
        op_timeout_s: float = 2.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.session_ttl_s = session_ttl_s
        self.dedupe_ttl_s = dedupe_ttl_s
        self.lock_ttl_ms = lock_ttl_ms
        self.lock_wait_s = lock_wait_s
        self.rate_per_min = rate_per_min
        self.op_timeout_s = op_timeout_s
        self._local: dict[str, _LocalLock] = {}
        self._begin = redis.register_script(BEGIN_LUA)
        self._commit = redis.register_script(COMMIT_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._renew = redis.register_script(RENEW_LUA)
        self._abandon = redis.register_script(ABANDON_LUA)
        self._pipe = AutoPipeline(redis, deadline_s=op_timeout_s)  # bounds every script call
        self._background: set[asyncio.Task[None]] = set()

    @property
    def max_wait_s(self) -> float:
        """How long a waiter waits for the conversation: at least one full lease, so that a
        crashed holder's lock (never renewed again) always expires while its waiter waits."""
        return max(self.lock_wait_s, self.lock_ttl_ms / 1000 + 0.5)

    @property
    def acquire_bound_s(self) -> float:
        """Upper bound of acquiring (local queue aside): the wait plus one bounded round trip."""
        return self.max_wait_s + self.op_timeout_s

    # -- keys ---------------------------------------------------------------------------
    def tag(self, conv: str) -> str:
        """Hash tag shared by every key of one conversation (no raw ids in key names)."""
        return hashlib.blake2b(conv.encode(), digest_size=10).hexdigest()

    def keys(self, conv: str, msg_id: str | None) -> list[str]:
        base = f"{self.prefix}:{{{self.tag(conv)}}}"
        msg = hashlib.blake2b((msg_id or "").encode(), digest_size=10).hexdigest()
        return [f"{base}:lock", f"{base}:sess", f"{base}:msg:{msg}", f"{base}:rate"]

    def _tombstone(self, lock_key: str, token: str) -> str:
        return f"{lock_key.removesuffix(':lock')}:gone:{token}"

    # -- the critical section -----------------------------------------------------------
    def hold(self, conv: str, msg_id: str | None = None, *, limit: bool = True) -> _Hold:
        """Lock the conversation and load its session; release on exit unless committed.

        Raises DuplicateMessage, RateLimited (only with ``limit``) or LockTimeout before
        yielding. Every Redis wait in here is bounded. While held, the lock is renewed every
        third of its lease, so a slow holder keeps it and a crashed one loses it soon.
        """
        return _Hold(self, conv, msg_id, self.rate_per_min if limit else 0)

    async def _enter_local(self, conv: str, cap: int) -> _LocalLock:
        """FIFO in-process lock; the map entry is dropped when nobody uses it (no leak).

        ``cap`` bounds the queue: a message that finds more than ``cap`` others of its
        conversation already here could not pass the per-minute limit anyway, so it is
        refused at once instead of queueing (and delaying the ones that can be answered).
        The wait for the local lock is bounded too: each message ahead holds it for at
        most one acquire plus one bounded section.
        """
        entry = self._local.get(conv)
        if entry is None:
            entry = self._local[conv] = _LocalLock()
        if cap and entry.users > cap:
            raise RateLimited(0)
        entry.users += 1
        try:
            ahead = entry.users
            if ahead == 1:  # nobody else holds or awaits this lock: acquire() cannot wait, so no
                await entry.lock.acquire()  # timer is armed
            else:
                try:
                    async with asyncio.timeout(ahead * (self.acquire_bound_s + self.op_timeout_s * 2)):
                        await entry.lock.acquire()
                except TimeoutError:
                    raise LockTimeout("too many messages of this conversation ahead") from None
        except BaseException:
            self._leave_local(conv, entry, locked=False)
            raise
        return entry

    def _leave_local(self, conv: str, entry: _LocalLock, locked: bool = True) -> None:
        if locked:
            entry.lock.release()
        entry.users -= 1
        if entry.users == 0:
            self._local.pop(conv, None)

    async def _acquire(self, conv: str, msg_id: str | None, rate_per_min: int) -> Held:
        keys = self.keys(conv, msg_id)
        token = secrets.token_hex(8)
        keys.append(self._tombstone(keys[0], token))
        deadline = time.monotonic() + self.max_wait_s
        delay = 0.002
        while True:
            try:  # bounded by the auto-pipeline's deadline (op_timeout_s)
                code, payload = await self._pipe.run(
                    self._begin, keys, [token, self.lock_ttl_ms, "1" if msg_id else "0", rate_per_min]
                )
            except BaseException:
                # The BEGIN may still run later (a stalled server executes what sat on the
                # wire when it resumes): make sure it cannot leave a lock nobody releases.
                self._abandon_later(conv, token)
                raise
            code = int(code)
            if code == 1:
                raw = payload.decode() if isinstance(payload, bytes) else str(payload)
                return Held(conv=conv, token=token, msg_id=msg_id, raw=raw, keys=keys[:3])
            if code == 2:
                raise DuplicateMessage.from_record(payload)
            if code == 3:
                raise RateLimited(int(payload))
            if code == 4:  # only possible after a retry of an abandoned token: a fresh start
                raise LockLost("abandoned token")
            now = time.monotonic()
            if now >= deadline:
                raise LockTimeout(f"conversation locked for more than {self.max_wait_s:.1f}s")
            await asyncio.sleep(min(delay, max(deadline - now, 0.001)))
            delay = min(delay * 2, 0.05)

    async def _release_bounded(self, conv: str, token: str) -> None:
        try:  # bounded by the auto-pipeline's deadline
            await self._pipe.run(self._release, self.keys(conv, None)[:1], [token])
        except Exception:  # a failed release is retried in the background
            self._abandon_later(conv, token)

    def _abandon_later(self, conv: str, token: str) -> None:
        """Release ``token``'s lock in the background, whatever happened to its BEGIN."""
        lock_key = self.keys(conv, None)[0]
        task = asyncio.get_running_loop().create_task(self._abandon_until_done(lock_key, token))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _abandon_until_done(self, lock_key: str, token: str) -> None:
        keys = [lock_key, self._tombstone(lock_key, token)]
        give_up = time.monotonic() + ABANDON_TTL_MS / 1000
        delay = 0.05
        while True:
            try:
                async with asyncio.timeout(self.op_timeout_s):
                    await self._abandon(keys=keys, args=[token, ABANDON_TTL_MS])
                return
            except Exception as exc:  # retried until Redis answers
                if time.monotonic() > give_up:
                    log.warning("lock release abandoned", extra={"error": type(exc).__name__})
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def renew(self, held: Held) -> bool:
        """Extend the lease of a held lock; False when it is no longer ours."""
        ok = await self._pipe.run(self._renew, self.keys(held.conv, None)[:1], [held.token, self.lock_ttl_ms])
        return bool(int(ok))

    async def commit(
        self,
        held: Held,
        session: BaseModel | None,
        replies: list[Reply],
        *,
        scenario: str | None = None,
        state: str | None = None,
    ) -> None:
        """Save the session (sliding TTL; None: none to keep, as for a group member), remember
        the whole answer for the msg id, unlock."""
        keys = held.keys or self.keys(held.conv, held.msg_id)[:3]
        # UTF-8 JSON bytes straight from pydantic's serializer (one call in Rust; json.dumps
        # and a model_dump per reply cost ≈ 5 % of a message's CPU); the same content as
        # json.dumps(..., ensure_ascii=False) without the spaces, read back by json.loads
        record: bytes | str = ""
        if held.msg_id:
            record = to_json({"replies": replies, "scenario": scenario, "state": state})
        ok = await self._pipe.run(
            self._commit,
            keys,
            [held.token, to_json(session) if session is not None else "", self.session_ttl_s, record,
             self.dedupe_ttl_s],
        )
        held.token = ""
        if not int(ok):
            raise LockLost("lock expired before commit; the step ran too long")

    async def peek(self, conv: str) -> str | None:
        """Read a session without locking (diagnostics and tests only)."""
        raw = await self.redis.get(self.keys(conv, None)[1])
        return raw.decode() if isinstance(raw, bytes) else raw

    async def drain(self, timeout_s: float = 3.0) -> None:
        """Wait (bounded) for background lock releases; called at shutdown."""
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout_s)

    @property
    def local_lock_count(self) -> int:
        """Conversations with an in-process lock entry right now (should return to 0)."""
        return len(self._local)


class _Hold:
    """``SessionStore.hold`` as a plain async context manager (a generator-based one costs
    about four times as much to enter and leave, twice a message). In order: the in-process
    lock, the Redis lock with the session, the lease renewal; undone in reverse on exit."""

    __slots__ = ("store", "conv", "msg_id", "rate", "entry", "held", "renewal")

    def __init__(self, store: SessionStore, conv: str, msg_id: str | None, rate: int) -> None:
        self.store = store
        self.conv = conv
        self.msg_id = msg_id
        self.rate = rate

    async def __aenter__(self) -> Held:
        store = self.store
        self.entry = await store._enter_local(self.conv, self.rate + 1 if self.rate else 0)
        try:
            self.held = await store._acquire(self.conv, self.msg_id, self.rate)
        except BaseException:
            store._leave_local(self.conv, self.entry)
            raise
        self.renewal = _Renewal(store, self.held)
        return self.held

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        store, held = self.store, self.held
        try:
            self.renewal.stop()
            if held.token:
                if exc is not None and isinstance(exc, asyncio.CancelledError | TimeoutError | RedisError | OSError):
                    store._abandon_later(self.conv, held.token)  # do not wait on a failing Redis
                else:
                    await store._release_bounded(self.conv, held.token)
        finally:
            store._leave_local(self.conv, self.entry)


class _Renewal:
    """Renews a held lock every third of its lease, but only if the section lasts that long:
    a timer, not a task, so the usual millisecond turn pays nothing."""

    def __init__(self, store: SessionStore, held: Held) -> None:
        self.store = store
        self.held = held
        self.interval = store.lock_ttl_ms / 3000
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(self.interval, self._fire)
        self._task: asyncio.Task[None] | None = None

    def _fire(self) -> None:
        self._timer = None
        self._task = self._loop.create_task(self._renew())

    async def _renew(self) -> None:
        try:
            ok = await self.store.renew(self.held) if self.held.token else False
        except Exception:  # commit will notice a lost lock
            ok = True  # keep trying while the section lives: the next renewal may get through
        self._task = None
        if ok and self.held.token:
            self._timer = self._loop.call_later(self.interval, self._fire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
