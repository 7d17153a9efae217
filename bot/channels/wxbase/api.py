"""Calls to the WeChat / 企业微信 JSON APIs, with the access token cached and shared.

The access token is the one credential these APIs take on every call. Fetching a new one
invalidates older ones after a grace period and the fetch itself is rate-limited, so every
process of the bot shares one token through Redis: read it there, and only when it is missing
take a short Redis lock, re-check, fetch, and store it with an expiry well inside its
lifetime (anchors §16: no refresh stampede). A call answered with "token invalid/expired"
drops that token (only if it is still the stored one) and is tried once more with a fresh one.

Nothing here logs or raises with a URL: the token travels in the query string.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

log = logging.getLogger("bot.channels.wxapi")

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
"""invalid credential / invalid access_token / access_token expired: refresh and retry."""
RETRYABLE_ERRORS = frozenset({-1})
"""system busy: try again later."""

_DEL_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ApiError(Exception):
    """The platform refused a call (``errcode``) or could not be reached (``errcode`` None).

    ``retryable``: worth trying again later (network, 5xx, system busy). The message holds
    only the path, the code and the platform's short ``errmsg``: never the URL or the token.
    """

    def __init__(self, path: str, errcode: int | None, errmsg: str = "", *, retryable: bool) -> None:
        super().__init__(f"{path}: errcode={errcode} {errmsg[:80]}".rstrip())
        self.path = path
        self.errcode = errcode
        self.retryable = retryable


TokenFetch = Callable[["WxApi"], Awaitable[tuple[str, int]]]
"""Ask the platform for a new token: returns (token, expires_in seconds)."""


class AccessToken:
    """One access token per (platform, account), shared by all processes through Redis."""

    def __init__(self, redis: Redis | RedisCluster | None, key: str, fetch: TokenFetch, *, early_s: int = 300,
                 fail_cooldown_s: float = 5.0) -> None:
        self.redis = redis
        self.key = key
        self.fetch = fetch
        self.early_s = early_s
        self.fail_cooldown_s = fail_cooldown_s
        self._value: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._failed_until = 0.0
        self._failure: ApiError | None = None
        self.fetches = 0

    async def get(self, api: WxApi) -> str:
        if self._value is not None and time.monotonic() < self._expires:
            return self._value
        async with self._lock:  # one refresh per process at a time
            if self._value is not None and time.monotonic() < self._expires:
                return self._value
            shared = await self._shared()
            if shared is not None:
                return shared
            if self._failure is not None and time.monotonic() < self._failed_until:
                # A refused or failed fetch is not repeated for every queued send: the token
                # endpoint has a daily quota, and a wrong secret would otherwise be tried once
                # per message (a refresh storm that can use the day's quota up).
                f = self._failure
                raise ApiError(f.path, f.errcode, "token fetch failed moments ago", retryable=f.retryable)
            return await self._refresh(api)

    async def _shared(self) -> str | None:
        if self.redis is None:
            return None
        try:
            raw, ttl = await asyncio.gather(self.redis.get(self.key), self.redis.ttl(self.key))
        except (RedisError, OSError):
            return None
        if raw is None:
            return None
        value = raw.decode() if isinstance(raw, bytes) else str(raw)
        self._remember(value, int(ttl) if int(ttl) > 0 else 60)
        return value

    def _remember(self, value: str, ttl_s: int) -> None:
        self._value = value
        self._expires = time.monotonic() + max(ttl_s, 1)

    async def _refresh(self, api: WxApi) -> str:
        lock_key, lock_token = self.key + ":lock", secrets.token_hex(8)
        have_lock = False
        if self.redis is not None:
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                try:
                    have_lock = bool(await self.redis.set(lock_key, lock_token, nx=True, px=10_000))
                except (RedisError, OSError):
                    break  # Redis down: fetch on our own rather than not at all
                if have_lock:
                    break
                await asyncio.sleep(0.05)
                shared = await self._shared()  # the holder may have stored it meanwhile
                if shared is not None:
                    return shared
        try:
            if have_lock:
                shared = await self._shared()
                if shared is not None:
                    return shared
            try:
                value, expires_in = await self.fetch(api)
            except ApiError as exc:
                self._failure, self._failed_until = exc, time.monotonic() + self.fail_cooldown_s
                raise
            self._failure = None
            self.fetches += 1
            ttl = max(60, int(expires_in) - self.early_s)
            self._remember(value, ttl)
            if self.redis is not None:
                try:
                    await self.redis.set(self.key, value, ex=ttl)
                except (RedisError, OSError):
                    pass
            return value
        finally:
            if have_lock and self.redis is not None:
                try:
                    await self.redis.eval(_DEL_IF_EQUAL, 1, lock_key, lock_token)
                except (RedisError, OSError):
                    pass

    async def invalidate(self, bad: str) -> None:
        """Forget ``bad`` here and in Redis (unless another process already replaced it)."""
        if self._value == bad:
            self._value, self._expires = None, 0.0
        if self.redis is not None:
            try:
                await self.redis.eval(_DEL_IF_EQUAL, 1, self.key, bad)
            except (RedisError, OSError):
                pass


class WxApi:
    """A JSON API at ``base`` (``https://api.weixin.qq.com`` or ``https://qyapi.weixin.qq.com``)."""

    def __init__(self, base: str, *, timeout_s: float = 10.0) -> None:
        self.base = base.rstrip("/")
        self.timeout_s = timeout_s
        self.token: AccessToken | None = None
        self._session: aiohttp.ClientSession | None = None
        self.last_error: int | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, params: dict[str, str], body: Any = None) -> dict[str, Any]:
        if self._session is None:
            raise ApiError(path, None, "client closed", retryable=False)
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8"} if data is not None else None
        try:
            async with self._session.request(method, self.base + path, params=params, data=data,
                                             headers=headers) as resp:
                if resp.status >= 500:
                    raise ApiError(path, None, f"http {resp.status}", retryable=True)
                if resp.status >= 400:
                    raise ApiError(path, None, f"http {resp.status}", retryable=False)
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(path, None, type(exc).__name__, retryable=True) from None
        try:
            out = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(path, None, "not json", retryable=True) from None
        if not isinstance(out, dict):
            raise ApiError(path, None, "not an object", retryable=True)
        return out

    async def get_plain(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """A call without the access token (the token endpoints themselves)."""
        out = await self._request("GET", path, params)
        self._check(path, out)
        return out

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` with the access token; one retry with a fresh token if it went stale."""
        if self.token is None:
            raise ApiError(path, None, "no token source", retryable=False)
        for attempt in (1, 2):
            token = await self.token.get(self)
            out = await self._request("POST", path, {"access_token": token}, body)
            code = _errcode(out)
            if code in TOKEN_ERRORS and attempt == 1:
                await self.token.invalidate(token)
                continue
            self._check(path, out)
            return out
        raise AssertionError("unreachable")  # pragma: no cover

    def _check(self, path: str, out: dict[str, Any]) -> None:
        code = _errcode(out)
        if code:
            self.last_error = code
            raise ApiError(path, code, str(out.get("errmsg", "")), retryable=code in RETRYABLE_ERRORS)
        self.last_error = None


def _errcode(out: dict[str, Any]) -> int:
    try:
        return int(out.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return -1
