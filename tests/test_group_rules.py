"""The group policy as a pure function: (message, room settings, scan) → replies, gates, writes.

No Redis here: these pin down *what* is decided. That the store carries it out (cooldowns,
budgets, counters really in Redis) is tested through the pipeline in test_group.py.
"""

from __future__ import annotations

import pytest

from bot.group_rules import GroupRules, Reading
from bot.models import IncomingMessage
from bot.store.rooms import AlertCooldown, BudgetLeft, FirstTime, Increment, RoomSettings, SetFlag
from dialogs.understand import Understander
from knowledge.scanner import ScanResult
from knowledge.schema import KnowledgeBase

from .helpers import text_of

ROOM = "10001@chatroom"
AD_SCAN = ScanResult(alert=True, pattern="account_trading", reason="test")
NO_SCAN = ScanResult(alert=False, pattern=None, reason="test")


@pytest.fixture
def rules(kb: KnowledgeBase, _matcher_scanner) -> GroupRules:  # type: ignore[no-untyped-def]
    matcher, scanner = _matcher_scanner
    return GroupRules(kb, Understander(kb, matcher, scanner), bot_name="反诈助手",
                      pattern_cooldown_s=1800, room_gap_s=120, replies_per_min=7)


def room_msg(text: str, **fields: object) -> IncomingMessage:
    return IncomingMessage(user_id="u1", room_id=ROOM, text=text, **fields)  # type: ignore[arg-type]


def test_chatter_needs_no_settings_and_decides_nothing(rules: GroupRules) -> None:
    msg = room_msg("明天下午三点开会")
    reading = rules.read(msg, msg.text, [], NO_SCAN)
    assert reading == Reading("chatter") and not reading.needs_settings
    d = rules.decide(msg, reading, None)
    assert d.parts == () and d.writes == ()


def test_an_ad_is_warned_about_behind_budget_then_cooldown_and_counted_only_if_said(
        rules: GroupRules, kb: KnowledgeBase) -> None:
    msg = room_msg("高价收购微信号", user_name="小王")
    reading = rules.read(msg, msg.text, [], AD_SCAN)
    assert reading.kind == "alert" and reading.needs_settings
    with pytest.raises(ValueError):
        rules.decide(msg, reading, None)
    assert rules.decide(msg, reading, RoomSettings(alerts=False)).parts == ()
    d = rules.decide(msg, reading, RoomSettings())
    (part,) = d.parts
    assert part.gates == (BudgetLeft(7), AlertCooldown("account_trading", 1800, 120))
    assert part.if_sent == (Increment("n_alerts"),) and d.writes == () and d.budget == 7
    assert "小王" in part.replies[0].text and kb.patterns["account_trading"].name in part.replies[0].text


def test_only_admins_change_settings(rules: GroupRules, kb: KnowledgeBase) -> None:
    for is_admin, writes, key in ((False, (), "group_admin_only"), (True, (SetFlag("alerts", False),), "group_alerts_off")):
        msg = room_msg("@反诈助手\u2005关闭提醒", mentioned=True, is_admin=is_admin)
        reading = rules.read(msg, msg.text, [], None)
        assert reading == Reading("command", command="关闭提醒")
        d = rules.decide(msg, reading, None)
        assert d.writes == writes
        assert [r.text for p in d.parts for r in p.replies] == [text_of(kb, key)]
        assert d.parts[0].replies[0].mention == ["u1"]


def test_stats_read_the_settings(rules: GroupRules) -> None:
    msg = room_msg("@反诈助手 统计", mentioned=True)
    reading = rules.read(msg, msg.text, [], None)
    assert reading.needs_settings
    text = rules.decide(msg, reading, RoomSettings(n_alerts=4, n_mentions=9)).parts[0].replies[0].text
    assert "4" in text and "9" in text


def test_a_question_counts_a_mention_and_names_its_scenario(rules: GroupRules) -> None:
    msg = room_msg("@反诈助手\u2005我微信号被盗了怎么办", mentioned=True)
    d = rules.decide(msg, rules.read(msg, msg.text, [], None), None)
    assert d.writes == (Increment("n_mentions"),) and d.scenario == "account_stolen"
    assert d.parts[0].gates == () and d.budget == 7


def test_join_is_claimed_once_and_not_budgeted(rules: GroupRules, kb: KnowledgeBase) -> None:
    msg = IncomingMessage(user_id="owner", room_id=ROOM, kind="join", text="")
    d = rules.decide(msg, rules.read(msg, "", [], None), None)
    assert d.parts[0].gates == (FirstTime("intro"),) and d.budget is None
    assert d.parts[0].replies[0].text == text_of(kb, "group_intro")


def test_a_secret_is_warned_about_even_when_the_ad_warning_is_gated(rules: GroupRules, kb: KnowledgeBase) -> None:
    msg = room_msg("验证码 [验证码] 高价收购微信号")
    d = rules.decide(msg, rules.read(msg, msg.text, ["code"], AD_SCAN), RoomSettings())
    warning, alert = d.parts
    assert warning.gates == () and warning.replies[0].mention == ["u1"]
    assert warning.replies[0].text == text_of(kb, "secret_warning", what="验证码")
    assert alert.gates  # the ad warning can be held back by its cooldown; the secret warning not


def test_keyword_answers_follow_the_room_setting(rules: GroupRules) -> None:
    msg = room_msg("我的微信号被盗了怎么办")
    reading = rules.read(msg, msg.text, [], NO_SCAN)
    assert reading.kind == "keyword" and reading.needs_settings
    assert rules.decide(msg, reading, RoomSettings(keywords=False)).parts == ()
    assert rules.decide(msg, reading, RoomSettings(keywords=True)).scenario == reading.scenario


def test_an_ad_no_pattern_fits_is_warned_about_without_naming_one(rules: GroupRules, kb: KnowledgeBase) -> None:
    msg = room_msg("加我私聊，有好项目", user_name="小李")
    reading = rules.read(msg, msg.text, [], ScanResult(alert=True, pattern=None, reason="model"))
    assert reading.kind == "alert" and reading.pattern is None
    (part,) = rules.decide(msg, reading, RoomSettings()).parts
    assert part.gates == (BudgetLeft(7), AlertCooldown("unnamed", 1800, 120))
    assert part.replies[0].text == text_of(kb, "group_alert_unnamed", name="小李")
