"""The free-text matcher: accuracy on held-out phrasings, multi-problem order, fallback rule.

Accuracy is measured on two sets the matcher never trains on: tests/data/heldout_intents.jsonl
(written separately from the training examples) and the shared dev set
(shared/eval/dev_intents.jsonl, beside the repository). Speed is not asserted here; see
``python -m bot bench``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.evaluate import evaluate_intents, format_intent_report
from knowledge.loader import read
from knowledge.matcher import (
    AMBIGUITY_GAP,
    THRESHOLD,
    URGENCY,
    Classification,
    Matcher,
    normalize,
)
from knowledge.schema import SCENARIO_IDS
from tests.helpers import shared_eval_file

HERE = Path(__file__).resolve().parent
HELDOUT = HERE / "data" / "heldout_intents.jsonl"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    kb, _ = read()
    assert kb is not None, "knowledge base did not parse"
    return Matcher.from_kb(kb)


def _texts(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]




# ----------------------------------------------------------------------------- accuracy


def test_heldout_accuracy(matcher: Matcher) -> None:
    report = evaluate_intents(matcher, HELDOUT)
    assert report.total >= 200
    per_class = {c.scenario: c.total for c in report.per_class}
    assert all(per_class[sid] >= 25 for sid in SCENARIO_IDS), per_class
    assert report.accuracy >= 0.95, format_intent_report(report)


def test_dev_accuracy(matcher: Matcher) -> None:
    report = evaluate_intents(matcher, shared_eval_file("dev_intents.jsonl"))
    assert report.accuracy >= 0.95, format_intent_report(report)


def test_examples_are_not_the_heldout_set() -> None:
    kb, _ = read()
    assert kb is not None
    training = {normalize(t) for lines in kb.examples.values() for t in lines}
    leaked = [t for t in _texts(HELDOUT) if normalize(t) in training]
    assert not leaked, leaked


def test_every_scenario_has_enough_examples() -> None:
    kb, _ = read()
    assert kb is not None
    for sid in SCENARIO_IDS:
        assert len(kb.examples.get(sid, [])) >= 120, sid


def test_exported_scorer_agrees_with_sklearn(matcher: Matcher) -> None:
    assert matcher.check_against_sklearn(_texts(HELDOUT)) == 0


# ----------------------------------------------------------------------------- shape


def test_classification_shape(matcher: Matcher) -> None:
    c = matcher.classify("我的微信被盗了，好友都收到借钱消息")
    assert isinstance(c, Classification)
    assert c.scenario == "account_stolen"
    assert 0.0 <= c.confidence <= 1.0
    assert [sid for sid, _ in c.ranked] and {sid for sid, _ in c.ranked} == set(SCENARIO_IDS)
    probs = [p for _, p in c.ranked]
    assert probs == sorted(probs, reverse=True)
    assert abs(sum(probs) - 1.0) < 1e-6
    assert c.confidence == pytest.approx(dict(c.ranked)[c.scenario])


@pytest.mark.parametrize(
    ("text", "scenario"),
    [
        ("离婚以后孩子的抚养费怎么算", "out_of_scope"),
        ("单位不给交五险一金可以去哪投诉", "out_of_scope"),
        ("骑车被汽车撞了对方逃逸了", "out_of_scope"),
        ("房东把我的押金扣了一大半", "out_of_scope"),
        ("奶奶的存款怎么继承", "out_of_scope"),
        ("今天适合出门吗", "out_of_scope"),
        ("我的ＷＸ号被人盗了", "account_stolen"),
        ("V信零钱被转走了两千块", "wallet_loss"),
        ("有人高价收我的vx号", "account_rental"),
    ],
)
def test_typical_phrasings(matcher: Matcher, text: str, scenario: str) -> None:
    assert matcher.classify(text).scenario == scenario


def test_normalize_folds_spellings() -> None:
    assert normalize("Ｖ信 被盗了！！") == "微信被盗了"
    assert normalize("wx零钱") == normalize("威信零钱") == "微信零钱"
    assert normalize("帐号") == "账号"
    assert normalize("¥3,000") == "3000"


# ----------------------------------------------------------------------------- several problems


def test_multi_problem_most_urgent_first(matcher: Matcher) -> None:
    c = matcher.classify("我的微信被盗了，零钱也被转走了两千")
    assert c.scenario == "wallet_loss"
    assert c.also == ["account_stolen"]

    c = matcher.classify("微信号被盗了，而且现在有人让我把验证码发给他")
    assert c.scenario == "scam_check"
    assert "account_stolen" in c.also

    c = matcher.classify("我被骗了三千块，现在对方又说交500解冻费就退给我")
    assert c.scenario == "scam_check"
    assert "fraud_victim" in c.also


def test_also_is_in_urgency_order(matcher: Matcher) -> None:
    c = matcher.classify("有人要租我的微信号，还有我的零钱少了500，另外我的身份证信息好像泄露了")
    rank = {sid: i for i, sid in enumerate(URGENCY)}
    assert c.also == sorted(c.also, key=rank.__getitem__)
    assert c.scenario not in c.also
    assert {"account_rental", "info_leak"} <= {c.scenario, *c.also}


def test_back_story_does_not_take_the_lead(matcher: Matcher) -> None:
    c = matcher.classify("我的微信被盗了，骗子用它向我朋友借钱，我朋友被骗了3000")
    assert c.scenario == "account_stolen"


def test_single_problem_has_no_also(matcher: Matcher) -> None:
    assert matcher.classify("零钱里的钱不知道被谁转走了").also == []


# ----------------------------------------------------------------------------- fallback rule


@pytest.mark.parametrize("text", ["asdfghjkl", "😀😀😀", "。。。", "随便说说", "qwerty uiop", "哦哦哦哦"])
def test_gibberish_is_ambiguous(matcher: Matcher, text: str) -> None:
    assert matcher.classify(text).ambiguous


def test_clear_messages_are_not_ambiguous(matcher: Matcher) -> None:
    for text in ["微信号被人盗了怎么找回", "银行卡被冻结了怎么解冻", "有人出钱租我的微信号"]:
        assert not matcher.classify(text).ambiguous, text


def test_fallback_constants_follow_rasa() -> None:
    assert 0.125 < THRESHOLD < 0.6
    assert AMBIGUITY_GAP == pytest.approx(0.1)


# ----------------------------------------------------------------------------- explain


def test_explain_names_features(matcher: Matcher) -> None:
    text = "微信被盗了怎么办"
    why = matcher.explain(text, top=5)
    assert 0 < len(why) <= 5
    folded = normalize(text)
    for feature, scenario, weight in why:
        assert scenario == "account_stolen"
        assert weight > 0
        assert feature in folded
    weights = [w for _, _, w in why]
    assert weights == sorted(weights, reverse=True)
    assert any("盗" in f for f, _, _ in why)


def test_explain_other_scenario(matcher: Matcher) -> None:
    why = matcher.explain("微信被盗了，零钱也没了", scenario="account_stolen")
    assert why and all(s == "account_stolen" for _, s, _ in why)
