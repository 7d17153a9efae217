"""The dialog step as a pure function: no server, no clock, no I/O."""

from __future__ import annotations

from dialogs.engine import Dialog
from dialogs.session import MAX_BACK, Session
from dialogs.understand import Command, Understood, command_index, parse_choice, parse_command
from knowledge.render import render
from knowledge.schema import SCENARIO_IDS, KnowledgeBase


def test_commands_and_choices_are_recognised(kb: KnowledgeBase) -> None:
    index = command_index(kb)  # the words live in knowledge/data/turns.yaml
    assert parse_command("菜单", index) is Command.menu
    assert parse_command(" 下一步！", index) is Command.next
    assert parse_command("法律依据？", index) is Command.law
    assert parse_command("原文", index) is Command.verbatim
    assert parse_command("我想知道要不要报警", index) is None
    assert parse_choice("２") == 2 and parse_choice("第三个") == 3 and parse_choice("选5") == 5
    assert parse_choice("2000") is None


def test_step_is_pure(kb: KnowledgeBase) -> None:
    d = Dialog(kb)
    s0 = Session()
    s1, r1 = d.step(s0, Understood(choice=1), now=100.0)
    assert s0 == Session()  # the input session is untouched
    assert s1.state == "scenario" and s1.scenario == SCENARIO_IDS[0] and s1.turns == 1
    s1b, r1b = d.step(s0, Understood(choice=1), now=100.0)
    assert (s1b, r1b) == (s1, r1)  # same input, same output


def test_every_state_answers_every_input(kb: KnowledgeBase) -> None:
    d = Dialog(kb)
    inputs = [Understood(empty=True), Understood(choice=9), Understood(choice=1), Understood(),
              *[Understood(command=c) for c in Command],
              Understood(scenario="wallet_loss", confidence=0.9),
              Understood(candidates=["wallet_loss", "fraud_victim"], confidence=0.4),
              Understood(flags=["reported"]), Understood(secrets=["code"]), Understood(personal=["mobile"])]
    sessions = [Session(), Session(state="menu"), Session(state="clarify", offered=["info_leak", "account_stolen"]),
                Session(state="scenario", scenario="fraud_victim", step=2),
                Session(state="resume", scenario="scam_check", step=1)]
    for s in sessions:
        for u in inputs:
            new, replies = d.step(s, u, now=1000.0)
            assert replies and all(r.strip() for r in replies), (s, u)
            assert len(new.model_dump_json()) < 1024


def test_back_history_is_bounded(kb: KnowledgeBase) -> None:
    d = Dialog(kb)
    s = Session()
    for _ in range(30):
        s, _ = d.step(s, Understood(choice=3), now=1.0)
        s, _ = d.step(s, Understood(command=Command.next), now=1.0)
    assert len(s.back) <= MAX_BACK


def test_multi_problem_message_offers_the_other(kb: KnowledgeBase) -> None:
    d = Dialog(kb)
    s, replies = d.step(Session(), Understood(scenario="fraud_victim", also=["account_stolen"]), now=1.0)
    assert s.scenario == "fraud_victim"
    assert replies[0] == render(kb, kb.scenarios["fraud_victim"].urgent) or replies[0].startswith(
        render(kb, kb.scenarios["fraud_victim"].urgent)[:20])
    assert kb.scenarios["account_stolen"].title in replies[-1]
    s, replies = d.step(s, Understood(choice=1), now=2.0)
    assert s.scenario == "account_stolen"


def test_clarify_then_choose(kb: KnowledgeBase) -> None:
    d = Dialog(kb)
    s, replies = d.step(Session(), Understood(candidates=["wallet_loss", "fraud_victim", "out_of_scope"],
                                              confidence=0.45), now=1.0)
    assert s.state == "clarify" and s.offered == ["wallet_loss", "fraud_victim"]
    s, _ = d.step(s, Understood(choice=2), now=2.0)
    assert s.scenario == "fraud_victim"


def test_next_on_the_menu_asks_for_a_choice_instead_of_repeating_it(kb: KnowledgeBase) -> None:
    from knowledge.render import render_text

    d = Dialog(kb)
    s, _ = d.step(Session(), Understood(command=Command.menu), now=1.0)
    s, replies = d.step(s, Understood(command=Command.next), now=2.0)
    assert replies == [render_text(kb, "menu_reprompt")] and s.state == "menu"
