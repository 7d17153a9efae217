"""The group scanner: catches scam ads, stays quiet on warnings, questions and normal posts.

Targets (on tests/data/heldout_group.jsonl, on shared/eval/dev_group.jsonl beside the
repository and, when present, on the blind set tests/data/blind_group.jsonl): recall ≥ 0.9 and
at most one false alert per 20 benign messages. None of these files is trained on: the learned
opinion trains on knowledge/data/group/ads.txt and benign.txt only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from knowledge import scanner as scanner_module
from knowledge.evaluate import evaluate_group, format_group_report
from knowledge.loader import ARTICLE_RE, PHONE_LIKE_RE, read
from knowledge.normalize import normalize
from knowledge.render import REF_RE
from knowledge.scanner import (
    AD_THRESHOLD,
    MODEL_MIN_CHARS,
    VETO_THRESHOLD,
    Scanner,
    read_group_examples,
)
from tests.helpers import SHARED_EVAL, shared_eval_file

HERE = Path(__file__).resolve().parent
HELDOUT = HERE / "data" / "heldout_group.jsonl"
BLIND = HERE / "data" / "blind_group.jsonl"
BLIND_V2 = HERE / "data" / "blind_group_v2.jsonl"
"""Second blind set (issue 16), written by a helper who never saw the code: 135 ads in 16
categories, 342 benign messages (chatter, warnings, marketing, news, own-case questions, talk
to the bot). Held out: never trained or tuned on; only its figures were looked at."""

PATTERN_IDS = {
    "account_trading", "repost_for_money", "brushing_rebate", "payment_code_laundering",
    "verify_assist", "card_buying", "upfront_fee_loan_job", "credit_repair", "fake_investment",
    "fake_customer_service", "safe_account", "recovery_scam", "small_test_transfer",
    "million_guarantee", "student_loan_cancel", "romance_investment", "impersonate_friend",
    "fake_12381", "free_subsidy_link",
    "counterfeit_goods", "dating_lure", "fake_official_notice", "cheap_topup", "impersonate_leader",
}  # fmt: skip
ALLOWED_LAWS = {
    "xf_253_1", "xf_266", "xf_287_1", "xf_287_2", "xf_312",
    "adfl_31", "adfl_44", "adfl_25", "adfl_20",
}  # fmt: skip


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    kb, _ = read()
    assert kb is not None, "knowledge base did not parse"
    return Scanner.from_kb(kb)




def _check_targets(scanner: Scanner, path: Path) -> None:
    r = evaluate_group(scanner, path)
    assert r.recall >= 0.9, format_group_report(r)
    assert r.false_alerts * 20 <= r.benign, format_group_report(r)


# ----------------------------------------------------------------------------- targets


def test_heldout_targets(scanner: Scanner) -> None:
    r = evaluate_group(scanner, HELDOUT)
    assert r.ads >= 60 and r.benign >= 80
    _check_targets(scanner, HELDOUT)


def test_dev_targets(scanner: Scanner) -> None:
    _check_targets(scanner, shared_eval_file("dev_group.jsonl"))


def test_blind_targets(scanner: Scanner) -> None:
    """The blind set, written by someone who never saw the rules or the training lines."""
    assert BLIND.exists(), f"blind set missing: {BLIND}"
    r = evaluate_group(scanner, BLIND)
    assert r.ads >= 20 and r.benign >= 20, format_group_report(r)
    _check_targets(scanner, BLIND)


def test_heldout_names_the_right_pattern(scanner: Scanner) -> None:
    r = evaluate_group(scanner, HELDOUT)
    assert r.pattern_correct >= 0.9 * r.pattern_labelled, format_group_report(r)


def test_alerts_name_a_known_pattern_or_none(scanner: Scanner) -> None:
    """An alert names a pattern id from patterns.yaml, or none when no pattern fits; most
    held-out and training ads are named."""
    rows = [json.loads(x) for x in HELDOUT.read_text(encoding="utf-8").splitlines() if x.strip()]
    ads, benign = read_group_examples()
    texts = [str(r["text"]) for r in rows] + [t for _, t in ads] + benign
    named = alerts = 0
    for text in texts:
        r = scanner.scan(text)
        assert r.reason
        if r.alert:
            alerts += 1
            named += r.pattern is not None
            assert r.pattern is None or r.pattern in PATTERN_IDS, r
        else:
            assert r.pattern is None, r
    assert named >= 0.95 * alerts, (named, alerts)


# ----------------------------------------------------------------------------- learned opinion


def test_training_lines_are_well_formed_and_not_copied_from_the_test_sets() -> None:
    kb, _ = read()
    assert kb is not None
    ads, benign = read_group_examples()
    assert len(ads) >= 300 and len(benign) >= 300
    alerting = {p.id for p in kb.patterns.values() if p.group_alert}
    assert {p for p, _ in ads} == alerting  # every alerting pattern has ads, no other label
    tests = [HELDOUT] + [p for p in (SHARED_EVAL / "dev_group.jsonl", BLIND, BLIND_V2) if p.exists()]
    seen = {
        normalize(json.loads(x)["text"])
        for path in tests
        for x in path.read_text(encoding="utf-8").splitlines()
        if x.strip()
    }
    copied = [t for t in [t for _, t in ads] + benign if normalize(t) in seen]
    assert not copied, copied


def test_thresholds_are_ordered() -> None:
    assert 0.0 < VETO_THRESHOLD < 0.5 < AD_THRESHOLD < 1.0


def test_cross_validated_targets_on_the_training_lines() -> None:
    """5-fold CV of the whole scan (rules, suppressor, model) on the training lines.

    This is how AD_THRESHOLD and VETO_THRESHOLD were picked (see their docstrings); it guards
    against an edit of ads.txt/benign.txt that quietly breaks the model.
    """
    from sklearn.model_selection import StratifiedKFold

    kb, _ = read()
    assert kb is not None
    ads, benign = read_group_examples()
    texts = [t for _, t in ads] + benign
    labels = [1] * len(ads) + [0] * len(benign)
    tp = fp = named = 0
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(texts, labels):
        fold = Scanner.train(
            kb,
            [ads[i] for i in train if i < len(ads)],
            [benign[i - len(ads)] for i in train if i >= len(ads)],
        )
        for i in test:
            r = fold.scan(texts[i])
            if r.alert and labels[i]:
                tp += 1
                named += r.pattern == ads[i][0]
            elif r.alert:
                fp += 1
    report = f"recall {tp}/{len(ads)}, false alerts {fp}/{len(benign)}, named {named}/{tp}"
    assert tp >= 0.9 * len(ads), report
    assert fp * 20 <= len(benign), report
    assert named >= 0.9 * tp, report


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("借你的支付宝收几笔货款，收完转给我，给你提成", "payment_code_laundering"),
        ("帮我们在你的群里发个海报，一个群给两块", "repost_for_money"),
        ("钱打水漂的朋友别灰心，我们有渠道帮你弄回来，事成再付费", "recovery_scam"),
    ],
)
def test_the_model_catches_ads_no_rule_knows(scanner: Scanner, text: str, pattern: str) -> None:
    assert scanner.match_patterns(text) == []
    r = scanner.scan(text)
    assert r.alert and r.pattern == pattern, r
    assert r.reason.startswith("model p=") and "top n-grams: " in r.reason


def test_victim_words_do_not_hide_a_recovery_ad_the_model_found(scanner: Scanner) -> None:
    text = "被骗了的朋友别难过，我们团队有办法帮你弄回来，成功再收费"
    assert scanner.match_patterns(text) == []
    r = scanner.scan(text)
    assert r.alert and r.pattern == "recovery_scam", r


def test_the_model_does_not_override_the_suppressor(scanner: Scanner) -> None:
    text = "大家注意，有人发广告说借你的支付宝收几笔货款给提成，别理"
    assert scanner.ad_probability(text) >= 0.0  # whatever it thinks
    assert not scanner.scan(text).alert


def test_the_model_vetoes_a_rule_on_a_plain_remark(scanner: Scanner) -> None:
    text = "刷单没有不要先垫钱的，垫进去就别想拿回来"
    assert "brushing_rebate" in scanner.match_patterns(text)
    assert Scanner.suppressed(text) is None
    r = scanner.scan(text)
    assert not r.alert and r.pattern is None
    assert "vetoed by model" in r.reason


def test_the_model_alone_ignores_very_short_messages(
    scanner: Scanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scanner_module, "AD_THRESHOLD", 0.0)  # the model would fire on anything
    assert len(normalize("收到马上到")) < MODEL_MIN_CHARS
    assert not scanner.scan("收到，马上到").alert
    assert scanner.scan("借你的支付宝收几笔货款，收完转给我").alert


def test_unknown_pattern_labels_are_refused() -> None:
    kb, _ = read()
    assert kb is not None
    ads, benign = read_group_examples()
    with pytest.raises(ValueError, match="no_such_pattern"):
        Scanner.train(kb, [*ads, ("no_such_pattern", "收微信号")], benign)


def test_heldout_covers_every_alerting_pattern() -> None:
    """Each alerting pattern is measured somewhere: in the held-out file, or (the patterns
    added with scanner v2) in the category cases below and the blind v2 set."""
    kb, _ = read()
    assert kb is not None
    rows = [json.loads(x) for x in HELDOUT.read_text(encoding="utf-8").splitlines() if x.strip()]
    covered = {r["pattern"] for r in rows if r["alert"]} | {p for _, cases in CATEGORY_ADS.items() for p, _ in cases}
    alerting = {p.id for p in kb.patterns.values() if p.group_alert}
    assert alerting <= covered, alerting - covered


# ----------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("高价收购微信号，老号优先，当天结算", "account_trading"),
        ("出租你的V号，一天80，不影响使用", "account_trading"),
        ("每天发两条朋友圈，一条10块", "repost_for_money"),
        ("换米啦，动动手指就有钱", "repost_for_money"),
        ("招聘刷单员，佣金日结", "brushing_rebate"),
        ("跑分平台招码商", "payment_code_laundering"),
        ("有偿辅助解封微信", "verify_assist"),
        ("收购闲置银行卡，一张1000", "card_buying"),
        ("贷款先交保证金，当天下款", "upfront_fee_loan_job"),
        ("专业征信修复", "credit_repair"),
        ("导师带单，稳赚不赔的投资平台", "fake_investment"),
        ("请将资金转入安全账户配合调查", "safe_account"),
        ("百万保障到期将自动扣费，请联系客服关闭", "million_guarantee"),
    ],
)
def test_ads_alert(scanner: Scanner, text: str, pattern: str) -> None:
    r = scanner.scan(text)
    assert r.alert and r.pattern == pattern, r
    assert pattern in r.reason


@pytest.mark.parametrize(
    "text",
    [
        "大家注意，有人在群里收购微信号，别卖",
        "小心刷单返利的骗局，先垫付的钱拿不回来",
        "提醒一下：出租银行卡是违法的",
        "有人冒充客服说要退款，都是骗子",
        "有人让我出租微信号，一天给100，靠谱吗",
        "被骗了去哪里报警，怎么办",
        "有人知道辅助验证是什么吗",
        "群里有人卖二手冰箱吗",
        "招聘服务员，月薪5000，包吃住",
        "物业通知：明天停水",
        "拼车去机场，每人40",
        "团购车厘子，明天到货",
        "@反诈助手 收购微信号犯法吗",
        "反诈助手提醒：收购微信号违反反电信网络诈骗法",
    ],
)
def test_no_alert(scanner: Scanner, text: str) -> None:
    r = scanner.scan(text)
    assert not r.alert, r
    assert r.pattern is None and r.reason


def test_denying_being_a_scam_does_not_hide_an_ad(scanner: Scanner) -> None:
    assert scanner.scan("高价收微信号，不是骗子，秒结").alert


def test_recovery_ads_aimed_at_victims_still_alert(scanner: Scanner) -> None:
    r = scanner.scan("网上被骗了？专业团队帮你追回损失")
    assert r.alert and r.pattern == "recovery_scam"


def test_match_patterns_ignores_the_suppressor(scanner: Scanner) -> None:
    text = "大家注意，有人收购微信号，价格高"
    assert not scanner.scan(text).alert
    assert "account_trading" in scanner.match_patterns(text)


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("说我涉嫌洗钱，要把钱转到安全账户", "safe_account"),
        ("对方让我下载会议App开屏幕共享", "fake_customer_service"),
        ("网上认识的男朋友带我在一个平台投资", "romance_investment"),
        ("表哥突然用新号找我借钱", "impersonate_friend"),
        ("对方转了我0.01元让我验证账户", "small_test_transfer"),
        ("电话说我上学时开的校园贷要注销", "student_loan_cancel"),
        ("收到12381的短信，里面有个链接", "fake_12381"),
    ],
)
def test_match_patterns_names_what_users_describe(
    scanner: Scanner, text: str, pattern: str
) -> None:
    assert pattern in scanner.match_patterns(text)


# ----------------------------------------------------------------------------- the data file


def test_pattern_ids_laws_and_texts() -> None:
    kb, _ = read()
    assert kb is not None
    assert set(kb.patterns) == PATTERN_IDS
    for p in kb.patterns.values():
        assert p.rules, p.id
        assert set(p.laws) <= ALLOWED_LAWS, p.id
        for field in (p.name, p.giveaway):
            bare = REF_RE.sub("", field)
            assert not ARTICLE_RE.search(bare), (p.id, field)
            assert not PHONE_LIKE_RE.search(bare), (p.id, field)
        for rule in p.rules:
            for rx in rule:
                re.compile(rx)
    laws = {pid: set(kb.patterns[pid].laws) for pid in kb.patterns}
    assert {"adfl_31", "adfl_44", "xf_287_2"} <= laws["account_trading"]
    assert "xf_287_1" in laws["repost_for_money"]
    assert {"xf_287_2", "xf_312"} <= laws["payment_code_laundering"]
    assert "xf_266" in laws["brushing_rebate"]


# ----------------------------------------------------------------------------- scanner v2 (issue 16)
# Each category of issue 16 in the poster's own words, then disguised the way posters dodge
# keyword rules (spaces and emoji between characters, 薇信/V❤/扣扣, full-width, homoglyphs,
# traditional characters, pinyin). None of these lines is in the training files.

CATEGORY_ADS: dict[str, list[tuple[str, str]]] = {
    "luxury": [
        ("counterfeit_goods", "香奈儿 迪奥 原单包包 一比一 三百多一个 加我看实物图"),
        ("counterfeit_goods", "劳 力 士 ✨ 顶 级 复 刻 ✨ 专柜品质 薇：watch_2025"),
        ("counterfeit_goods", "愛馬仕 原單 工廠直發 懂的私"),
    ],
    "dating": [
        ("dating_lure", "同城交友 寂寞的哥哥来找我 QQ 2761983345"),
        ("dating_lure", "同🌹城🌹约 真人见面 ＶＸ：ｍｅｉｍｅｉ６６"),
        ("dating_lure", "晚上無聊嗎 小姐姐陪你聊 加威信 lulu_520"),
    ],
    "card_question": [
        ("card_buying", "有没有闲置的银行卡 出一张 一千二 当天结"),
        ("card_buying", "有 没 有 不 用 的 手 机 卡 出 一张三百"),
        ("card_buying", "谁家有不用的储蓄卡 收 价格好"),
    ],
    "company_account": [
        ("payment_code_laundering", "有对公账户的老板 借用走几笔账 给好处费"),
        ("payment_code_laundering", "公 户 走 账 一笔一个点 长期合作"),
        ("payment_code_laundering", "對公賬戶出租 走流水 日結"),
    ],
    "account_trading": [
        ("account_trading", "我这收微信号 一个300 当天结"),
        ("account_trading", "收 V ❤ 号 实名老号优先 价格美丽"),
        ("account_trading", "shou weixin hao 一个三百 秒结"),
    ],
    "fake_official": [
        ("fake_official_notice", "【微信官方】您的账号存在违规，即将封号，请点击链接 wx-jiefeng.top 申诉"),
        ("fake_official_notice", "【腾讯客服】帐号实名认证过期 请登录 tx-kefu.cn 重新认证"),
        ("free_subsidy_link", "医保卡余额月底清零 请点击链接把余额转出"),
    ],
    "cheap_topup": [
        ("cheap_topup", "话费八折充 三网都能充 秒到账 找我"),
        ("cheap_topup", "王者点券 低价代充 不封号 薇信 dq_8866"),
        ("cheap_topup", "油 卡 九 折 量大 私聊"),
    ],
    "impersonation": [
        ("impersonate_leader", "我是王总 这是我的新号 你先转两万到这个账户 急用"),
        ("impersonate_leader", "各位家长 我是李老师 资料费每人200 直接转到我微信"),
        ("impersonate_leader", "我是你们领导 明天来我办公室一趟 先加我新号"),
    ],
    "warning_words_inside_the_ad": [
        ("account_trading", "大家注意！长期高价收微信号 一个三百 秒结 私聊"),
        ("card_buying", "小心错过 高价收银行卡 一张一千 滴滴我"),
        ("upfront_fee_loan_job", "缺钱怎么办？贷款当天下款 先交五百手续费 加我"),
        ("account_trading", "差点错过！收微信号 最后三天 私我"),
    ],
}


@pytest.mark.parametrize(
    ("pattern", "text"),
    [case for cases in CATEGORY_ADS.values() for case in cases],
    ids=[f"{cat}-{i}" for cat, cases in CATEGORY_ADS.items() for i in range(len(cases))],
)
def test_v2_category_ads_alert_and_name_the_pattern(scanner: Scanner, pattern: str, text: str) -> None:
    r = scanner.scan(text)
    assert r.alert and r.pattern == pattern, r


@pytest.mark.parametrize(
    "text",
    [
        # warnings and news that repeat the ad's words, price or contact
        "大家小心，有人在群里发“刷单返利 佣金日结”，群主踢一下吧",
        "那个说“同城交友 加我vx”的是骗子，别加",
        "转发反诈中心通报：一市民买低价代充话费被骗8千元，请相互转告",
        "警方破获一起收购银行卡团伙，抓获12人",
        "有人冒充王总用新号让财务转账，大家一定先打电话核实",
        # own-case questions
        "有人问我有没有闲置的银行卡，说一张给一千，这违法吗？",
        "我在群里看到一比一的包三百块，靠谱吗",
        "自称我们领导的人加我，让我先垫付两万，我该怎么办",
        # ordinary notices and marketing
        "【中国移动】尊敬的客户，您本月剩余流量3.2GB，可登录中国移动APP查询。",
        "【工商银行】您的信用卡本期账单1860元，还款日15日，请通过官方APP还款。",
        "【顺丰速运】您的快件已到驿站，取件码5-1-2203，请及时领取。",
        "各位家长，我是李老师，明天下午三点开家长会",
        "团购车厘子，一箱两百，明天到货，要的接龙",
    ],
)
def test_v2_warnings_questions_and_notices_stay_quiet(scanner: Scanner, text: str) -> None:
    r = scanner.scan(text)
    assert not r.alert, r


@pytest.mark.parametrize(
    ("ad", "warning"),
    [
        ("大家注意！高价收微信号 一个300 秒结", "大家注意，有人在群里高价收微信号，别卖"),
        ("小心错过 收银行卡 一张一千 加我", "小心，那个收银行卡的是骗子"),
        ("缺钱怎么办？网贷当天下款 先交手续费 找我", "有人让我贷款前先交手续费，我该怎么办？"),
        ("差点错过！刷单日结 佣金高 私我", "我差点被刷单的骗了，幸好没转钱"),
    ],
)
def test_a_warning_word_does_not_clear_an_ad(scanner: Scanner, ad: str, warning: str) -> None:
    """The suppressor needs a real warning or a real question, not the word."""
    assert scanner.scan(ad).alert, scanner.scan(ad)
    assert not scanner.scan(warning).alert, scanner.scan(warning)


def test_the_bots_name_in_an_ad_does_not_switch_the_alert_off(scanner: Scanner) -> None:
    ad = "高价收微信号 一个300 秒结 反诈助手"
    assert scanner.scan(ad).alert
    assert scanner.scan(ad, bot_name="小安").alert
    assert not scanner.scan("@反诈助手 收微信号犯法吗").alert  # the default name, mentioned
    assert not scanner.scan("@小安 收微信号犯法吗", bot_name="小安").alert  # FANZHA_BOT_NAME
    assert scanner.scan("@反诈助手 高价收微信号 一个300 秒结", bot_name="小安").alert  # not this bot


def test_a_quote_reply_scans_only_the_writers_own_words(scanner: Scanner) -> None:
    bar = "- - - - - - - - - - - - - - -"
    quoting_the_bot = f"「反诈助手：⚠️ 小王 发的消息疑似「收购、租用微信号」：高价收购微信号」\n{bar}\n谢谢提醒"
    assert not scanner.scan(quoting_the_bot).alert
    quoting_an_ad = f"「小王：高价收微信号 一个300 秒结」\n{bar}\n这是骗子吧"
    assert not scanner.scan(quoting_an_ad).alert
    ad_under_a_quote = f"「反诈助手：大家好」\n{bar}\n高价收微信号 一个300 秒结 私聊"
    assert scanner.scan(ad_under_a_quote).alert


def test_the_model_cannot_veto_a_rule_when_the_poster_makes_an_offer(
    scanner: Scanner, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(scanner_module, "VETO_THRESHOLD", 1.01)  # the model would veto any rule
    r = scanner.scan("我这收微信号 一个300")
    assert r.alert and r.pattern == "account_trading" and "overruled" in r.reason, r
    with caplog.at_level("INFO", logger="knowledge.scanner"):
        vetoed = scanner.scan("刷单没有不要先垫钱的，垫进去就别想拿回来")
    assert not vetoed.alert and "vetoed by model" in vetoed.reason
    assert any("vetoed brushing_rebate" in rec.getMessage() for rec in caplog.records)
    assert not any("垫钱" in rec.getMessage() for rec in caplog.records)  # no user words in logs


def test_a_model_alert_names_a_pattern_only_when_it_fits(scanner: Scanner) -> None:
    # the pattern namer's best guess must fit the message, or the alert names none (and no law)
    sig = scanner.signals
    assert sig.fits("card_buying", normalize("收银行卡 一张八百"))
    assert not sig.fits("card_buying", normalize("话费充值卡八折出"))
    assert not sig.fits("account_trading", normalize("医保卡余额清零 点击链接转出"))
    r = scanner.scan("钱打水漂的朋友别灰心，我们有渠道帮你弄回来，事成再付费")
    assert r.alert and r.pattern == "recovery_scam", r


def test_notices_asking_nothing_risky_get_no_model_alert(scanner: Scanner) -> None:
    notice = "【中国联通】您本月已使用流量18.6GB，详情请登录中国联通官方APP查询。"
    assert not scanner.scan(notice).alert
    phishing = "【中国联通】您的话费积分即将清零，请点击 lt-jifen.top 兑换"
    assert scanner.scan(phishing).alert


def test_patterns_without_a_law_in_the_brief_cite_none() -> None:
    kb, _ = read()
    assert kb is not None
    for pid in ("counterfeit_goods", "dating_lure", "fake_official_notice", "cheap_topup"):
        assert kb.patterns[pid].laws == [], pid
    assert kb.patterns["impersonate_leader"].laws == ["xf_266"]


# Measured on BLIND_V2 when it was added (scanner v2): recall 0.87 (118/135; every category
# ≥ 0.6), 3 false alerts on 342 benign (none on marketing, warnings or talk to the bot). The
# scanner before v2 (f91e744): recall 0.59, 27 false alerts (15 on marketing, 11 on news).
# The floors leave a margin for retraining noise; a drop below them is a regression.
BLIND_V2_MIN_RECALL = 0.85
BLIND_V2_MAX_FALSE_ALERTS = 8
BLIND_V2_MIN_CATEGORY_RECALL = 0.5
BLIND_V2_MAX_CATEGORY_FALSE_ALERTS = 3


def test_blind_v2_figures(scanner: Scanner) -> None:
    r = evaluate_group(scanner, BLIND_V2)
    report = (  # figures only: the set stays unread
        f"recall {r.true_alerts}/{r.ads}, false alerts {r.false_alerts}/{r.benign}; "
        + ", ".join(f"{c.category} {c.alerts}/{c.total}" for c in r.per_category)
    )
    assert r.ads >= 120 and r.benign >= 320, report
    assert r.recall >= BLIND_V2_MIN_RECALL, report
    assert r.false_alerts <= BLIND_V2_MAX_FALSE_ALERTS, report
    ads = [c for c in r.per_category if c.ads]
    benign = [c for c in r.per_category if not c.ads]
    assert len(ads) >= 15 and {c.category for c in benign} >= {"marketing", "warning", "news"}, report
    for c in ads:
        assert c.alerts >= BLIND_V2_MIN_CATEGORY_RECALL * c.total, (c, report)
    for c in benign:
        assert c.alerts <= BLIND_V2_MAX_CATEGORY_FALSE_ALERTS, (c, report)


@pytest.mark.parametrize(
    "text",
    [
        "高价收微信号 一个300 秒结",
        "高 价 收 微 信 号 一 个 300 秒 结",  # spaces between characters
        "高💰价💰收💰微💰信💰号 一个300",  # emoji between characters
        "高.价.收.薇.信.号 一个300",  # dots and a homophone
        "高价收威信号 一个300 秒结",
        "高价收V❤号 一个300 秒结",
        "高价收vx号 一个300 秒结",
        "高价收ｖｘ号 一个３００ 秒结",  # full-width
        "高价收vх号 一个300 秒结",  # Cyrillic х
        "高價收微信號 一個300 秒結",  # traditional characters
        "gao jia shou weixin hao 一个300",  # pinyin
        "收 wx 号 一个300 联系 Q:2837465190",  # contact id
        "收号 一个300 薇：abc_12345",  # contact id behind a nickname
    ],
)
def test_disguised_forms_of_one_ad_all_alert(scanner: Scanner, text: str) -> None:
    r = scanner.scan(text)
    assert r.alert and r.pattern == "account_trading", r


def test_scanner_yaml_names_only_known_patterns() -> None:
    from knowledge.group_signals import default_signals

    kb, _ = read()
    assert kb is not None
    sig = default_signals()
    alerting = {p.id for p in kb.patterns.values() if p.group_alert}
    assert set(sig.pattern_fit) <= set(kb.patterns)
    assert alerting <= set(sig.pattern_fit), alerting - set(sig.pattern_fit)  # each can be named
    assert sig.victim_ad_patterns <= set(kb.patterns)
    assert sig.bot_names == ("反诈助手",)


def test_users_telling_their_own_case_in_a_group_get_no_alert(scanner: Scanner) -> None:
    """The intent sets are people describing what happened to them ("有人出价800收我的老微信号",
    "微信零钱被冻结不能提现"): said in a group, none of it is an ad. Before scanner v2 25 of
    these 678 lines alerted; v2 alerts on 4."""
    rows = [
        json.loads(x)
        for path in (HERE / "data" / "heldout_intents.jsonl", HERE / "data" / "blind_intents.jsonl")
        for x in path.read_text(encoding="utf-8").splitlines()
        if x.strip()
    ]
    alerts = [r["text"] for r in rows if scanner.scan(r["text"]).alert]
    assert len(rows) >= 600
    assert len(alerts) <= 8, alerts
