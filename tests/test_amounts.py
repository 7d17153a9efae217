"""Amount extraction: yuan amounts in every spelling, and the numbers that are not amounts."""

from __future__ import annotations

import pytest

from knowledge.amounts import extract_amount, parse_chinese_number


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("两千", 2000),
        ("两千块", 2000),
        ("被骗了两千块怎么办", 2000),
        ("2k", 2000),
        ("2K", 2000),
        ("2000元", 2000),
        ("2,000", 2000),
        ("¥3,000", 3000),
        ("￥3,000", 3000),
        ("三万五", 35000),
        ("1.5万", 15000),
        ("5w", 50000),
        ("被骗了2.5w", 25000),
        ("八百", 800),
        ("500块钱", 500),
        ("零钱少了500", 500),
        ("被骗了 2000", 2000),
        ("一万二", 12000),
        ("两千五百块", 2500),
        ("两千零五元", 2005),
        ("1万5", 15000),
        ("一百五十元", 150),
        ("大概三千多", 3000),
        ("3000多块", 3000),
        ("一共转了3笔，共计12,500元", 12500),
        ("尾号1234的卡被扣了200元", 200),
        ("2024年3月5日被骗了6000", 6000),
        ("第3次被骗了300", 300),
        ("扣了9.9元", 10),
        ("给了他两千", 2000),
    ],
)
def test_amounts(text: str, amount: int) -> None:
    assert extract_amount(text) == amount


@pytest.mark.parametrize(
    "text",
    [
        "我的手机号13812345678",
        "验证码是123456",
        "验证码 4821 别告诉别人",
        "转了3次",
        "10个人被骗了",
        "2024年3月5日",
        "2024-03-05",
        "今天10:30接到电话",
        "卡号6222020200112233445",
        "拨打110",
        "打了95017",
        "我今年45岁",
        "十几个人",
        "十分着急",
        "好几万",
        "几千块",
        "千万别转钱",
        "万一被骗了",
        "0.01元",
        "加我微信abc123",
        "没有数字",
    ],
)
def test_not_amounts(text: str) -> None:
    assert extract_amount(text) is None


def test_largest_amount_wins() -> None:
    assert extract_amount("先转了500，后来又转了3000") == 3000


@pytest.mark.parametrize(
    ("cn", "value"),
    [
        ("十", 10),
        ("十五", 15),
        ("二十", 20),
        ("一百五", 150),
        ("三万五", 35000),
        ("两千零五", 2005),
        ("一千万", 10000000),
    ],
)
def test_parse_chinese_number(cn: str, value: int) -> None:
    assert parse_chinese_number(cn) == value


@pytest.mark.parametrize("text", ["我都五十多了 哪来的校园贷", "我妈今年六十多岁了", "他打了二十多次电话"])
def test_ages_and_counts_with_duo_are_not_money(text: str) -> None:
    assert extract_amount(text) is None


def test_money_with_duo_still_counts() -> None:
    assert extract_amount("被骗了五千多") == 5000 and extract_amount("转了三百多块") == 300


@pytest.mark.parametrize("text", ["订了20桌 买了30箱酒", "拿了两瓶水 三盒药", "他要了5份"])
def test_goods_counted_by_measure_words_are_not_money(text: str) -> None:
    """"买30箱酒" is a count of goods: read as 30 元 it got "30 元也值得报警"."""
    assert extract_amount(text) is None


@pytest.mark.parametrize("text,amount", [("让我先垫钱买30箱酒 我把12600转给那个供货商了", 12600),
                                         ("我把2000都转到他给的卡上了", 2000)])
def test_a_bare_number_sent_somewhere_is_money(text: str, amount: int) -> None:
    assert extract_amount(text) == amount
    assert extract_amount("第3次转给他") is None
