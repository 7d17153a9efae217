"""Structured logs: one JSON object per line, and never a user's words.

Log calls pass ids and sizes in ``extra``; this formatter copies only whitelisted fields, so
a stray ``extra={"text": ...}`` cannot put message text into the logs by accident.
"""

from __future__ import annotations

import json
import logging
import sys

SAFE_FIELDS = ("conv", "channel", "scenario", "state", "msg_id", "chars", "replies", "ms", "error",
               "where", "url", "data_dir", "host", "port", "attempt", "delay", "room", "kinds",
               "duplicate", "count", "pattern")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": round(record.created, 3),  # when it happened, not when a handler got round to it
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for name in SAFE_FIELDS:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["exc"] = self.formatException(record.exc_info)[-2000:]
        return json.dumps(out, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", json_lines: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
