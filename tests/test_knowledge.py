"""The knowledge base: valid, cited only from the brief, and the brief's traps avoided."""

from __future__ import annotations

import re

import pytest

from knowledge import external
from knowledge.loader import MAX_SCREEN_CHARS, all_templates, problems
from knowledge.render import render
from knowledge.schema import KnowledgeBase, Status
from tests.helpers import shared_file


def brief_text() -> str:
    return shared_file(external.brief_path()).read_text(encoding="utf-8")


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


def _with_law(kb: KnowledgeBase, law_id: str, **changes: object) -> KnowledgeBase:
    law = kb.laws[law_id].model_copy(update=changes)
    return kb.model_copy(update={"laws": {**kb.laws, law_id: law}})


def _with_hotline(kb: KnowledgeBase, hotline_id: str, **changes: object) -> KnowledgeBase:
    line = kb.hotlines[hotline_id].model_copy(update=changes)
    return kb.model_copy(update={"hotlines": {**kb.hotlines, hotline_id: line}})


def test_real_kb_passes_the_strict_brief_check(kb: KnowledgeBase) -> None:
    from knowledge.loader import _against_brief

    assert _against_brief(kb, brief_text()) == []
    assert problems(kb, brief_text()) == []


@pytest.mark.parametrize(
    "law_id,changes",
    [
        ("adfl_20", {"article": "第三十二条"}),  # stop-payment text relabelled as article 32
        ("adfl_32", {"article": "第二十条", "paragraph": None}),
        ("adfl_32", {"paragraph": "第二款"}),  # right article, wrong paragraph
        ("adfl_27", {"paragraph": None}),  # only 第二款 is quoted, so it cannot be the whole article
        ("xf_191", {"paragraph": None}),  # first paragraph passed off as the whole article
        ("mfd_1034", {"article": "第一千零三十七条"}),
    ],
)
def test_check_catches_a_relabelled_article(kb: KnowledgeBase, law_id: str, changes: dict[str, object]) -> None:
    found = problems(_with_law(kb, law_id, **changes), brief_text())
    assert any(p.startswith(f"laws.{law_id}:") and "quotes this text" in p for p in found), found


def test_check_catches_a_law_text_filed_under_the_wrong_article(kb: KnowledgeBase) -> None:
    # The text of 第一千零三十七条 filed under 第一千零三十四条: verbatim, but not that article.
    swapped = _with_law(kb, "mfd_1034", text=kb.laws["mfd_1037"].text)
    found = problems(swapped, brief_text())
    assert any(p.startswith("laws.mfd_1034:") and "第一千零三十七条" in p for p in found), found
    # A verbatim fragment of a paragraph is not a whole article either.
    fragment = _with_law(kb, "adfl_31", text=kb.laws["adfl_31"].text.split("\n")[0][:40])
    assert any(p.startswith("laws.adfl_31:") for p in problems(fragment, brief_text()))


@pytest.mark.parametrize("number", ["1100", "2016", "01012321", "010-12321", "1101", "96111", "11"])
def test_check_catches_a_fake_hotline_number(kb: KnowledgeBase, number: str) -> None:
    found = problems(_with_hotline(kb, "110", number=number), brief_text())
    assert any(p.startswith("hotlines.110:") and number in p for p in found), found


def test_check_catches_a_fake_channel_name(kb: KnowledgeBase) -> None:
    fake = _with_hotline(kb, "weixin110", number="微信安全中心 weixin110.qq.cn")
    assert any(p.startswith("hotlines.weixin110:") for p in problems(fake, brief_text()))


@pytest.mark.parametrize(
    "hotline_id,status",
    [
        ("95017", Status.verified),  # 🟡 in the brief
        ("weixin110", Status.verified),  # 🟡
        ("12315", Status.partial),  # ❌
        ("12315", Status.verified),  # ❌
    ],
)
def test_check_catches_a_hotline_more_certain_than_the_brief(
    kb: KnowledgeBase, hotline_id: str, status: Status
) -> None:
    found = problems(_with_hotline(kb, hotline_id, status=status), brief_text())
    assert any(p.startswith(f"hotlines.{hotline_id}:") and "more certain" in p for p in found), found


def test_hotline_status_may_be_less_certain_than_the_brief(kb: KnowledgeBase) -> None:
    from knowledge.loader import _against_brief

    assert _against_brief(_with_hotline(kb, "110", status=Status.partial), brief_text()) == []


def test_12381_status_comes_from_its_sms_row_not_its_phone_row(kb: KnowledgeBase) -> None:
    from knowledge.loader import _against_brief

    # The brief has 12381（短信）✅ and 12381（电话）🟡: the SMS system may stay verified …
    assert not _against_brief(kb, brief_text())
    # … but the same number described as the phone line may not.
    phone = _with_hotline(kb, "12381", name="工信部公共服务电话", owner="工业和信息化部")
    found = _against_brief(phone, brief_text())
    assert any(p.startswith("hotlines.12381:") and "more certain" in p for p in found), found


def test_brief_quotes_attach_article_numbers_from_all_three_forms() -> None:
    from knowledge.loader import _brief_quotes

    quotes = dict(_brief_quotes(brief_text()))
    # Opening article number.
    assert quotes["第二十条第一款"].startswith("国务院公安部门")
    # A "（以上为…）" note after the quote.
    assert quotes["第三十二条第三款"].startswith("依据本法第十一条")
    assert quotes["第一百一十条第二款"].startswith("被害人对侵犯")
    # A bold heading before the quote (here agreeing with the quote's own opening).
    assert quotes["第一千零三十四条第一款"] == "自然人的个人信息受法律保护。"


def test_brief_quotes_reject_a_contradicting_heading() -> None:
    from knowledge.loader import _brief_quotes

    brief = "**第七条（某法）：**\n\n> 第八条 某某内容。\n\n> 另一段。\n\n（以上为第九条第二款）\n"
    assert _brief_quotes(brief) == [("第九条第二款", "另一段。")]


def test_the_web_page_never_offers_to_call_a_send_only_number(kb: KnowledgeBase) -> None:
    """12381 only sends warning SMS and the bot says not to call it back: it must not become a
    tel: link, while the numbers people do call stay linked."""
    from bot.webchat import page_data

    phones = set(page_data(kb)["phones"])
    assert "12381" not in phones
    assert {"110", "96110", "12348"} <= phones
    assert all(h.dialable for h in kb.hotlines.values() if h.number in phones)
