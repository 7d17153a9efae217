"""Find the money amount (in yuan) in a user's message.

People write amounts every way at once: 两千, 两千块, 2k, 2K, 2000元, 2,000, ¥3,000, 三万五,
1.5万, 5w, 八百, 500块钱. The same messages are full of numbers that are *not* amounts:
phone numbers, dates, verification codes, card numbers, times, counts ("转了3次"). The rule
here is conservative — a number counts as an amount only when something says it is money:

* a currency sign or word before it (¥, rmb, 人民币), or a money unit after it (元, 块, 块钱,
  k, w, 万, 千, 百 …), or
* a money verb just before it ("被骗了2000", "零钱少了500", "转了800"), for bare digits.

Numbers next to count or date units (次 个 张 天 年 月 日 号 岁 …), glued to ``-``/``/``/``:``
(dates, times), right after 验证码/码/电话/拨 (codes and phone numbers), or with 9+ digits
(card and phone numbers) are ignored. When several amounts appear, the largest is returned
(the bot uses it to say whether the loss reaches the 3,000-yuan line). Sub-yuan amounts
such as a 0.01-yuan "test transfer" return None: they carry no size information.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["extract_amount", "parse_chinese_number"]

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_CN_MAGS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000}

_MONEY_UNIT = r"块钱|块|元|圆|rmb|人民币|多块|多元|来块"
_COUNT_AFTER = re.compile(
    r"\s*(?:多|来|几)?(?:次|个|张|条|天|人|单|笔|遍|岁|倍|分钟|分(?!钱)|小时|周|星期|年|月|日|号|楼|层|点|位|"
    r"g|gb|m|%|折|斤|公斤|克|米|台|部|件|套|家|所|名|只|项|页|集|期|届|级|秒|码|字|度|代|手|"
    r"箱|桌|瓶|盒|袋|双|辆|间|份|本|杯|颗|粒|头|片|支|根|桶|罐|批|趟|群)"
)
_AGE_BEFORE = re.compile(r"(?:都|已经|今年|快|我)$")
_NOT_MONEY_BEFORE = re.compile(
    r"(?:验证码|校验码|动态码|密码|码|code|电话|手机|手机号|热线|拨打|拨|打|尾号|卡号|号码|编号|"
    r"订单|qq|微信号|账号|第)[^\d]{0,3}$"
)
_MONEY_BEFORE = re.compile(
    r"(?:骗|转|少|扣|付|花|损失|借|充|交|赔|刷|汇|给了|给他|提现|余额|零钱|价|费|收了|赚|亏|共|"
    r"一共|总共|合计|大概|大约|约|差不多|被盗|盗刷|丢了|没了|退|还|打钱|打款|垫|投了|投资|存了|押金|"
    r"订金|定金|金额|钱|就|才|只有|不到|没到|低于|不够|不满)[^\d]{0,4}$"
)

_MONEY_AFTER = re.compile(r"\s*(?:都|全)?(?:转|汇|付|充)(?:给|到|过去|进去|出去)|\s*(?:能|够|可以|就能|才能)(?:立案|立上案|报案)")
"""A bare number that is then sent somewhere ("我把12600转给那个供货商了"), or asked about as a
case ("18000能立案不"), is money."""

_ARABIC_RE = re.compile(
    r"(?P<cur>[¥$]|rmb|人民币)?\s*"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"\s*(?P<mag>万|w|k|千|百)?(?P<tail>[1-9一二两三四五六七八九](?![\d万千百]))?"
    rf"\s*(?P<unit>{_MONEY_UNIT})?"
)
_CN_RE = re.compile(
    r"(?P<cn>[一二两俩三四五六七八九十][零〇一二两三四五六七八九十拾百佰千仟万]*)"
    rf"(?P<unit>{_MONEY_UNIT})?"
)
_MAGS = {"万": 10000, "w": 10000, "k": 1000, "千": 1000, "百": 100}


def parse_chinese_number(s: str) -> int | None:
    """一百五 → 150, 三万五 → 35000, 两千零五 → 2005, 八百 → 800; None if not a number.

    A digit after the last unit is read the colloquial way: 三万五 is 35,000 and 两千五 is
    2,500 (one step below the unit), unless 零 stands between them (两千零五 = 2,005).
    """
    total = section = num = 0
    last_mag = 0
    after_zero = False
    seen = False
    for ch in s:
        if ch in _CN_DIGITS:
            if ch in "零〇":
                after_zero = True
                continue
            num = _CN_DIGITS[ch]
            seen = True
        elif ch in _CN_MAGS:
            mag = _CN_MAGS[ch]
            section += (num or (1 if mag == 10 else 0)) * mag
            if mag == 10 and not num:
                seen = True
            num, last_mag, after_zero = 0, mag, False
        elif ch == "万":
            section += num
            total += section * 10000
            section = num = 0
            last_mag, after_zero = 10000, False
        else:
            return None
    if not seen:
        return None
    if num:
        if last_mag >= 100 and not after_zero:
            num *= last_mag // 10
        section += num
    return total + section


def _to_yuan(value: float) -> int | None:
    return int(round(value)) if value >= 1 else None


def extract_amount(text: str) -> int | None:
    """The largest money amount (whole yuan) mentioned in ``text``, or None."""
    s = unicodedata.normalize("NFKC", text).lower()
    found: list[int] = []

    for m in _ARABIC_RE.finditer(s):
        raw = m.group("num")
        start = m.start("num")
        digits = raw.replace(",", "").split(".")[0]
        before = s[max(0, start - 8) : start]
        prev_ch = s[start - 1] if start else " "
        next_ch = s[m.end("num")] if m.end("num") < len(s) else " "
        if prev_ch in "-/:" or next_ch in "-/:" or (prev_ch.isascii() and prev_ch.isalpha()):
            continue  # dates, times, codes glued to letters
        cur, mag, tail, unit = m.group("cur"), m.group("mag"), m.group("tail"), m.group("unit")
        if "," not in raw and len(digits) >= 9:
            continue  # card, phone or ID numbers
        if not mag and not unit and _COUNT_AFTER.match(s, m.end("num")):
            continue
        if not (cur or mag or unit or "," in raw):
            if (
                len(digits) >= 7
                or _NOT_MONEY_BEFORE.search(before)
                or not (_MONEY_BEFORE.search(before) or _MONEY_AFTER.match(s, m.end()))
            ):
                continue
        elif not (cur or unit) and _NOT_MONEY_BEFORE.search(before):
            continue
        value = float(raw.replace(",", ""))
        if mag:
            factor = _MAGS[mag]
            value *= factor
            if tail:
                t = int(tail) if tail.isdigit() else _CN_DIGITS[tail]
                value += t * factor // 10
        elif tail:
            continue  # "3五": not a number we understand
        amount = _to_yuan(value)
        if amount is not None:
            found.append(amount)

    for m in _CN_RE.finditer(s):
        cn, unit = m.group("cn"), m.group("unit")
        start = m.start()
        if start and (s[start - 1] in "几好十百千万" or s[start - 1].isdigit()):
            continue  # 几千, 好几万, or part of a mixed number handled above
        has_mag = any(ch in "十拾百佰千仟万" for ch in cn)
        if not unit:
            if not has_mag or _COUNT_AFTER.match(s, m.end()):
                continue
            if s[m.end() : m.end() + 1] in ("分", "几"):
                continue  # 十分 = "very", 十几个 = "a dozen or so"
            if _AGE_BEFORE.search(s[max(0, start - 3):start]) and s.startswith("多了", m.end()):
                continue  # "我都五十多了": an age
        cn_value = parse_chinese_number(cn)
        if cn_value:
            found.append(cn_value)

    return max(found) if found else None
