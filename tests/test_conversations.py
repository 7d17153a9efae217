"""Multi-turn conversations through the real pipeline, scored turn by turn (issue 10).

Both files were written by a helper who never saw the code, the Q&A paraphrases or the
examples, from scenarios.md and the knowledge brief (45 conversations each, per-turn checks):

* ``dev_conversations.jsonl`` — the set the turn model was iterated on;
* ``blind_conversations.jsonl`` — held out: never read while building, never used for
  training or matching (kb check's examples and qa.yaml paraphrases do not contain its
  sentences). Its first run on the finished bot is the figure the README reports.

The checks are the harness's (``bot.conversations``): every ``must_any`` group has one
alternative in the turn's replies joined, no ``must_not`` substring, the expected scenario
when one is given, and never a fallback answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.conversations import (
    Turn,
    check_turn,
    format_report,
    load_conversations,
    run_conversations,
)
from bot.pipeline import Pipeline
from knowledge.render import render_text
from knowledge.schema import KnowledgeBase

DATA = Path(__file__).resolve().parent / "data"

ISSUE_TARGET = 0.90
"""Issue 10's done-when: at least 90 % of the held-out turns pass."""

BLIND_FLOOR = 0.70
"""What the held-out set must not fall below: a regression guard just under the measured
73.2 % (the first untouched run gave 72.8 %)."""

DEV_FLOOR = 0.95


def test_the_conversation_sets_are_big_enough() -> None:
    for name in ("blind_conversations.jsonl", "dev_conversations.jsonl"):
        convs = load_conversations(DATA / name)
        assert len(convs) >= 40 and all(c.turns for c in convs)
        assert sum(len(c.turns) for c in convs) >= 200


def test_turn_checks_can_fail(kb: KnowledgeBase) -> None:
    turn = Turn(text="x", must_any=[["110", "报警"], ["截图"]], must_not=["没看懂"], scenario="fraud_victim")
    assert check_turn(kb, turn, "打110，截图保存", "fraud_victim") == []
    assert check_turn(kb, turn, "打110", "fraud_victim")  # a group with no alternative present
    assert check_turn(kb, turn, "打110，截图保存，没看懂", "fraud_victim")  # a forbidden substring
    assert check_turn(kb, turn, "打110，截图保存", "scam_check")  # the wrong scenario
    assert check_turn(kb, Turn(text="x"), render_text(kb, "unclear_midflow", title="t"))  # a fallback
    assert check_turn(kb, Turn(text="x"), "")  # no reply


async def test_dev_conversations(pipeline: Pipeline) -> None:
    report = await run_conversations(pipeline, load_conversations(DATA / "dev_conversations.jsonl"))
    assert report.turn_rate >= DEV_FLOOR, format_report(report)


async def test_blind_conversations_do_not_regress(pipeline: Pipeline) -> None:
    report = await run_conversations(pipeline, load_conversations(DATA / "blind_conversations.jsonl"))
    assert report.turn_rate >= BLIND_FLOOR, format_report(report, show_failures=False)


@pytest.mark.xfail(strict=True, reason="issue 10 target (90 % of held-out turns) not reached yet; "
                   "see the README's Understanding section for the measured figure")
async def test_blind_conversations_reach_the_issue_target(pipeline: Pipeline) -> None:
    report = await run_conversations(pipeline, load_conversations(DATA / "blind_conversations.jsonl"))
    assert report.turn_rate >= ISSUE_TARGET, format_report(report, show_failures=False)
