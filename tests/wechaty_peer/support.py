"""Small helpers shared by the WeChat channel's test modules."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bot.channels.wechaty import WechatySettings


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``cond`` until it is true, or fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def fast_settings(endpoint: str, token: str = "test-token", **overrides: Any) -> WechatySettings:
    """Settings for tests: no pacing, short backoffs, no .env file."""
    values: dict[str, Any] = dict(
        endpoint=endpoint, token=token, send_interval_room=0.0, send_interval_global=0.0,
        send_retry_backoff=0.05, reconnect_backoff=0.05, reconnect_backoff_max=0.2, history_skew=2.0,
        rpc_timeout=5.0,
    )
    values.update(overrides)
    return WechatySettings(_env_file=None, **values)  # type: ignore[call-arg]
