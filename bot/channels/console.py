"""``python -m bot chat``: the same pipeline, talked to from a terminal."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import TextIO

from bot.models import IncomingMessage
from bot.pipeline import Pipeline

PROMPT = "你> "


async def run_console(pipeline: Pipeline, stdin: TextIO, stdout: TextIO, user_id: str = "console") -> None:
    """Read lines until EOF (or 退出/exit) and print the bot's replies."""
    run = uuid.uuid4().hex[:12]  # message ids must not repeat across runs (dedupe is persistent)
    counter = itertools.count(1)
    stdout.write("反诈助手（终端模式）。输入 退出 结束。\n")
    while True:
        stdout.write(PROMPT)
        stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line or line.strip().lower() in {"退出", "exit", "quit"}:
            stdout.write("\n")
            return
        msg = IncomingMessage(channel="console", user_id=user_id, text=line.rstrip("\n"),
                              msg_id=f"console-{run}-{next(counter)}")
        outcome = await pipeline.handle(msg)
        for reply in outcome.replies:
            stdout.write("\n助手> " + reply.text.replace("\n", "\n      ") + "\n")
        stdout.write("\n")
