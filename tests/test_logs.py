"""Log lines: JSON, the event's own time, only whitelisted fields."""

from __future__ import annotations

import json
import logging

from bot.logs import JsonFormatter


def test_a_line_carries_the_time_the_record_was_made_and_no_stray_fields() -> None:
    record = logging.LogRecord("bot.test", logging.INFO, __file__, 1, "turn", None, None)
    record.created = 1_700_000_000.123456  # as if formatted long after it was logged
    record.conv = "abc"
    record.text = "用户的原话"  # not a safe field: must not appear
    line = json.loads(JsonFormatter().format(record))
    assert line["ts"] == 1_700_000_000.123
    assert line["event"] == "turn" and line["conv"] == "abc" and "text" not in line
