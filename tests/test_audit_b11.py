"""Audit b11 (notes/audit_b11.md): the knowledge texts say only what the brief says.

One regression test per wrong-fact or unsupported finding the audit got right, plus the
imprecise ones a text check can pin down. Each expectation is written from
../shared/knowledge-brief.md (the section is named next to it), not read back from the
knowledge files, so reviving an audited sentence fails here.
"""

from __future__ import annotations

import math
import re

import pytest

from bot.pipeline import Pipeline
from dialogs.engine import Dialog
from knowledge.render import render, render_text
from knowledge.schema import KnowledgeBase

from .helpers import say
from .test_brief_backing import everything_rendered, freeze_path, menu_index

# ── Sentences the audit found wrong or unsupported: rendered nowhere ───────────────────────

AUDITED_OUT = [
    ("W1", "尝试冻结这笔钱"),  # §0.2/§8/反诈法第二十条: 止付、冻结由公安机关决定
    ("U1", "长按该消息投诉"),  # §8.1 gives only the ··· / 资料页 → 投诉 path
    ("U2", "等于替骗子注册"),  # §2 第三十一条 does not say 辅助验证 is 实名核验帮助
    ("U4", "都是冒充的信号"),  # §9.10 says only 先打电话或视频核实
    ("U5", "正规平台不会花钱收购"),  # not in the brief (§8.1 平台规则 is 🟡)
    ("U6", "其实是在走别人的钱"),  # 刷流水 appears nowhere in the brief: no meaning given for it
    ("U6", "帮忙刷流水"),
    ("U6", "刷一笔流水"),
    ("U7", "是同一伙人"),  # not in §9.6/§9.7
    ("U8", "把案子并起来"),  # §6.2 gives only the 累计计算 rule
    ("I1", "从不打电话"),  # §9.5: 不会通过电话或视频办案要钱 (and 96110 does call, §8)
    ("I2", "冻结支付"),  # §8: 95017 is for 支付问题、资金安全、账户异常 only
    ("I2", "请求冻结"),
    ("I10", "接下来就是骗局"),  # §9.8: 往往
    ("I11", "触犯的是诈骗罪"),  # §0.3: 具体定罪以司法机关认定为准
    ("S3", "据公安部公布"),  # §9 background is 🟡: 据公开资料/以官方为准
]


@pytest.mark.parametrize(("finding", "sentence"), AUDITED_OUT, ids=[f"{f}-{s}" for f, s in AUDITED_OUT])
def test_audited_sentence_is_rendered_nowhere(kb: KnowledgeBase, finding: str, sentence: str) -> None:
    for where, text in everything_rendered(kb):
        assert sentence not in text, (finding, where)


def clauses(kb: KnowledgeBase) -> list[tuple[str, str]]:
    return [(where, c) for where, text in everything_rendered(kb) for c in re.split(r"[，。；\n]", text)]


def test_u3_a_report_receipt_is_only_mentioned_if_one_is_given(kb: KnowledgeBase) -> None:
    # §8.2/§8.3 never mention a receipt; scenarios.md asks account_stolen to keep one: say it
    # only as "if you got one", never as a fact, an evidence item or what it proves.
    found = [(w, c) for w, c in clauses(kb) if "回执" in c]
    assert [w for w, _ in found] == ["account_stolen.steps.report"], found
    assert all(c.startswith("如果") for _, c in found), found


def test_u9_device_list_and_family_card_are_hedged(kb: KnowledgeBase) -> None:
    # Neither feature is in §8.1; scenarios.md names both (account_stolen, wallet_loss).
    found = [(w, s) for w, t in everything_rendered(kb) for s in t.splitlines() if re.search("登录过的设备|亲属卡", s)]
    assert found
    for where, line in found:
        assert "如果" in line or "开过" in line, (where, line)
        assert "以App内为准" in line, (where, line)


def test_u6_rinsing_turnover_is_named_without_a_meaning_the_brief_lacks(kb: KnowledgeBase) -> None:
    # scenarios.md names 刷流水 as a disguise; the brief does not define it, so the text says
    # only what to do when it means moving money through your account (§9.11).
    found = [(w, s) for w, t in everything_rendered(kb) for s in t.splitlines() if "刷流水" in s]
    assert [w for w, _ in found] == ["account_rental.steps.disguises"], found
    assert "别做" in found[0][1]


def test_u2_verification_help_is_only_possibly_real_name_help(kb: KnowledgeBase) -> None:
    # §2 第三十一条 forbids 提供实名核验帮助 but never says friend verification is that.
    found = [(w, c) for w, c in clauses(kb) if "实名核验帮助" in c and re.search(r"辅助|帮忙|这样", c)]
    assert found
    for where, clause in found:
        assert "可能" in clause, (where, clause)


