"""The scanner's character pre-screen (``knowledge.literals``) never skips a rule that matches.

The property that keeps every scan result unchanged: for any text, each rule all of whose
regexes match is among ``CharScreen.candidates``. Checked on every text of the group and
intent test sets, the conversation dev sets (user turns), the scanner's training lines, and on
random strings made of the rules' own characters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from knowledge.literals import CharScreen, required_chars
from knowledge.normalize import normalize
from knowledge.scanner import GROUP_DIR, read_group_examples
from knowledge.schema import KnowledgeBase
from tests.helpers import SHARED_EVAL

DATA = Path(__file__).resolve().parent / "data"
TEXT_FILES = ("blind_group.jsonl", "blind_group_v2.jsonl", "heldout_group.jsonl",
              "heldout_intents.jsonl", "blind_intents.jsonl")
CONVERSATION_FILES = ("dev_conversations.jsonl", "dev2_conversations.jsonl")


def _rules(kb: KnowledgeBase) -> list[list[re.Pattern[str]]]:
    return [[re.compile(rx) for rx in rule] for p in kb.patterns.values() for rule in p.rules if rule]


def _texts() -> list[str]:
    texts: list[str] = []
    for name in TEXT_FILES:
        for path in (DATA / name, SHARED_EVAL / name):
            if path.exists():
                texts += [json.loads(ln)["text"] for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    for name in ("dev_group.jsonl", "dev_intents.jsonl"):
        path = SHARED_EVAL / name
        if path.exists():
            texts += [json.loads(ln)["text"] for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    for name in CONVERSATION_FILES:
        for ln in (DATA / name).read_text(encoding="utf-8").splitlines():
            if ln.strip():
                texts += [t["user"] for t in json.loads(ln)["turns"]]
    ads, benign = read_group_examples(GROUP_DIR)
    return texts + [t for _, t in ads] + benign


def _full(rules: list[list[re.Pattern[str]]], text: str) -> list[int]:
    return [i for i, rule in enumerate(rules) if all(rx.search(text) for rx in rule)]


def test_screen_keeps_every_matching_rule_on_the_test_sets(kb: KnowledgeBase) -> None:
    rules = _rules(kb)
    screen = CharScreen(rules)
    texts = _texts()
    assert len(texts) > 2000
    matched = 0
    for text in texts:
        for form in (normalize(text), text):
            full = _full(rules, form)
            matched += bool(full)
            assert set(full) <= set(screen.candidates(form)), text
    assert matched > 300  # the sets do exercise the rules


def test_screen_skips_most_rules(kb: KnowledgeBase) -> None:
    """The point of the screen: a typical message leaves only a handful of rules to run."""
    rules = _rules(kb)
    screen = CharScreen(rules)
    assert all(any(required_chars(rx) for rx in rule) for rule in rules)
    sizes = [len(screen.candidates(normalize(t))) for t in _texts()[:500]]
    assert sum(sizes) / len(sizes) < len(rules) / 3


@pytest.mark.parametrize(("pattern", "expected"), [
    ("(注销|清空)", {"注", "清"}),
    ("a.{0,3}b", {"a"}),
    ("(ab)+", {"a"}),
    ("x?y*", None),
    (r"\d+元", {"元"}),
    ("[^a]b", {"b"}),
    ("(?i)abc", None),
    ("(?=x)", None),
    ("[0-9]", set("0123456789")),
])
def test_required_chars(pattern: str, expected: set[str] | None) -> None:
    got = required_chars(re.compile(pattern))
    assert got == (None if expected is None else frozenset(expected))


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_screen_keeps_rules_on_generated_matches(kb: KnowledgeBase, data: st.DataObject) -> None:
    """Texts built to match a rule (one generated match per regex, concatenated, with random
    text around): every rule that then matches is a candidate."""
    rules = _rules(kb)
    screen = CharScreen(rules)
    rule = data.draw(st.sampled_from(rules))
    text = "".join(data.draw(st.from_regex(rx)) for rx in rule)
    full = _full(rules, text)
    assert set(full) <= set(screen.candidates(text))
