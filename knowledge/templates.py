"""Every user-facing template in the knowledge base, and sample values to render them with.

One job: enumerate (where, template, is_one_message) so every rule in ``knowledge.checks``
(screen length, hand-written numbers, unverified items, the legal note) walks the same texts.
"""

from __future__ import annotations

from collections.abc import Iterator

from knowledge.schema import KnowledgeBase, Scenario
from knowledge.turn_checks import turn_templates


def scenario_templates(sc: Scenario) -> Iterator[tuple[str, str, bool]]:
    """(where, template, is_one_message) for every user-facing template of a scenario."""
    yield f"{sc.id}.urgent", sc.urgent, True
    yield f"{sc.id}.law_intro", sc.law_intro, False
    yield f"{sc.id}.group_answer", sc.group_answer, True
    if sc.closing:
        yield f"{sc.id}.closing", sc.closing, False
    for st in sc.steps:
        yield f"{sc.id}.steps.{st.id}", st.text, True
    for i, item in enumerate(sc.evidence):
        yield f"{sc.id}.evidence[{i}]", item, False
    for i, item in enumerate(sc.traps):
        yield f"{sc.id}.traps[{i}]", item, False


def all_templates(kb: KnowledgeBase) -> Iterator[tuple[str, str, bool]]:
    for sc in kb.scenarios.values():
        yield from scenario_templates(sc)
    for key, text in kb.texts.items():
        yield f"texts.{key}", text, True
    for p in kb.patterns.values():
        yield f"patterns.{p.id}.giveaway", p.giveaway, False
        yield f"patterns.{p.id}.name", p.name, False
    for h in kb.hotlines.values():
        yield f"hotlines.{h.id}.use", h.use, False
        if h.not_for:
            yield f"hotlines.{h.id}.not_for", h.not_for, False
    for proc in kb.procedures.values():
        if proc.detail:
            yield f"procedures.{proc.id}.detail", proc.detail, False
    yield from turn_templates(kb)


# Values used to render templates during checks; real values are supplied by the dialogs.
SAMPLE_VARS: dict[str, object] = {
    "title": "微信号被盗",
    "amount": "3000",
    "labels": "冻结微信帐号、报警",
    "remaining": "报警；保存证据",
    "options": "1. 微信号被盗\n2. 钱被转走",
    "name": "张三",
    "pattern": "收购/租用微信号",
    "giveaway": "正规客服不会要你转账",
    "laws": "《反电信网络诈骗法》第三十一条",
    "alerts": "3",
    "mentions": "5",
    "state": "开启",
    "what": "验证码",
    "hotlines": "110",
    "titles": "「钱被转走」",
    "left": "还剩这些没做：报警；保存证据。",
    "intro": "公安机关接到报案应当立案。",
    "citations": "《反电信网络诈骗法》第二十条、《刑法》第二百六十六条",
    "number": "010-12321",
}
