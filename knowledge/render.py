"""Turn knowledge templates into the text a user reads.

Templates never spell out a phone number, an article number or a menu path: they write
``{hotline:95017}``, ``{law:adfl_31}``, ``{proc:freeze_account}`` (the menu path),
``{howto:freeze_account}`` (the path and its detail) or ``{pattern:id}`` and this module
expands the reference from its registry, adding the hedge that a 🟡 item needs.
Plain ``{name}`` fields are filled from keyword arguments (amounts, titles, lists).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from knowledge.schema import MAX_SCREEN_CHARS as MAX_SCREEN_CHARS  # re-exported: callers import it here
from knowledge.schema import KnowledgeBase, Status

REF_RE = re.compile(r"\{(law|hotline|proc|howto|pattern):([A-Za-z0-9_.\-]+)\}")
VAR_RE = re.compile(r"\{([a-z_]+)\}")

HEDGE_KEYS = {"hotline": "hedge_hotline", "proc": "hedge_proc", "law": "hedge_law"}
"""texts.yaml keys of the hedge a 🟡 item of each kind carries wherever it is shown."""

CITATION_RE = re.compile(r"《[^》]*(?:法|典|解释|意见)[^》]*》|两高")
"""What a rendered text looks like when it gives legal information: a statute or judicial
interpretation named in 《》 (every ``{law:}`` citation renders so), or the 两高(一部) documents
the amount notes rely on. Such a text must be followed by the not-legal-advice line."""


class RenderError(KeyError):
    """A template names a registry id or a variable that does not exist."""


def law_citation(kb: KnowledgeBase, law_id: str) -> str:
    """Short citation such as 《反电信网络诈骗法》第三十一条第一款."""
    law = kb.laws[law_id]
    cite = f"{law.short}{law.article}{law.paragraph or ''}"
    if law.status is Status.partial:
        cite += hedge(kb, "law")
    return cite


def hedge(kb: KnowledgeBase, kind: str) -> str:
    return kb.texts[HEDGE_KEYS[kind]]


def hotline_number(kb: KnowledgeBase, hotline_id: str) -> str:
    """The number as users see it: with its hedge when the brief marks it 🟡."""
    line = kb.hotlines[hotline_id]
    return line.number + (hedge(kb, "hotline") if line.status is Status.partial else "")


def _expand_ref(kb: KnowledgeBase, kind: str, ref_id: str) -> str:
    try:
        if kind == "law":
            return law_citation(kb, ref_id)
        if kind == "hotline":
            return hotline_number(kb, ref_id)
        if kind in ("proc", "howto"):
            proc = kb.procedures[ref_id]
            shown = proc.path + (hedge(kb, "proc") if proc.status is Status.partial else "")
            if kind == "howto" and proc.detail:  # the path and how to get through it
                shown += "\n" + REF_RE.sub(lambda m: _expand_ref(kb, m.group(1), m.group(2)), proc.detail)
            return shown
        return kb.patterns[ref_id].name
    except KeyError as exc:
        raise RenderError(f"unknown {kind} id {ref_id!r}") from exc


_EXPANDED: dict[str, tuple[KnowledgeBase, str]] = {}
"""template → (the knowledge base it was expanded for, the template with its references
expanded). The expansion depends on nothing else, the knowledge base is frozen and loaded
once, and a dialog step renders the same few templates again and again (the legal note alone
on most replies: ≈ 10 µs a time). A different knowledge base object (the tests build
variants) misses and takes the entry over."""
_EXPANDED_MAX = 4096
"""Templates are the knowledge base's own, a few hundred; the bound only keeps the cache from
growing should a caller ever render built strings."""


def _expand_refs(kb: KnowledgeBase, template: str) -> str:
    hit = _EXPANDED.get(template)
    if hit is not None and hit[0] is kb:
        return hit[1]
    text = REF_RE.sub(lambda m: _expand_ref(kb, m.group(1), m.group(2)), template)
    if len(_EXPANDED) >= _EXPANDED_MAX:
        _EXPANDED.clear()
    _EXPANDED[template] = (kb, text)
    return text


def render(kb: KnowledgeBase, template: str, variables: Mapping[str, object] | None = None) -> str:
    """Expand registry references, then ``{name}`` variables, in one template."""
    text = _expand_refs(kb, template)
    if "{" not in text:
        return text
    values = variables or {}

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise RenderError(f"template variable {{{name}}} has no value")
        return str(values[name])

    return VAR_RE.sub(fill, text)


def render_text(kb: KnowledgeBase, key: str, **variables: object) -> str:
    """One texts.yaml template, rendered: every sentence the code says goes through here."""
    return render(kb, kb.texts[key], variables)


def kinds_text(kb: KnowledgeBase, kinds: list[str]) -> str:
    """'验证码、密码' for the kinds of personal data that redaction found."""
    return "、".join(render_text(kb, f"kind_{k}") for k in kinds)


def cites_law(text: str) -> bool:
    """Does this rendered text give legal information (see ``CITATION_RE``)?"""
    return CITATION_RE.search(text) is not None


def with_legal_note(kb: KnowledgeBase, replies: list[str]) -> list[str]:
    """The messages, with the not-legal-advice line right after the last one that cites law.

    Every rendering path (private dialog, group answers and warnings, weekly tips) passes its
    outgoing messages through here, so no law citation reaches a user without the 12348 line.
    The note joins the citing message when both fit one screen, else it follows on its own.
    """
    note = render_text(kb, "legal_note")
    citing = [i for i, text in enumerate(replies) if cites_law(text.replace(note, ""))]
    if not citing:
        return replies
    last = citing[-1]
    tail = replies[last]
    if tail.endswith(note) or any(note in later for later in replies[last + 1:]):
        return replies
    if len(tail) + 1 + len(note) <= MAX_SCREEN_CHARS:
        return [*replies[:last], tail + "\n" + note, *replies[last + 1:]]
    return [*replies[:last + 1], note, *replies[last + 1:]]


def referenced_ids(template: str) -> list[tuple[str, str]]:
    """All (kind, id) references in a template, for the loader's cross-checks."""
    return [(m.group(1), m.group(2)) for m in REF_RE.finditer(template)]
