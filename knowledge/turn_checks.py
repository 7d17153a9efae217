"""kb-check rules for the turn model's data: qa.yaml, moves.yaml and turns.yaml.

Kept apart from ``knowledge.checks`` (which owns the scenario rules) so the two can change
independently; ``knowledge.checks`` calls ``turn_problems`` and ``knowledge.templates`` yields
``turn_templates`` with the rest, so every Q&A answer and countermeasure passes the same
screen-length, hand-written-number and unverified-item checks as every other text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from knowledge.render import REF_RE, VAR_RE
from knowledge.schema import KnowledgeBase

TURN_TEXTS: dict[str, frozenset[str]] = {
    key: frozenset(variables.split())
    for key, variables in {
        "calm": "", "self_blame": "", "thanks_close": "left", "bye_close": "left", "greeting_midflow": "title",
        "unclear_midflow": "title", "law_plain": "citations", "urgent_already": "labels",
        "left_none": "", "left_some": "remaining", "close_police": "", "relief": "", "emotion_start": "", "qa_also": "options", "live_generic": "", "live_victim": "", "live_after": "", "amount_big_reported": "amount", "amount_small_reported": "amount",
        "amount_huge": "amount", "amount_huge_reported": "amount", "progress_ack_short": "labels",
        "off_topic_midflow": "title",
    }.items()
}
"""texts.yaml keys the turn model uses, with the variables each may contain."""

QA_ALLOWED_REFS = frozenset({"law", "hotline", "proc"})


def turn_templates(kb: KnowledgeBase) -> Iterator[tuple[str, str, bool]]:
    """(where, template, is_one_message) for every Q&A answer and countermeasure."""
    for q in kb.qa.values():
        yield f"qa.{q.id}.answer", q.answer, True
        for sid, text in q.by_scenario.items():
            yield f"qa.{q.id}.by_scenario.{sid}", text, True
    for m in kb.moves.values():
        yield f"moves.{m.id}.answer", m.answer, True
        yield f"moves.{m.id}.after", m.after, True


def turn_problems(kb: KnowledgeBase) -> list[str]:
    out: list[str] = []
    for key, allowed in TURN_TEXTS.items():
        if kb.words is None:
            break
        if key not in kb.texts:
            out.append(f"texts.{key}: missing")
            continue
        extra = set(VAR_RE.findall(REF_RE.sub("", kb.texts[key]))) - allowed
        if extra:
            out.append(f"texts.{key}: unknown variable(s) {sorted(extra)}; allowed {sorted(allowed)}")
    for where, template, _ in turn_templates(kb):
        kinds = {m.group(1) for m in REF_RE.finditer(template)}
        if kinds - QA_ALLOWED_REFS:
            out.append(f"{where}: only {{law:}}, {{hotline:}} and {{proc:}} references are allowed")
        if VAR_RE.search(REF_RE.sub("", template)):
            out.append(f"{where}: template variables are not allowed here")
    seen: dict[str, str] = {}
    for q in kb.qa.values():
        for p in q.paraphrases:
            if p in seen and seen[p] != q.id:
                out.append(f"qa.{q.id}: paraphrase {p!r} also belongs to qa.{seen[p]}")
            seen[p] = q.id
    for m in kb.moves.values():
        for rx in m.triggers:
            out += _bad_regex(f"moves.{m.id}", rx)
    if kb.words is not None:
        w = kb.words
        for name in ("emotion_cues", "question_cues", "quote_cues", "negation_cues", "closing_cues",
                     "police_visit_cues"):
            for rx in getattr(w, name):
                out += _bad_regex(f"turns.{name}", rx)
        for sid, flag in w.urgent_done.items():
            if flag not in kb.flags:
                out.append(f"turns.urgent_done.{sid}: unknown flag {flag!r}")
    return out


def _bad_regex(where: str, rx: str) -> list[str]:
    try:
        re.compile(rx)
    except re.error as exc:
        return [f"{where}: bad regex {rx!r}: {exc}"]
    return []
