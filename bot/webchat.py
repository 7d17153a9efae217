"""What the web chat page needs from the knowledge base, filled into the page once at start-up.

The page (``bot/web/``) holds only UI labels; hotline numbers to link, the emergency steps, the
error texts and the ready-made messages for friends come from ``knowledge/data`` through a JSON
data block (``<script type="application/json">``: data, not code, so a strict CSP allows it).
Having them in the page means the emergency button and the error texts work with no network.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from knowledge.render import render_text
from knowledge.schema import KnowledgeBase, Status

WEB_DIR = Path(__file__).resolve().parent / "web"
PLACEHOLDER = "__PAGE_DATA__"
PAGE_TEXTS = ("web_header", "web_emergency", "web_offline", "web_error", "web_token_missing",
              "web_token_wrong", "web_notice_title", "rate_limited")
NOTICE_PREFIX = "friend_notice_"
"""``friend_notice_<scenario id>`` in texts.yaml: a message to copy, offered in that scenario."""

_PHONE = re.compile(r"\d[\d-]*\d")
_DOMAIN = re.compile(r"(?:[a-z0-9-]+\.)+(?:cn|com|net|org)\b", re.IGNORECASE)


def page_data(kb: KnowledgeBase) -> dict[str, Any]:
    """Texts, numbers to link and per-scenario notices for the page, rendered from ``kb``."""
    phones = sorted(
        {h.number for h in kb.hotlines.values()
         if h.status is not Status.unverified and h.dialable and _PHONE.fullmatch(h.number)},
        key=lambda n: (-len(n), n),
    )
    # a channel named with its address ("腾讯110 110.qq.com") is one link to that address, so
    # the "110" in its name is not taken for the police number
    sites = sorted(
        ({"text": h.number, "url": "https://" + m.group(0)} for h in kb.hotlines.values()
         if h.status is not Status.unverified and (m := _DOMAIN.search(h.number))),
        key=lambda s: (-len(s["text"]), s["text"]),
    )
    texts = {key: render_text(kb, key) for key in PAGE_TEXTS if key in kb.texts}
    notices = {
        key.removeprefix(NOTICE_PREFIX): render_text(kb, key)
        for key in kb.texts
        if key.startswith(NOTICE_PREFIX) and key.removeprefix(NOTICE_PREFIX) in kb.scenarios
    }
    return {"phones": phones, "sites": sites, "texts": texts, "notices": notices}


def render_index(data: dict[str, Any] | None) -> bytes:
    """index.html with ``data`` in its JSON block (``<``, ``>``, ``&`` escaped: no way out of it)."""
    blob = json.dumps(data or {}, ensure_ascii=False)
    blob = blob.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    html = (WEB_DIR / "index.html").read_text(encoding="utf-8")
    return html.replace(PLACEHOLDER, blob, 1).encode("utf-8")
