"""knowledge.normalize: each disguise scammers use folds back to the plain spelling."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from knowledge.normalize import Normalizer, Spellings, fold, normalize, read_spellings


@pytest.mark.parametrize(
    ("disguised", "plain"),
    [
        # full-width, enclosed and mathematical letters (NFKC)
        ("ｖｘ：９９８８", "微信9988"),
        ("ⓥⓧ 8899", "微信8899"),
        ("𝐯𝐱 8899", "微信8899"),
        # homoglyphs from Cyrillic and Greek
        ("vх 8899", "微信8899"),  # Cyrillic х
        ("ν信 8899", "微信8899"),  # Greek nu
        # traditional characters (OpenCC)
        ("兼職刷單，日結三百", "兼职刷单日结三百"),
        ("帳號出租", "账号出租"),
        # homophones and look-alike characters (spellings.yaml variants)
        ("加薇信", "加微信"),
        ("加威信了解", "加微信了解"),
        ("扣扣 2233445", "qq2233445"),
        ("支付包收款", "支付宝收款"),
        # Latin nicknames, emoji hearts, contact ids
        ("V❤：ab12", "微信ab12"),
        ("v💗 ab12", "微信ab12"),
        ("+vx 详聊", "微信详聊"),
        ("➕v 看", "加微信看"),
        ("Q:12345678", "qq12345678"),
        ("q 12345678", "qq12345678"),
        # pinyin, syllables together or apart
        ("jia weixin", "加微信"),
        ("shua dan ri jie", "刷单日结"),
        ("高价 shouka", "高价收卡"),
        # separators between characters: spaces, emoji, dots, zero-width
        ("刷 💰 单 日 结", "刷单日结"),
        ("收.卡.跑.分", "收卡跑分"),
        ("微\u200b信", "微信"),
        ("薇 信", "微信"),
    ],
)
def test_disguises_fold_back(disguised: str, plain: str) -> None:
    assert normalize(disguised) == plain


@pytest.mark.parametrize(
    "text",
    ["Q3财报出来了", "今天天气不错", "价格3.5%", "daily report", "好的，谢谢", "我为信用卡还款"],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    """Folds must not invent a 微信/qq where there is none."""
    norm = normalize(text)
    assert "微信" not in norm and "qq" not in norm


def test_numbers_and_percent_are_kept() -> None:
    assert normalize("¥3,000") == "3000"
    assert normalize("年化3.5%") == "年化3.5%"


def test_fold_keeps_clause_punctuation_but_drops_inserted_separators() -> None:
    assert fold("我微信被盗了，还有钱被转走") == "我微信被盗了,还有钱被转走"
    assert fold("刷 💰 单") == "刷单"
    assert fold("我微信被盗了  还有钱被转走") == "我微信被盗了  还有钱被转走"  # double space: a clause break


def test_tables_are_read_from_the_yaml() -> None:
    """A new spelling is a line in spellings.yaml, not code."""
    base = read_spellings()
    assert "薇信" in base.variants["微信"]
    custom = Normalizer(Spellings(variants={"微信": ["围脖信"]}))
    assert custom.normalize("加围脖信") == "加微信"
    assert custom.normalize("加薇信") == "加薇信"


def test_bad_tables_are_rejected() -> None:
    with pytest.raises(ValueError):
        Spellings(homoglyphs={"ab": "c"})
    with pytest.raises(ValueError):
        Spellings(pinyin_terms=["卡"])


@given(st.text(max_size=60))
def test_normalize_is_idempotent_and_never_crashes(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once
    assert fold(text) is not None
