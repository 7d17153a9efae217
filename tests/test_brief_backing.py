"""Issue 11: every urgent reply complete, every sentence backed by the brief, the legal note everywhere.

The expectations here are written from ../shared/knowledge-brief.md (§8.2 order of actions,
§0/§1.7/§3/§4 citations, §8 hotline statuses), not read back from the knowledge files, so a
knowledge edit that drops an action or revives a removed sentence fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.pipeline import Pipeline
from bot.tips import WEEK_S, tip_for
from knowledge import external
from knowledge.loader import _SAMPLE_VARS, all_templates, problems
from knowledge.render import CITATION_RE, MAX_SCREEN_CHARS, cites_law, render, with_legal_note
from knowledge.scanner import Scanner
from knowledge.schema import SCENARIO_IDS, KnowledgeBase, Status

from .helpers import joined, say, shared_file, text_of

ADS = Path(__file__).resolve().parents[1] / "knowledge" / "data" / "group" / "ads.txt"


@pytest.fixture(scope="module")
def brief() -> str:
    return shared_file(external.brief_path()).read_text(encoding="utf-8")


def menu_index(sid: str) -> str:
    return str(SCENARIO_IDS.index(sid) + 1)


def freeze_path(kb: KnowledgeBase) -> str:
    return kb.procedures["freeze_account"].path


# ── 1. The first reply carries the actions brief §8.2 puts first ───────────────────────────

FIRST_REPLY_MUST: dict[str, list[str]] = {
    # §8.2: 1. 报警 110; 2. 冻结微信帐号 + 95017 + 银行; 3. 保存证据
    "wallet_loss": ["110", "<freeze>", "95017", "银行", "截图"],
    # §8.2 1–3 and 5: 110 (止付、冻结由公安机关决定), 95017 / 银行 (挂失或冻结自己的卡), 截图, 不再付, 追回
    "fraud_victim": ["110", "95017", "银行", "截图", "不再付", "追回"],
    # §8.1 冻结帐号 (identity check shown), §8.2 2 and 4, 110 also for 走账
    "account_stolen": ["<freeze>", "验证身份", "95017", "银行", "亲友", "走账", "110"],
    # §8.2 1 (reporting on its own), passwords, friends
    "info_leak": ["110", "密码", "亲友"],
    # §9.3, §1.6 帮信罪, §8 12348; tell friends
    "account_rental": ["帮助信息网络犯罪活动罪", "第二百八十七条之二", "12348", "亲友", "收回", "停止"],
}


@pytest.mark.parametrize("sid", list(FIRST_REPLY_MUST))
async def test_first_reply_contains_the_brief_8_2_actions(pipeline: Pipeline, kb: KnowledgeBase, sid: str) -> None:
    out = await say(pipeline, menu_index(sid))
    first = out.replies[0].text
    assert len(first) <= MAX_SCREEN_CHARS
    for needle in FIRST_REPLY_MUST[sid]:
        assert (freeze_path(kb) if needle == "<freeze>" else needle) in first, (sid, needle)


async def test_wallet_loss_reports_to_110_without_a_condition(pipeline: Pipeline) -> None:
    first = (await say(pipeline, menu_index("wallet_loss"))).replies[0].text
    line = next(ln for ln in first.splitlines() if "110" in ln)
    assert not re.search(r"确认|如果|若", line), line


async def test_info_leak_reporting_is_a_step_of_its_own(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    first = (await say(pipeline, menu_index("info_leak"))).replies[0].text
    line = next(ln for ln in first.splitlines() if "110" in ln)
    assert not line.lstrip("0123456789. ").startswith(("如果", "若")), line
    assert any(st.marks == "reported" and "110" in render(kb, st.text) for st in kb.scenarios["info_leak"].steps)


async def test_account_rental_does_not_send_the_owner_to_110(pipeline: Pipeline) -> None:
    out = joined(await say(pipeline, menu_index("account_rental")))
    assert "110" not in out.replace("12348", "")


@pytest.mark.parametrize("sid", ["fraud_victim", "info_leak"])
async def test_civil_route_is_offered(pipeline: Pipeline, kb: KnowledgeBase, sid: str) -> None:
    steps = "\n".join(render(kb, st.text) for st in kb.scenarios[sid].steps)
    assert "附带民事诉讼" in steps and "12348" in steps
    if sid == "info_leak":
        assert "第六十九条" in steps and "起诉" in steps and "删除" in steps


# ── 2. Sentences the brief does not support are rendered nowhere ───────────────────────────

REMOVED = [
    "不是拿帐号做坏事的人",  # a legal conclusion (account_stolen)
    "不是你的犯罪",
    "通知里一般会写明",  # not in the brief (account_frozen)
    "通知上写明的公安机关",
    "担责的是帐号的主人",  # account_rental
    "主动说明情况",
    "不会让你加微信或QQ",  # pattern texts not in the brief
    "正规贷款放款前不收",
    "正规工作也不会先让你交",
    "社保医保的正规办理",
    "确认钱被人转走了",  # wallet_loss's condition on 110
    "有人正在用你的信息借钱、贷款或转走你的钱，马上打",  # info_leak's condition on 110
    "协助朋友冻结",  # ❌ in the brief
]


def everything_rendered(kb: KnowledgeBase) -> list[tuple[str, str]]:
    """(where, text) for every template and registry text a user can be shown."""
    out = [(where, render(kb, t, _SAMPLE_VARS)) for where, t, _ in all_templates(kb)]
    out += [(f"procedures.{p.id}", render(kb, f"{{howto:{p.id}}}")) for p in kb.procedures.values()]
    return out


def test_removed_sentences_are_not_in_any_text(kb: KnowledgeBase) -> None:
    for where, text in everything_rendered(kb):
        for sentence in REMOVED:
            assert sentence not in text, (where, sentence)


def test_million_guarantee_claim_is_always_hedged(kb: KnowledgeBase) -> None:
    claims = [(w, t) for w, t in everything_rendered(kb) if "免费" in t and "百万保障" in t]
    assert claims
    for where, text in claims:
        sentence = next(s for s in re.split(r"[。；\n]", text) if "免费" in s)
        assert "据" in sentence and "以官方为准" in sentence, (where, sentence)


def test_tencent_support_is_hedged_wherever_named(kb: KnowledgeBase) -> None:
    for where, text in everything_rendered(kb):
        for m in re.finditer("腾讯客服", text):
            assert text[m.end():].startswith(kb.texts["hedge_hotline"]), (where, text)


def test_12321_is_not_called_the_personal_information_authority(kb: KnowledgeBase) -> None:
    for where, text in everything_rendered(kb):
        for sentence in re.split(r"[。；\n]", text):
            if "12321" in sentence:
                assert "履行个人信息保护职责" not in sentence or "不是" in sentence, (where, sentence)
    assert kb.hotlines["12321"].also_written == "010-12321"


async def test_no_praise_for_a_scam_check_nobody_reported(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    await say(pipeline, menu_index("scam_check"))
    outs = [joined(await say(pipeline, "下一步")) for _ in kb.scenarios["scam_check"].steps]
    end = joined(await say(pipeline, "下一步"))
    assert kb.scenarios["scam_check"].title in end
    for text in [*outs, end]:
        assert "做完了" not in text and "做得很好" not in text


async def test_theft_is_not_measured_against_the_fraud_line(pipeline: Pipeline) -> None:
    await say(pipeline, menu_index("wallet_loss"))
    out = joined(await say(pipeline, "5000"))
    assert "5000" in out and "110" in out
    assert "3000" not in out and "数额较大" not in out and "诈骗" not in out


# ── 3. Citations ────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("lid,article", [("xf_312", "第三百一十二条"), ("mfd_1195", "第一千一百九十五条"),
                                         ("pipl_65", "第六十五条")])
def test_laws_quoted_in_part_say_which_paragraph(kb: KnowledgeBase, brief: str, lid: str, article: str) -> None:
    law = kb.laws[lid]
    assert law.article == article and law.paragraph == "第一款"
    whole = kb.model_copy(update={"laws": {**kb.laws, lid: law.model_copy(update={"paragraph": None})}})
    assert any(p.startswith(f"laws.{lid}:") for p in problems(whole, brief))


def test_article_312_dates_from_amendment_6(kb: KnowledgeBase) -> None:
    assert kb.laws["xf_312"].effective == "2006-06-29"


async def test_law_command_labels_summary_and_verbatim_text_apart(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    await say(pipeline, menu_index("info_leak"))
    out = joined(await say(pipeline, "法律依据"))
    summary, verbatim = text_of(kb, "law_summary_header"), text_of(kb, "law_header")
    assert "原文" not in summary and "原文" in verbatim
    intro = render(kb, kb.scenarios["info_leak"].law_intro)
    # 法律依据: the plain-words summary with the exact citations on one screen (issue 10 §4) …
    assert out.index(summary) < out.index(intro) and verbatim not in out
    assert kb.laws["mfd_1034"].text not in out
    # … and 原文 the verbatim text, labelled as such
    text = joined(await say(pipeline, "原文"))
    assert text.index(verbatim) < text.index(kb.laws["mfd_1034"].text)


# ── 4. The legal note follows every law citation, in every rendering path ────────────────

def assert_note_follows(kb: KnowledgeBase, messages: list[str], where: str) -> None:
    note = text_of(kb, "legal_note")
    citing = [i for i, m in enumerate(messages) if cites_law(m.replace(note, ""))]
    if not citing:
        return
    last = citing[-1]
    end = [m.end() for m in CITATION_RE.finditer(messages[last])][-1]  # the note cites nothing
    after = messages[last][end:] + "\n".join(messages[last + 1 :])
    assert note in after, (where, messages)
    assert all(len(m) <= MAX_SCREEN_CHARS for m in messages), where


def assert_partial_items_hedged(kb: KnowledgeBase, messages: list[str], where: str) -> None:
    """Every 🟡 hotline number and menu path a user reads carries its hedge right after it."""
    text = "\n".join(messages)
    for h in kb.hotlines.values():
        if h.status is not Status.partial:
            continue
        for m in re.finditer(rf"(?<![\d.\-a-z]){re.escape(h.number)}(?![\d.])", text):
            assert text[m.end():].startswith(kb.texts["hedge_hotline"]), (where, h.number, text)
    for p in kb.procedures.values():
        for m in re.finditer(re.escape(p.path), text):
            assert text[m.end():].startswith(kb.texts["hedge_proc"]), (where, p.path)


@pytest.mark.parametrize("sid", SCENARIO_IDS)
async def test_legal_note_in_every_private_reply(pipeline: Pipeline, kb: KnowledgeBase, sid: str) -> None:
    seen_citation = False
    turns = [menu_index(sid)] + ["下一步"] * (len(kb.scenarios[sid].steps) + 1)
    turns += ["法律依据", "热线", "证据", "陷阱", "人工"]
    if sid in ("fraud_victim", "wallet_loss"):
        turns += ["2000", "8000"]
    for turn in turns:
        out = await say(pipeline, turn)
        texts = [r.text for r in out.replies]
        seen_citation |= any(cites_law(t) for t in texts)
        assert_note_follows(kb, texts, f"{sid}: {turn}")
        assert_partial_items_hedged(kb, texts, f"{sid}: {turn}")
    assert seen_citation or not kb.scenarios[sid].laws


async def test_legal_note_in_amount_notes(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    out = await say(pipeline, "我被骗了5000块")
    texts = [r.text for r in out.replies]
    assert any("数额较大" in t for t in texts)
    assert_note_follows(kb, texts, "amount")
    assert text_of(kb, "legal_note") in texts[-1]


async def test_legal_note_in_the_hotline_list(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    await say(pipeline, menu_index("fraud_victim"))
    texts = [r.text for r in (await say(pipeline, "热线")).replies]
    assert any("第二十条" in t for t in texts)  # 110's entry names the law behind 止付、冻结
    assert_note_follows(kb, texts, "hotlines")


@pytest.mark.parametrize("sid", [s for s in SCENARIO_IDS if s != "out_of_scope"])
async def test_legal_note_in_group_answers(pipeline: Pipeline, kb: KnowledgeBase, sid: str) -> None:
    question = kb.examples[sid][0]
    out = await say(pipeline, f"@反诈助手 {question}", user="asker", room_id=f"q{sid}@chatroom", mentioned=True)
    for reply in out.replies:
        if cites_law(reply.text):
            assert reply.text.endswith(text_of(kb, "legal_note")), reply.text
        assert len(reply.text) <= MAX_SCREEN_CHARS


async def test_rental_group_answer_carries_the_note(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    out = await say(pipeline, "@反诈助手 有人要租我的微信号，一天给50", user="a", room_id="r@chatroom", mentioned=True)
    text = joined(out)
    assert "第三十一条" in text and text.endswith(text_of(kb, "legal_note"))


def ads_by_pattern(scanner: Scanner) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in ADS.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#") or "\t" not in line:
            continue
        _, message = line.split("\t", 1)
        result = scanner.scan(message)
        if result.alert and result.pattern and result.pattern not in found:
            found[result.pattern] = message
    return found


async def test_legal_note_in_every_group_warning(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    ads = ads_by_pattern(Scanner.from_kb(kb))
    assert len(ads) >= 8
    for pid, message in ads.items():
        out = await say(pipeline, message, user="spammer", user_name="某某某某某某某某", room_id=f"{pid}@chatroom")
        assert out.replies, pid
        text = out.replies[0].text
        if kb.patterns[pid].laws:
            assert cites_law(text) and text.endswith(text_of(kb, "legal_note")), (pid, text)
        else:  # the brief supports no law for it (scanner v2): the warning cites none
            assert not cites_law(text) and text_of(kb, "legal_note") not in text, (pid, text)
        assert len(text) <= MAX_SCREEN_CHARS


def test_legal_note_in_weekly_tips(kb: KnowledgeBase) -> None:
    tips = {tip_for(kb, week * WEEK_S) for week in range(len([k for k in kb.texts if k.startswith("tip_")]))}
    citing = [t for t in tips if cites_law(t.replace(text_of(kb, "legal_note"), ""))]
    assert citing  # tip_4 names the law on renting accounts
    for tip in citing:
        assert tip.endswith(text_of(kb, "legal_note")) and len(tip) <= MAX_SCREEN_CHARS


def test_with_legal_note_places_it_after_the_last_citation(kb: KnowledgeBase) -> None:
    note = text_of(kb, "legal_note")
    cite = render(kb, "见{law:adfl_31}。")
    assert with_legal_note(kb, ["你好"]) == ["你好"]
    assert with_legal_note(kb, [cite, "下一条"]) == [cite + "\n" + note, "下一条"]
    long = cite + "字" * (MAX_SCREEN_CHARS - len(cite))
    assert with_legal_note(kb, [long]) == [long, note]
    assert with_legal_note(kb, [cite + "\n" + note]) == [cite + "\n" + note]


# ── 5. Procedure detail reaches the user ───────────────────────────────────────────────────

@pytest.mark.parametrize("question", ["微信号被盗了怎么冻结", "我的微信被别人登录了"])
async def test_asking_how_to_freeze_gets_the_identity_check(pipeline: Pipeline, kb: KnowledgeBase, question: str) -> None:
    out = joined(await say(pipeline, question))
    assert freeze_path(kb) in out
    assert (kb.procedures["freeze_account"].detail or "<no detail>") in out  # 输入微信号…验证身份
    assert "腾讯客服" in out  # the lost-phone route's detail


# ── 6. kb check enforces it ────────────────────────────────────────────────────────────────

def test_kb_check_refuses_an_urgent_reply_without_its_actions(kb: KnowledgeBase) -> None:
    sc = kb.scenarios["wallet_loss"]
    cut = sc.model_copy(update={"urgent": sc.urgent.replace("{proc:freeze_account}", "微信里的设置")})
    broken = kb.model_copy(update={"scenarios": {**kb.scenarios, "wallet_loss": cut}})
    assert "wallet_loss.urgent: lacks urgent_must action 'freeze_account' ({proc:freeze_account})" in problems(broken)
    for sid in ("wallet_loss", "fraud_victim", "account_stolen", "info_leak", "account_rental"):
        assert kb.scenarios[sid].urgent_must, sid


@pytest.mark.parametrize("written", ["打95017问问", "找腾讯客服转人工", "上weixin110.qq.com"])
def test_kb_check_refuses_an_unhedged_partial_channel(kb: KnowledgeBase, written: str) -> None:
    texts = {**kb.texts, "tip_9": f"防骗提示：{written}。"}
    assert any(p.startswith("texts.tip_9:") for p in problems(kb.model_copy(update={"texts": texts})))


def test_kb_check_refuses_a_citation_with_no_room_for_the_note(kb: KnowledgeBase) -> None:
    texts = {**kb.texts, "tip_9": "防骗提示：{law:adfl_31}" + "字" * 360}
    found = problems(kb.model_copy(update={"texts": texts}))
    assert "texts.tip_9: cites law and with the legal note is longer than one screen" in found
    no_hotline = {**kb.texts, "legal_note": "以上不是律师意见。"}
    assert any("legal_note" in p for p in problems(kb.model_copy(update={"texts": no_hotline})))


def test_kb_check_reads_every_rendering_path(kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import kb_audit

    assert kb_audit.rendering_problems(kb) == []
    monkeypatch.setattr("dialogs.engine.with_legal_note", lambda kb, replies: replies)
    found = kb_audit.rendering_problems(kb)
    assert "dialog fraud_victim: first reply: cites law without the legal note after it" in found
    monkeypatch.setattr("bot.group_rules.with_legal_note", lambda kb, replies: replies)
    assert "group warning account_trading: cites law without the legal note after it" in kb_audit.rendering_problems(kb)
