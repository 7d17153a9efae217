"""``python -m bot chat``: the same pipeline, talked to from a terminal."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import TextIO

from bot.models import IncomingMessage
from bot.pipeline import Pipeline

PROMPT = "你> "
GREETING = "你好"
"""Sent for the user at start, so the bot opens with its menu as the web page does."""


async def run_console(pipeline: Pipeline, stdin: TextIO, stdout: TextIO, user_id: str = "console") -> None:
    """Greet with the menu, then read lines until EOF (or 退出/exit) and print the bot's replies."""
    run = uuid.uuid4().hex[:12]  # message ids must not repeat across runs (dedupe is persistent)
    counter = itertools.count(1)
    stdout.write("反诈助手（终端模式）。输入 退出 结束。\n")

    async def say(text: str) -> None:
        msg = IncomingMessage(channel="console", user_id=user_id, text=text, msg_id=f"console-{run}-{next(counter)}")
        outcome = await pipeline.handle(msg)
        for reply in outcome.replies:
            stdout.write("\n助手> " + reply.text.replace("\n", "\n      ") + "\n")
        stdout.write("\n")

    await say(GREETING)
    while True:
        stdout.write(PROMPT)
        stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line or line.strip().lower() in {"退出", "exit", "quit"}:
            stdout.write("\n")
            return
        await say(line.rstrip("\n"))
