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
from knowledge.matcher import normalize
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

PATTERN_IDS = {
    "account_trading", "repost_for_money", "brushing_rebate", "payment_code_laundering",
    "verify_assist", "card_buying", "upfront_fee_loan_job", "credit_repair", "fake_investment",
    "fake_customer_service", "safe_account", "recovery_scam", "small_test_transfer",
    "million_guarantee", "student_loan_cancel", "romance_investment", "impersonate_friend",
    "fake_12381", "free_subsidy_link",
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


def test_every_alert_names_a_pattern(scanner: Scanner) -> None:
    rows = [json.loads(x) for x in HELDOUT.read_text(encoding="utf-8").splitlines() if x.strip()]
    ads, benign = read_group_examples()
    texts = [str(r["text"]) for r in rows] + [t for _, t in ads] + benign
    for text in texts:
        r = scanner.scan(text)
        assert r.reason
        if r.alert:
            assert r.pattern in PATTERN_IDS, r
        else:
            assert r.pattern is None, r


# ----------------------------------------------------------------------------- learned opinion


def test_training_lines_are_well_formed_and_not_copied_from_the_test_sets() -> None:
    kb, _ = read()
    assert kb is not None
    ads, benign = read_group_examples()
    assert len(ads) >= 300 and len(benign) >= 300
    alerting = {p.id for p in kb.patterns.values() if p.group_alert}
    assert {p for p, _ in ads} == alerting  # every alerting pattern has ads, no other label
    tests = [HELDOUT] + [p for p in (SHARED_EVAL / "dev_group.jsonl", BLIND) if p.exists()]
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
        ("投资亏了的朋友看过来，帮你把钱要回来，成功后再收费", "recovery_scam"),
    ],
)
def test_the_model_catches_ads_no_rule_knows(scanner: Scanner, text: str, pattern: str) -> None:
    assert scanner.match_patterns(text) == []
    r = scanner.scan(text)
    assert r.alert and r.pattern == pattern, r
    assert r.reason.startswith("model p=") and "top n-grams: " in r.reason


def test_victim_words_do_not_hide_a_recovery_ad_the_model_found(scanner: Scanner) -> None:
    text = "被骗了的朋友别难过，我们团队帮你把钱要回来，成功再收费"
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
    kb, _ = read()
    assert kb is not None
    rows = [json.loads(x) for x in HELDOUT.read_text(encoding="utf-8").splitlines() if x.strip()]
    covered = {r["pattern"] for r in rows if r["alert"]}
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
