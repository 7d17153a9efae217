"""A character pre-screen for lists of regex rules: skip the rules a text cannot match.

The group scanner and ``match_patterns`` try ~126 rules (each a list of regexes that must all
match) on every message; almost none can match a given message, yet each try costs a Python
call and a regex search (≈ 35 µs a message in all). Most regexes need a character from a small
set: ``(注销|清空|清零)`` cannot match a text that has none of 注, 清. ``required_chars``
derives such a set from the regex's parse tree (``re._parser``, the parser ``re.compile``
itself uses), and ``CharScreen`` indexes every rule under the set of its most selective regex,
so one pass over the message's distinct characters yields the rules worth running.

Exact by construction: a rule is skipped only when one of its regexes provably cannot match
(no character of a set that every match must contain occurs anywhere in the text); a regex
whose set cannot be proved (``.``, negated classes, categories such as ``\\d``, lookarounds,
optional parts only, case-insensitive flags) gives no set, and a rule none of whose regexes
gives one is always run. The candidates come back in the rules' order, so the first match —
the pattern the group warning names — is unchanged. ``tests/test_literals.py`` checks the
screened and the full scan agree on every text of the group and conversation test sets.
"""

from __future__ import annotations

import re
import re._parser as sre  # the stdlib parser behind re.compile (typeshed has its stubs)
from collections.abc import Sequence
from typing import Any

_MAX_RANGE = 256
"""A character range wider than this ([一-龥]) is treated as "anything": no useful screen."""

Chars = frozenset[str]


def _in_set(items: list[tuple[Any, Any]]) -> Chars | None:
    """The characters a class ``[...]`` accepts, when it is a small positive set."""
    out: set[str] = set()
    for op, av in items:
        if op is sre.LITERAL:
            out.add(chr(av))
        elif op is sre.RANGE and av[1] - av[0] < _MAX_RANGE:
            out.update(chr(c) for c in range(av[0], av[1] + 1))
        else:  # NEGATE, CATEGORY, wide RANGE
            return None
    return frozenset(out)


def _node(op: Any, av: Any) -> Chars | None:
    """A set of characters one of which every match of this node contains, or None."""
    if op is sre.LITERAL:
        return frozenset(chr(av))
    if op is sre.IN:
        return _in_set(av)
    if op is sre.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags & re.IGNORECASE or del_flags:
            return None
        return _seq(sub)
    if op is sre.ATOMIC_GROUP:
        return _seq(av)
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, _high, sub = av
        return _seq(sub) if low >= 1 else None
    if op is sre.BRANCH:
        union: set[str] = set()
        for branch in av[1]:
            s = _seq(branch)
            if s is None:
                return None
            union |= s
        return frozenset(union)
    return None  # ANY, NOT_LITERAL, AT, ASSERT, ASSERT_NOT, GROUPREF …: nothing provable


def _seq(items: Any) -> Chars | None:
    """For a sequence every element is required: the smallest of their sets."""
    best: Chars | None = None
    for op, av in items:
        s = _node(op, av)
        if s is not None and (best is None or len(s) < len(best)):
            best = s
    return best


def required_chars(rx: re.Pattern[str]) -> Chars | None:
    """Characters one of which every text this regex matches contains (None: no such set)."""
    if rx.flags & re.IGNORECASE:
        return None
    s = _seq(sre.parse(rx.pattern, rx.flags))
    return s or None


class CharScreen:
    """For each text, the indices of the rules (sequences of regexes that must all match)
    that might match it, in order; rules without a provable set are always candidates."""

    def __init__(self, rules: Sequence[Sequence[re.Pattern[str]]]) -> None:
        always = 0
        by_char: dict[str, int] = {}
        for i, regexes in enumerate(rules):
            sets = [s for s in map(required_chars, regexes) if s is not None]
            if not sets:
                always |= 1 << i
                continue
            for c in min(sets, key=len):
                by_char[c] = by_char.get(c, 0) | 1 << i
        self._always = always
        self._by_char = by_char

    def candidates(self, text: str) -> list[int]:
        """Rule indices worth running on ``text``, ascending."""
        mask = self._always
        get = self._by_char.get
        for c in set(text):
            mask |= get(c, 0)
        out: list[int] = []
        while mask:
            low = mask & -mask
            out.append(low.bit_length() - 1)
            mask ^= low
        return out
