"""Text normalisation and clause splitting, shared by the scenario matcher and the scanner.

Why a module of its own: the same folding (full-width ↔ half-width, ``wx``/``V信``/``威信`` →
微信, 帐 → 账, numbers → ``0``) must feed training, inference and the group scanner alike,
and a message's clauses ("号被盗了，零钱也被转走了") are found on that folded text. Nothing
here knows about scenarios or probabilities.
"""

from __future__ import annotations

import re
from functools import lru_cache

from knowledge.normalize import fold as fold_obfuscation

NGRAM_RANGE = (1, 2)
"""Character unigrams and bigrams (best in cross-validation on the examples). The fast
scorer (``Matcher._lookup``) looks up exactly these two sizes."""

CLAUSE_MIN_CHARS = 4
"""Clauses shorter than this (after normalisation) carry too little text to classify."""


_LATIN_ALIASES: tuple[tuple[str, str], ...] = (
    (r"wx信|微x", "微信"),
    (r"(?<![a-z])(?:wechat|weixin|wei\s*xin|w\s*x|v\s*x)(?![a-z])", "微信"),
    (r"(?<![a-z])v(?:信|心)", "微信"),
    (r"(?<![a-z0-9])v(?![a-z0-9])", "微信"),
    (r"(?<![a-z])zfb(?![a-z])", "支付宝"),
    (r"(?<![a-z])yhk(?![a-z])", "银行卡"),
    (r"(?<![a-z])sfz(?![a-z])", "身份证"),
    (r"(?<![a-z])yzm(?![a-z])", "验证码"),
    (r"(?<![a-z])q(?=号)", "qq"),
)
"""Spellings with Latin letters: WeChat's nicknames and pinyin initials."""

_CJK_ALIASES: dict[str, str] = {
    "威信": "微信",
    "薇信": "微信",
    "维信": "微信",
    "徽信": "微信",
    "微心": "微信",
    "扣扣": "qq",
    "企鹅号": "qq",
    "帐号": "账号",
    "帐户": "账户",
    "转帐": "转账",
    "肿么办": "怎么办",
    "怎么半": "怎么办",
    "咋办": "怎么办",
    "咋整": "怎么办",
    "咋弄": "怎么办",
    "怎么弄": "怎么办",
    "冻洁": "冻结",
    "骗紫": "骗子",
}
"""Homophones, the older 帐 spelling and common typos, folded to one form."""

_LATIN_RE = re.compile(r"[a-z]")
_LATIN_ALIAS_RE = re.compile("|".join(f"({rx})" for rx, _ in _LATIN_ALIASES))
_LATIN_ALIAS_OUT = tuple(out for _, out in _LATIN_ALIASES)
_CJK_ALIAS_RE = re.compile("|".join(sorted(_CJK_ALIASES, key=len, reverse=True)))
_DROP_RE = re.compile(r"[^\w.%]+|_|(?<!\d)\.|\.(?!\d)")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_CN_AMOUNT_RE = re.compile(r"[零一二两三四五六七八九十百千万几]+(?=[块元])")


def _latin_alias(m: re.Match[str]) -> str:
    return _LATIN_ALIAS_OUT[(m.lastindex or 1) - 1]


def _cjk_alias(m: re.Match[str]) -> str:
    return _CJK_ALIASES[m.group(0)]


@lru_cache(maxsize=4096)
def prenormalize(text: str) -> str:
    """Obfuscation folded (``knowledge.normalize.fold``: NFKC, lower case, homoglyphs,
    traditional → simplified, pinyin of known terms, 薇信/V❤ …), then the matcher's own
    aliases and typos; punctuation still in place."""
    s = fold_obfuscation(text)
    if _LATIN_RE.search(s) is not None:
        s = _LATIN_ALIAS_RE.sub(_latin_alias, s)
    return _CJK_ALIAS_RE.sub(_cjk_alias, s)


def normalize(text: str) -> str:
    """Canonical form shared by the matcher and the group scanner (numbers kept).

    Full-width → half-width, lower case, wx/vx/V信/威信 → 微信 (and the other
    ``_LATIN_ALIASES`` / ``_CJK_ALIASES`` spellings), then every space and punctuation
    mark removed, except a decimal point between digits and ``%``.
    """
    return _DROP_RE.sub("", prenormalize(text))


def fold_numbers(text: str) -> str:
    """2000元 / 3,000 / 1.5万 / 两千块 → 0元 / 0 / 0万 / 0块 (classifier features only)."""
    if _HAS_NUMBER_RE.search(text) is None:
        return text
    s = _NUMBER_RE.sub("0", text)
    s = _CN_AMOUNT_RE.sub("0", s)
    return s.replace("%", "")


_HAS_NUMBER_RE = re.compile(r"[\d%块元]")


def _grams(s: str, lo: int = NGRAM_RANGE[0], hi: int = NGRAM_RANGE[1]) -> list[str]:
    """Character n-grams of a folded string."""
    n_s = len(s)
    out: list[str] = []
    for n in range(lo, hi + 1):
        out.extend(s[i : i + n] for i in range(n_s - n + 1))
    return out


def analyzer(text: str) -> list[str]:
    """The feature extractor used for training and inference alike."""
    return _grams(pieces(text)[0])


_SPLIT_BEFORE = r"而且|并且|另外|此外|以及|顺便问|再问一下|现在又"
_ADDITIVE = rf"{_SPLIT_BEFORE}|还有|同时|加上|然后"
_CLAUSE_MARK_RE = re.compile(
    rf"[,，。！!？?；;：:、\n\r|]+|(?<!\d)\.|\.(?!\d)|\s{{2,}}|(?=(?:{_SPLIT_BEFORE}))"
)
"""Clause boundaries: punctuation, a run of spaces, or just before an unambiguous additive
connector (not 还有/同时, which also mean "still has"/"at the same time" inside a clause)."""
_PLAIN_RE = re.compile(r"[^\W_]*")
_CONNECTOR_RE = re.compile(_SPLIT_BEFORE)
_DROP_KEEP_MARK_RE = re.compile(r"[^\w.%|]+|_|(?<!\d)\.|\.(?!\d)")
_ADDITIVE_RE = re.compile(rf"(?:{_ADDITIVE})|.{{0,4}}[也又]")
"""A clause that adds something ("而且…", "零钱也…", "对方又…"): the user is listing a
second problem, not telling the back-story of the first."""


def pieces(text: str) -> tuple[str, list[tuple[int, int, bool]]]:
    """(folded whole message, [(start, end, introduced as an addition)] of its clauses).

    The whole message is what the model is trained on: ``normalize`` with numbers folded.
    Clause spans index into it; they are only returned when there are at least two.
    """
    pre = fold_numbers(prenormalize(text))
    if _PLAIN_RE.fullmatch(pre) is not None and _CONNECTOR_RE.search(pre) is None:
        return pre, []  # letters and digits only, one clause: nothing to clean or split
    marked = _DROP_KEEP_MARK_RE.sub("", _CLAUSE_MARK_RE.sub("|", pre))
    if "|" not in marked:
        return marked, []
    parts = [p for p in marked.split("|") if p]
    spans: list[tuple[int, int, bool]] = []
    pos = 0
    for n, part in enumerate(parts):
        size = len(part)
        if size >= CLAUSE_MIN_CHARS:
            spans.append((pos, pos + size, n > 0 and _ADDITIVE_RE.match(part) is not None))
        pos += size
    return "".join(parts), (spans if len(spans) > 1 else [])

