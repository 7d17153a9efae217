"""Pure helpers with no I/O: reply splitting, ``@name`` detection, timestamps, log-safe ids.

Pure so they can be property-tested on their own, and shared by the link (timestamps) and the
channel (everything else) without either depending on the other.
"""

from __future__ import annotations

import functools
import hashlib
import re
import traceback
from collections.abc import Iterable

_BOUNDARIES = ("\n\n", "\n", "。", "！", "？", "；", "!", "?", ";", "，", ",", "、", " ")


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into chunks of at most ``limit`` characters at natural boundaries.

    Prefers a blank line, then a newline, then 。 (kept with its sentence), then other
    punctuation, then a space, as long as the chunk stays at least 30% full; otherwise the
    latest boundary of any kind; cuts hard only when the window has no boundary at all.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    text = text.strip()
    chunks: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = best = 0
        for sep in _BOUNDARIES:
            idx = window.rfind(sep)
            if idx <= 0:
                continue
            end = idx + len(sep)
            if end >= limit * 0.3:
                cut = end
                break
            best = max(best, end)
        if cut <= 0:
            cut = best or limit
        chunk = text[:cut].strip()
        if chunk:
            chunks.append(chunk)
        text = text[cut:].strip()
    if text:
        chunks.append(text)
    return chunks


@functools.lru_cache(maxsize=256)
def _mention_re(name: str) -> re.Pattern[str]:
    return re.compile("@" + re.escape(name) + r"(?:[\u2005\u0020]|$)")


def mentions_name(text: str, names: Iterable[str | None]) -> bool:
    """True when ``text`` has ``@<name>`` followed by U+2005, a space or the end of the text."""
    return any(name and _mention_re(name).search(text) for name in names)


def to_seconds(ts: float | int | None) -> float:
    """Gateway timestamps are milliseconds (TypeScript servers) or seconds (some puppets)."""
    if not ts:
        return 0.0
    ts = float(ts)
    return ts / 1000.0 if ts > 1e11 else ts


def tag(value: str | None) -> str:
    """Short stable hash of a contact/room id, for logs."""
    if not value:
        return "-"
    return hashlib.blake2b(value.encode(), digest_size=5).hexdigest()


def _frames(exc: BaseException) -> str:
    """Where an exception happened, without its message (which may quote user text)."""
    return "".join(traceback.format_tb(exc.__traceback__)[-6:]).rstrip()
