"""Multi-turn conversations through the real pipeline, scored turn by turn (issue 10).

Every file was written by a helper who never saw the code, the Q&A paraphrases or the
examples, from scenarios.md and the knowledge brief (per-turn checks):

* ``dev_conversations.jsonl``, ``dev2`` … ``dev20_conversations.jsonl`` — the sets the turn model
  was built on, in rounds: each new set was first run untouched (the figure the README reports
  as "first run"), then its failures were studied and fixed in general ways;
* ``blind_conversations.jsonl`` and ``blind2_conversations.jsonl`` — held out: never read while
  building, never used for training or matching (kb check's examples and qa.yaml paraphrases do
  not contain their sentences); only their aggregate figures were ever looked at.

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

BLIND_FLOOR = 0.85
"""What the held-out set must not fall below: a regression guard under the measured figure
(see the README's Understanding section)."""

BLIND2_FLOOR = 0.80
"""The same for the second held-out set, written in the second round (first run: 74.8 %)."""

HELD_OUT = ("blind_conversations.jsonl", "blind2_conversations.jsonl")


def _sets(first: int, last: int) -> tuple[str, ...]:
    return tuple(f"dev{n}_conversations.jsonl" for n in range(first, last + 1))


DEV_FLOORS: dict[str, float] = {
    "dev_conversations.jsonl": 0.95,
    **dict.fromkeys(_sets(2, 11), 0.90),  # studied over several rounds
    **dict.fromkeys(_sets(12, 17), 0.80),  # rounds 4 and 5, studied for one round (first runs 73–84 %)
    **dict.fromkeys(_sets(18, 20), 0.70),  # round 6, fourth session (first runs 59–65 %)
    **dict.fromkeys(_sets(21, 23), 0.70),  # round 7, fifth session (first runs 72–83 %; dev23 not studied)
}
"""Each dev set's floor, under its measured figure: a guard against undoing a fix."""
DEV_SETS = tuple(DEV_FLOORS)


def test_the_conversation_sets_are_big_enough() -> None:
    for name in (*HELD_OUT, *DEV_SETS):
        convs = load_conversations(DATA / name)
        assert len(convs) >= 30 and all(c.turns for c in convs)
        assert sum(len(c.turns) for c in convs) >= 170  # 30 conversations of about 6 turns
    for name in HELD_OUT:
        assert len(load_conversations(DATA / name)) >= 40


def test_no_held_out_sentence_is_in_the_knowledge_base(kb: KnowledgeBase) -> None:
    """The held-out sets stay held out: none of their user turns is a paraphrase, a command or
    social phrasing, or a scenario example (compared without spaces and punctuation)."""
    def squash(text: str) -> str:
        return "".join(ch for ch in text if ch.isalnum())

    known = {squash(p) for q in kb.qa.values() for p in q.paraphrases}
    known |= {squash(x) for lines in kb.examples.values() for x in lines}
    if kb.words is not None:
        known |= {squash(x) for lines in kb.words.command_phrases.values() for x in lines}
        known |= {squash(x) for lines in kb.words.social.values() for x in lines}
    for name in HELD_OUT:
        texts = {squash(t.text) for c in load_conversations(DATA / name) for t in c.turns}
        leaked = [t for t in texts if len(t) >= 6 and t in known]
        assert not leaked, f"{len(leaked)} held-out sentences of {name} are in the knowledge base"


def test_turn_checks_can_fail(kb: KnowledgeBase) -> None:
    turn = Turn(text="x", must_any=[["110", "报警"], ["截图"]], must_not=["没看懂"], scenario="fraud_victim")
    assert check_turn(kb, turn, "打110，截图保存", "fraud_victim") == []
    assert check_turn(kb, turn, "打110", "fraud_victim")  # a group with no alternative present
    assert check_turn(kb, turn, "打110，截图保存，没看懂", "fraud_victim")  # a forbidden substring
    assert check_turn(kb, turn, "打110，截图保存", "scam_check")  # the wrong scenario
    assert check_turn(kb, Turn(text="x"), render_text(kb, "unclear_midflow", title="t"))  # a fallback
    assert check_turn(kb, Turn(text="x"), "")  # no reply


@pytest.mark.parametrize("name", DEV_SETS)
async def test_dev_conversations(pipeline: Pipeline, name: str) -> None:
    report = await run_conversations(pipeline, load_conversations(DATA / name))
    assert report.turn_rate >= DEV_FLOORS[name], format_report(report)


@pytest.mark.parametrize(("name", "floor"), [(HELD_OUT[0], BLIND_FLOOR), (HELD_OUT[1], BLIND2_FLOOR)])
async def test_held_out_conversations_do_not_regress(pipeline: Pipeline, name: str, floor: float) -> None:
    report = await run_conversations(pipeline, load_conversations(DATA / name))
    assert report.turn_rate >= floor, format_report(report, show_failures=False)


async def test_blind_conversations_reach_the_issue_target(pipeline: Pipeline) -> None:
    """Issue 10's done-when, on the first held-out set (reached in the fifth session: 229 of
    254 turns, with no turn to spare — a change that loses one held-out turn fails here)."""
    report = await run_conversations(pipeline, load_conversations(DATA / "blind_conversations.jsonl"))
    assert report.turn_rate >= ISSUE_TARGET, format_report(report, show_failures=False)
