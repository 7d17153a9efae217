"""Group alerts after scanner v2: the law only where it fits, FANZHA_BOT_NAME, quote-replies."""

from __future__ import annotations

from bot.pipeline import Pipeline
from knowledge.render import render
from knowledge.schema import KnowledgeBase

from .helpers import joined, say, text_of

ROOM = "20002@chatroom"


async def test_a_pattern_without_a_law_warns_without_one(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    out = await say(pipeline, "香奈儿 原单包包 一比一 三百多 加我看图", user="s", user_name="小李", room_id=ROOM)
    pattern = kb.patterns["counterfeit_goods"]
    assert joined(out) == text_of(
        kb, "group_alert_no_law", name="小李", pattern=pattern.name, giveaway=render(kb, pattern.giveaway)
    )
    assert "依据" not in joined(out) and "《" not in joined(out)


async def test_an_ad_no_pattern_fits_is_warned_about_without_a_name_or_law(
    pipeline: Pipeline, kb: KnowledgeBase
) -> None:
    text = "想赚钱的来 简单操作 日入五百 私我"  # an ad, but of no pattern in particular
    result = pipeline.scanner.scan(text)
    assert result.alert and result.pattern is None and "no pattern fits" in result.reason, result
    out = await say(pipeline, text, user="s", user_name="小李", room_id=ROOM)
    assert joined(out) == text_of(kb, "group_alert_unnamed", name="小李")
    assert "《" not in joined(out)
    again = await say(pipeline, "躺着就能赚 每天几百 不限时间 私聊", user="t", room_id=ROOM)
    assert again.replies == []  # unnamed alerts share one cooldown


async def test_the_unnamed_warning_renders(kb: KnowledgeBase) -> None:
    text = text_of(kb, "group_alert_unnamed", name="小李")
    assert "小李" in text and "96110" in text and "《" not in text


async def test_the_configured_bot_name_counts_and_the_default_does_not(make_pipeline) -> None:  # type: ignore[no-untyped-def]
    pipeline = make_pipeline(bot_name="小安")
    ad = "高价收微信号 一个300 秒结 反诈助手"
    assert (await say(pipeline, ad, user="s", room_id=ROOM)).replies  # the name in text is no quote
    signed = "@反诈助手 高价收微信号 一个300 秒结 私聊"  # a mention of another name, unflagged
    assert (await say(pipeline, signed, user="s", room_id="r2@chatroom")).replies


async def test_a_reply_quoting_the_bot_is_not_an_ad(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    bar = "- - - - - - - - - - - - - - -"
    alert = text_of(kb, "group_alert", name="小王", pattern="收购、租用微信号", giveaway="…", laws="…")
    reply = f"「反诈助手：{alert}」\n{bar}\n收到，谢谢提醒"
    assert (await say(pipeline, reply, user="m", room_id=ROOM)).replies == []


async def test_noise_of_a_generated_day_stays_at_most_ten_unasked_messages(pipeline: Pipeline) -> None:
    """The generated day of tests/test_group.py: unasked bot messages (alerts) ≤ 10."""
    from .test_group import _day_of_traffic

    unasked = answered = 0
    for i, (text, mentioned) in enumerate(_day_of_traffic()):
        out = await say(pipeline, text, user=f"m{i % 80}", room_id="noise@chatroom", mentioned=mentioned)
        if mentioned:
            answered += len(out.replies)
        else:
            unasked += len(out.replies)
    print(f"generated day: {unasked} unasked bot messages, {answered} answers to mentions")
    assert 1 <= unasked <= 10


async def test_naming_the_bot_in_an_ad_does_not_turn_the_warning_into_an_answer(
    pipeline: Pipeline, kb: KnowledgeBase
) -> None:
    """A poster who @-mentions the bot in an ad still gets the group warned (issue 13 item 9)."""
    ad = "@反诈助手\u2005高价收微信号 一个300 秒结 加V私聊"
    out = await say(pipeline, ad, user="s", user_name="小李", room_id="r-mention-ad@chatroom", mentioned=True)
    assert out.replies, "an ad with a mention must not pass silently"
    pattern = kb.patterns[pipeline.scanner.scan("高价收微信号 一个300 秒结 加V私聊").pattern or ""]
    assert pattern.name in joined(out) and "小李" in joined(out)
    assert not out.replies[0].mention  # a warning to the group, not an @-reply to the poster


async def test_a_mentioned_question_about_an_ad_still_gets_its_answer(pipeline: Pipeline) -> None:
    out = await say(pipeline, "@反诈助手\u2005有人在群里收微信号 这个犯法吗", user="q",
                    room_id="r-mention-q@chatroom", mentioned=True)
    assert out.replies and out.replies[0].mention == ["q"]  # the short @-answer, not a warning
