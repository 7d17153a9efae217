"""Pure helpers of the official channels: byte-limited splitting and log-safe ids."""

from __future__ import annotations

import hashlib

_BREAKS = ("\n\n", "\n", "。", "！", "？", "；", "，", " ")


def split_bytes(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` UTF-8 bytes, preferring natural breaks.

    WeChat counts message length in bytes (a Chinese character is 3), so a character limit
    would either waste space or overflow.
    """
    text = text.strip()
    out: list[str] = []
    while len(text.encode("utf-8")) > limit:
        # the longest prefix that fits, then back off to the last break in its second half
        lo, hi = 1, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(text[:mid].encode("utf-8")) <= limit:
                lo = mid
            else:
                hi = mid - 1
        window = text[:lo]
        cut = max((window.rfind(b) + len(b) for b in _BREAKS if window.rfind(b) >= lo // 2), default=lo)
        piece = text[:cut].strip()
        if piece:
            out.append(piece)
        text = text[cut:].strip()
    if text:
        out.append(text)
    return out


def tag(value: str) -> str:
    """Short stable hash of an OpenID / external_userid, for logs."""
    return hashlib.blake2b(value.encode(), digest_size=5).hexdigest()


def pack(texts: list[str], limit: int, size: int) -> tuple[list[str], int]:
    """At most ``limit`` messages of at most ``size`` bytes each, and how many pieces did not fit.

    Both platforms cap the messages one customer message may be answered with (five since
    2023), so the pieces beyond the cap are joined into the last message while it fits;
    the caller logs whatever is left over instead of letting the platform refuse it.
    """
    pieces = [p for t in texts for p in split_bytes(t, size)]
    if len(pieces) <= limit:
        return pieces, 0
    out, tail = pieces[:limit - 1], ""
    for n, piece in enumerate(pieces[limit - 1:]):
        joined = f"{tail}\n\n{piece}" if tail else piece
        if len(joined.encode("utf-8")) > size:
            return [*out, tail], len(pieces) - (limit - 1) - n
        tail = joined
    return [*out, tail], 0
