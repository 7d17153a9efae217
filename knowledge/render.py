"""Turn knowledge templates into the text a user reads.

Templates never spell out a phone number, an article number or a menu path: they write
``{hotline:95017}``, ``{law:adfl_31}``, ``{proc:freeze_account}`` or ``{pattern:id}`` and
this module expands the reference from its registry, adding the hedge that a 🟡 item needs.
Plain ``{name}`` fields are filled from keyword arguments (amounts, titles, lists).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from knowledge.schema import KnowledgeBase, Status

REF_RE = re.compile(r"\{(law|hotline|proc|pattern):([A-Za-z0-9_.\-]+)\}")
VAR_RE = re.compile(r"\{([a-z_]+)\}")

PARTIAL_HOTLINE_HEDGE = "（以官方公布为准）"
PARTIAL_PROC_HEDGE = "（菜单名称可能随版本变化，以App内为准）"
PARTIAL_LAW_HEDGE = "（据公开资料，以官方文本为准）"


class RenderError(KeyError):
    """A template names a registry id or a variable that does not exist."""


def law_citation(kb: KnowledgeBase, law_id: str) -> str:
    """Short citation such as 《反电信网络诈骗法》第三十一条第一款."""
    law = kb.laws[law_id]
    cite = f"{law.short}{law.article}{law.paragraph or ''}"
    if law.status is Status.partial:
        cite += PARTIAL_LAW_HEDGE
    return cite


def _expand_ref(kb: KnowledgeBase, kind: str, ref_id: str) -> str:
    try:
        if kind == "law":
            return law_citation(kb, ref_id)
        if kind == "hotline":
            line = kb.hotlines[ref_id]
            return line.number + (PARTIAL_HOTLINE_HEDGE if line.status is Status.partial else "")
        if kind == "proc":
            proc = kb.procedures[ref_id]
            return proc.path + (PARTIAL_PROC_HEDGE if proc.status is Status.partial else "")
        return kb.patterns[ref_id].name
    except KeyError as exc:
        raise RenderError(f"unknown {kind} id {ref_id!r}") from exc


def render(kb: KnowledgeBase, template: str, variables: Mapping[str, object] | None = None) -> str:
    """Expand registry references, then ``{name}`` variables, in one template."""
    text = REF_RE.sub(lambda m: _expand_ref(kb, m.group(1), m.group(2)), template)
    if "{" not in text:
        return text
    values = variables or {}

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in values:
            raise RenderError(f"template variable {{{name}}} has no value")
        return str(values[name])

    return VAR_RE.sub(fill, text)


def referenced_ids(template: str) -> list[tuple[str, str]]:
    """All (kind, id) references in a template, for the loader's cross-checks."""
    return [(m.group(1), m.group(2)) for m in REF_RE.finditer(template)]