def test_i3_payment_codes_are_not_listed_under_article_31(kb: KnowledgeBase) -> None:
    # §2 第三十一条 lists 银行账户、支付账户、互联网账号; 收款码 only in §9.8/§9.11.
    for where, clause in clauses(kb):
        if "第三十一条" in clause:
            assert "收款码" not in clause, (where, clause)


def test_i8_recognition_is_by_a_city_level_police_organ(kb: KnowledgeBase) -> None:
    # §2 第三十一条第二款: 经设区的市级以上公安机关认定
    found = []
    for where, text in everything_rendered(kb):
        for sentence in re.split(r"[。\n]", text):
            if "认定" in sentence and re.search(r"出租|出售|信用记录", sentence):
                found.append(sentence)
                assert "经设区的市级以上公安机关认定" in sentence, (where, sentence)
    assert found


def test_i9_article_44_penalties_are_possible_not_certain(kb: KnowledgeBase) -> None:
    # §2 机器人提示: 后果可能包括第四十四条的罚款和拘留; 第四十四条: 十五日以下拘留
    law_step = next(st for st in kb.scenarios["account_rental"].steps if "adfl_44" in st.text)
    text = render(kb, law_step.text)
    assert "也要被" not in text and "可能" in text and "十五日以下拘留" in text


def test_i12_presumed_knowledge_keeps_its_exception(kb: KnowledgeBase) -> None:
    # §7.1 2019 解释第十一条: 但是有相反证据的除外
    for where, text in everything_rendered(kb):
        if "认定为“明知”" in text:
            assert "相反证据" in text, where


@pytest.mark.parametrize("where", ["account_rental.urgent", "account_rental.group_answer", "texts.tip_4"])
def test_i13_helping_crime_short_form_names_its_conditions(kb: KnowledgeBase, where: str) -> None:
    # §1.6 第二百八十七条之二: 明知 … 情节严重的
    sid, field = where.split(".")
    template = kb.texts[field] if sid == "texts" else getattr(kb.scenarios[sid], field)
    text = render(kb, template)
    assert "帮" in text and "明知" in text and "情节严重" in text


def test_i7_unfreeze_menu_is_for_an_account_the_user_froze(kb: KnowledgeBase) -> None:
    # §8.1 解冻 follows the user's own freeze; a platform restriction is appealed (§2 第三十二条第三款).
    appeal = next(st for st in kb.scenarios["account_frozen"].steps if st.id == "appeal")
    line = next(ln for ln in render(kb, appeal.text).splitlines() if kb.procedures["unfreeze_account"].path in ln)
    assert "自己冻结" in line and "申诉" in line


def test_s4_the_12321_line_has_one_hedge_and_no_nested_brackets(kb: KnowledgeBase) -> None:
    line = Dialog(kb)._hotline_lines(["12321"])[0]
    assert line.count(render_text(kb, "hedge_hotline")) == 1, line
    depth = 0
    for ch in line:
        depth += {"（": 1, "）": -1}.get(ch, 0)
        assert depth <= 1, line


# ── First replies ──────────────────────────────────────────────────────────────────────────

async def first_reply(pipeline: Pipeline, sid: str) -> str:
    return (await say(pipeline, menu_index(sid))).replies[0].text


async def test_w1_fraud_victim_leaves_freezing_the_money_to_the_police(pipeline: Pipeline) -> None:
    # §8 (110 row), 反诈法第二十条: the police decide; §8.2 step 2: the bank freezes the user's own card.
    lines = (await first_reply(pipeline, "fraud_victim")).splitlines()
    police = next(ln for ln in lines if "110" in ln)
    assert "公安机关决定" in police, police
    bank = next(ln for ln in lines if "95017" in ln)
    assert "自己" in bank and re.search(r"挂失|冻结", bank), bank


async def test_i5_account_stolen_puts_110_first_and_fits_one_screen(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    # §8.2: 1. 报警 2. 冻结 + 95017 + 银行 3. 证据 4. 亲友 5. 不找追款; screen model 16 × 25.
    text = await first_reply(pipeline, "account_stolen")
    order = [text.index(n) for n in ("110", freeze_path(kb), "95017", "亲友", "追款")]
    assert order == sorted(order), text
    assert "截图" in text
    assert sum(max(1, math.ceil(len(ln) / 16)) for ln in text.splitlines()) <= 25


async def test_i6_info_leak_reports_through_the_report_assistant(pipeline: Pipeline) -> None:
    # §8 App row: 报案 is 报案助手; 我要举报 is for tip-offs.
    text = await first_reply(pipeline, "info_leak")
    assert "报案助手" in text and "我要举报" not in text


async def test_i15_wallet_loss_warns_against_paid_recovery(pipeline: Pipeline) -> None:
    # §8.2 step 5, §9.7
    assert re.search(r"追回|追款", await first_reply(pipeline, "wallet_loss"))
