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

HEDGE_KEYS = {"hotline": "hedge_hotline", "proc": "hedge_proc", "law": "hedge_law"}
"""texts.yaml keys of the hedge a 🟡 item of each kind carries wherever it is shown."""


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
        if kind == "proc":
            proc = kb.procedures[ref_id]
            return proc.path + (hedge(kb, "proc") if proc.status is Status.partial else "")
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


def render_text(kb: KnowledgeBase, key: str, **variables: object) -> str:
    """One texts.yaml template, rendered: every sentence the code says goes through here."""
    return render(kb, kb.texts[key], variables)


def kinds_text(kb: KnowledgeBase, kinds: list[str]) -> str:
    """'验证码、密码' for the kinds of personal data that redaction found."""
    return "、".join(render_text(kb, f"kind_{k}") for k in kinds)


def referenced_ids(template: str) -> list[tuple[str, str]]:
    """All (kind, id) references in a template, for the loader's cross-checks."""
    return [(m.group(1), m.group(2)) for m in REF_RE.finditer(template)]
