"""The fallback decision as its own step: each rule fires on its own figures, the reason
names it, and the DEBUG line the matcher logs carries no user text."""

from __future__ import annotations

import logging

import pytest

from knowledge.fallback import AMBIGUITY_GAP, MIN_COVERAGE, THRESHOLD, decide
from knowledge.loader import read
from knowledge.matcher import Matcher


def test_clear_guess_is_not_ambiguous() -> None:
    ambiguous, reason = decide(0.9, 0.05, 0.8)
    assert not ambiguous and reason.startswith("clear")


def test_each_rule_fires_and_says_which() -> None:
    ambiguous, reason = decide(THRESHOLD - 0.01, 0.0, 1.0)
    assert ambiguous and "low confidence" in reason
    assert "toss-up" in decide(0.5, 0.5 - AMBIGUITY_GAP / 2, 1.0)[1]
    assert decide(0.5, 0.5 - AMBIGUITY_GAP / 2, 1.0)[0]
    ambiguous, reason = decide(0.95, 0.01, MIN_COVERAGE / 2)
    assert ambiguous and "coverage" in reason


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    kb, _ = read()
    assert kb is not None
    return Matcher.from_kb(kb)


def test_debug_log_has_the_reason_but_not_the_text(
    matcher: Matcher, caplog: pytest.LogCaptureFixture
) -> None:
    text = "我的微信号13800138000被盗了"
    with caplog.at_level(logging.DEBUG, logger="knowledge.matcher"):
        result = matcher.classify(text)
    lines = [r.getMessage() for r in caplog.records if r.name == "knowledge.matcher"]
    assert any(line.startswith("fallback: ") for line in lines)
    assert result.ambiguous == any("clear" not in line for line in lines)
    assert not any("13800138000" in line or "微信" in line for line in lines)
