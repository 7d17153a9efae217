"""The knowledge base: valid, cited only from the brief, and the brief's traps avoided."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from knowledge.loader import MAX_SCREEN_CHARS, all_templates, problems
from knowledge.render import render
from knowledge.schema import KnowledgeBase, Status

BRIEF = Path(__file__).resolve().parents[2] / "shared" / "knowledge-brief.md"


def brief_text() -> str:
    assert BRIEF.exists(), f"knowledge brief not found at {BRIEF}: clone the repo beside shared/"
    return BRIEF.read_text(encoding="utf-8")


def test_kb_is_valid_against_the_brief(kb: KnowledgeBase) -> None:
    assert problems(kb, brief_text()) == []


def test_personal_information_is_protected_by_article_1034_not_1037(kb: KnowledgeBase) -> None:
    holders = [law for law in kb.laws.values() if "自然人的个人信息受法律保护" in law.text]
    assert holders
    assert all(law.article in ("第一千零三十四条", "第一百一十一条") for law in holders)
    for law in kb.laws.values():
        if law.article == "第一千零三十七条":
            assert "受法律保护" not in law.text


def test_account_rental_is_not_called_money_laundering(kb: KnowledgeBase) -> None:
    sc = kb.scenarios["account_rental"]
    assert {"adfl_31", "adfl_44", "xf_287_2"} <= set(sc.laws)
    texts = [render(kb, t) for where, t, _ in all_templates(kb) if where.startswith("account_rental")]
    mentions = [text for text in texts if "洗钱罪" in text]
    assert mentions, "account_rental should say plainly that renting an account is generally not 洗钱罪"
    for text in mentions:  # every message that names 洗钱罪 says it generally does not apply
        assert re.search(r"一般不|通常不|不是|不属于|不构成|并非", text), text


def test_96110_is_not_for_reporting_a_crime(kb: KnowledgeBase) -> None:
    line = kb.hotlines["96110"]
    assert line.not_for and "110" in render(kb, line.not_for)
    for sc in kb.scenarios.values():
        urgent = render(kb, sc.urgent)
        if "报警" in urgent:
            assert "110" in urgent


def test_12381_never_carries_links(kb: KnowledgeBase) -> None:
    use = render(kb, kb.hotlines["12381"].use) + (kb.hotlines["12381"].not_for or "")
    assert "链接" in use


def test_stop_payment_is_article_20_not_32(kb: KnowledgeBase) -> None:
    assert "紧急止付" in kb.laws["adfl_20"].text and kb.laws["adfl_20"].article == "第二十条"
    assert "申诉" in kb.laws["adfl_32"].text


def test_unverified_items_never_reach_a_reply(kb: KnowledgeBase) -> None:
    unverified = {h.number for h in kb.hotlines.values() if h.status is Status.unverified}
    assert unverified, "the registry should keep unverified numbers (e.g. 12315) to refuse them"
    for where, template, _ in all_templates(kb):
        text = render(kb, template, {k: "x" for k in re.findall(r"\{([a-z_]+)\}", template)})
        for num in unverified:
            assert num not in text, where


def test_every_message_fits_one_screen(kb: KnowledgeBase) -> None:
    for where, template, one_message in all_templates(kb):
        if one_message:
            text = render(kb, template, {k: "x" for k in re.findall(r"\{([a-z_]+)\}", template)})
            assert len(text) <= MAX_SCREEN_CHARS, where


def _mutated(kb: KnowledgeBase, **scenario_changes: object) -> KnowledgeBase:
    sc = kb.scenarios["wallet_loss"].model_copy(update=scenario_changes)
    return kb.model_copy(update={"scenarios": {**kb.scenarios, "wallet_loss": sc}})


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"urgent": "马上打 95017 冻结支付"}, "number written by hand"),
        ({"urgent": "依据反电信网络诈骗法第三十一条 {hotline:95017}"}, "article number written by hand"),
        ({"laws": ["no_such_law"]}, "unknown law id"),
        ({"urgent": "{hotline:95017} {hotline:12315}"}, "unverified"),
        ({"urgent": "{hotline:95017}" + "很长" * 300}, "more than one screen"),
        ({"urgent": "请冻结"}, "does not name its urgent hotline"),
    ],
)
def test_check_catches_bad_content(kb: KnowledgeBase, change: dict[str, object], expected: str) -> None:
    found = problems(_mutated(kb, **change))
    assert any(expected in p for p in found), found


def test_check_catches_a_law_text_not_in_the_brief(kb: KnowledgeBase) -> None:
    law = kb.laws["adfl_31"].model_copy(update={"text": kb.laws["adfl_31"].text.replace("出租", "出售")})
    bad = kb.model_copy(update={"laws": {**kb.laws, "adfl_31": law}})
    assert any("not verbatim" in p for p in problems(bad, brief_text()))
