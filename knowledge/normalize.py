"""Undo the ways people disguise words in chat, before anything tries to match them.

Scam ads dodge keyword rules with full-width letters (ｖｘ), look-alike letters from other
scripts (Cyrillic х for x), traditional characters (兼職刷單), homophones (薇信, 扣扣), pinyin
(jia weixin), and spaces, dots or emoji between the characters (刷 💰 单). The group scanner and
the intent matcher both call this module so that they see one canonical spelling.

Two functions, both pure (the tables are read once, at import, from
``knowledge/data/spellings.yaml`` — that file is knowledge a maintainer tunes, not code):

* ``normalize(text)`` — the canonical form: every fold below, lower case, then every space,
  punctuation mark and emoji removed, except a decimal point between digits and ``%``.
  ``normalize("加 薇❤信：abc123") == "加微信abc123"``.
* ``fold(text)`` — the same folds but clause punctuation (，。！？；：、 and a double space or a
  newline) kept, for callers that split a message into clauses. Separators *inserted between
  Chinese characters* (spaces, emoji, symbols, zero-width characters) are removed here too.

The folds, in order: NFKC (full-width → half-width, ⓥ/𝐯/① → v/v/1), lower case, homoglyphs,
traditional → simplified (OpenCC ``t2s``, the project's own conversion tables), symbol aliases
(➕ → 加), nicknames (薇：abc → 微信abc, 企鹅 → qq), pinyin of known terms (pypinyin computes them: "shua dan" → 刷单), Latin aliases
(vx/wx/V❤ → 微信, Q: → qq), then the CJK variants (威信/薇信 → 微信, 帐号 → 账号).

Cost: a few microseconds per message; ``python -m knowledge.normalize`` prints the figure on
the group training lines.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import opencc
import yaml
from pydantic import BaseModel, Field, field_validator
from pypinyin import Style, lazy_pinyin

SPELLINGS_PATH = Path(__file__).resolve().parent / "data" / "spellings.yaml"

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CLAUSE_PUNCT = "，。！？；：、,.!?;:|\n\r"
_MIN_PINYIN_SYLLABLES = 2


class LatinAlias(BaseModel):
    pattern: str
    """A regular expression over lower-cased text."""
    to: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        re.compile(v)
        return v


class Spellings(BaseModel):
    """The tables of ``spellings.yaml``."""

    homoglyphs: dict[str, str] = Field(default_factory=dict)
    symbols: dict[str, str] = Field(default_factory=dict)
    latin: list[LatinAlias] = Field(default_factory=list)
    nicknames: list[LatinAlias] = Field(default_factory=list)
    pinyin_terms: list[str] = Field(default_factory=list)
    variants: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("homoglyphs")
    @classmethod
    def _one_char(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k, out in v.items() if len(k) != 1 or len(out) != 1]
        if bad:
            raise ValueError(f"homoglyphs map one character to one character: {bad}")
        return v

    @field_validator("pinyin_terms")
    @classmethod
    def _several_syllables(cls, v: list[str]) -> list[str]:
        short = [t for t in v if len(t) < _MIN_PINYIN_SYLLABLES]
        if short:
            raise ValueError(f"pinyin terms need two or more characters: {short}")
        return v


def read_spellings(path: Path = SPELLINGS_PATH) -> Spellings:
    with path.open(encoding="utf-8") as fh:
        return Spellings.model_validate(yaml.safe_load(fh) or {})


def _alternation(keys: list[str]) -> re.Pattern[str] | None:
    """One regex matching any key literally, longest first (so 企鹅号 wins over 企鹅)."""
    if not keys:
        return None
    return re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))


def _pinyin_regex(term: str) -> str:
    """``shua[sep]{0,3}dan`` for 刷单: the syllables together or apart."""
    syllables = lazy_pinyin(term, style=Style.NORMAL)
    return r"[^a-z0-9]{0,3}".join(re.escape(s) for s in syllables)


class Normalizer:
    """The compiled tables; ``normalize`` and ``fold`` below use one built from the yaml."""

    def __init__(self, spellings: Spellings) -> None:
        self._homoglyphs = str.maketrans(spellings.homoglyphs)
        self._symbols = spellings.symbols
        self._symbol_re = _alternation(list(spellings.symbols))
        self._latin_re = re.compile("|".join(f"({a.pattern})" for a in spellings.latin)) if spellings.latin else None
        self._latin_out = tuple(a.to for a in spellings.latin)
        self._nick_re = (
            re.compile("|".join(f"({a.pattern})" for a in spellings.nicknames)) if spellings.nicknames else None
        )
        self._nick_out = tuple(a.to for a in spellings.nicknames)
        terms = sorted(spellings.pinyin_terms, key=len, reverse=True)
        self._pinyin_re = (
            re.compile("|".join(f"({_pinyin_regex(t)})" for t in terms)) if terms else None
        )
        self._pinyin_out = tuple(terms)
        self._variants = {v.lower(): canon for canon, vs in spellings.variants.items() for v in vs}
        self._variant_re = _alternation(list(self._variants))
        self._t2s = opencc.OpenCC("t2s")

    def _latin(self, m: re.Match[str]) -> str:
        return self._latin_out[(m.lastindex or 1) - 1]

    def _nick(self, m: re.Match[str]) -> str:
        return self._nick_out[(m.lastindex or 1) - 1]

    def _pinyin(self, m: re.Match[str]) -> str:
        return self._pinyin_out[(m.lastindex or 1) - 1]

    def _variant(self, m: re.Match[str]) -> str:
        return self._variants[m.group(0)]

    def _symbol(self, m: re.Match[str]) -> str:
        return self._symbols[m.group(0)]

    def _letters(self, text: str) -> str:
        """Every fold that works on the text with its separators still in place."""
        s = unicodedata.normalize("NFKC", text).lower().translate(self._homoglyphs)
        if not s.isascii():
            s = self._t2s.convert(s)
            if self._symbol_re is not None:
                s = self._symbol_re.sub(self._symbol, s)
        if _LATIN_RE.search(s) is not None and self._pinyin_re is not None:
            s = self._pinyin_re.sub(self._pinyin, s)
        if _LATIN_OR_DIGIT_RE.search(s) is not None and self._latin_re is not None:
            s = self._latin_re.sub(self._latin, s)
        if self._nick_re is not None and _NICK_TRIGGER_RE.search(s) is not None:
            s = self._nick_re.sub(self._nick, s)
        return s

    def _variants_of(self, s: str) -> str:
        return s if self._variant_re is None else self._variant_re.sub(self._variant, s)

    def normalize(self, text: str) -> str:
        return self._variants_of(_DROP_RE.sub("", self._letters(text)))

    def fold(self, text: str) -> str:
        return self._variants_of(_INSERTED_RE.sub(_drop_inserted, self._letters(text)))


_LATIN_RE = re.compile(r"[a-z]")
_LATIN_OR_DIGIT_RE = re.compile(r"[a-z0-9]")
_NICK_TRIGGER_RE = re.compile(r"[薇威维徽微企扣]")
_DROP_RE = re.compile(r"[^\w.%]+|_|(?<!\d)\.|\.(?!\d)")
_INSERTED_RE = re.compile(rf"(?<=[{_CJK}])(?:[^\w{_CLAUSE_PUNCT}]|_)+(?=[{_CJK}])")
"""A run of separators between two Chinese characters that holds no clause punctuation."""


def _drop_inserted(m: re.Match[str]) -> str:
    """Drop an inserted run, but keep a double space: writers use it as a clause break."""
    run = m.group(0)
    return run if "  " in run else ""


@lru_cache(maxsize=1)
def default() -> Normalizer:
    """The normaliser built from ``knowledge/data/spellings.yaml`` (read once)."""
    return Normalizer(read_spellings())


def normalize(text: str) -> str:
    """Canonical form for matching: folds applied, separators and punctuation removed."""
    return _normalize(text)


def fold(text: str) -> str:
    """Folds applied, clause punctuation kept (separators between Chinese characters removed)."""
    return _fold(text)


_normalize: Callable[[str], str] = default().normalize
_fold: Callable[[str], str] = default().fold


def _bench() -> None:
    """Print µs per message over the group training lines (a figure, not a test)."""
    import time

    lines = [
        ln.partition("\t")[2] or ln
        for name in ("ads.txt", "benign.txt")
        for ln in (SPELLINGS_PATH.parent / "group" / name).read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    for fn in (normalize, fold):
        fn(lines[0])
        rounds = 5
        start = time.perf_counter()
        for _ in range(rounds):
            for line in lines:
                fn(line)
        per = (time.perf_counter() - start) / (rounds * len(lines)) * 1e6
        mean = sum(map(len, lines)) / len(lines)
        print(f"{fn.__name__}: {per:.1f} µs per message ({len(lines)} messages, {mean:.0f} chars on average)")


if __name__ == "__main__":
    _bench()
