"""Group mode: silent by default, @-answers, scam-ad alerts with cooldown, admin-only settings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bot.http_app import make_app
from bot.models import IncomingMessage
from bot.pipeline import Pipeline
from knowledge.schema import KnowledgeBase

from .helpers import joined, say, text_of

AD = "高价收购微信号，老号实名号都要，价格美丽当天结算"
ROOM = "10001@chatroom"


async def test_join_introduces_itself_once(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    join = IncomingMessage(user_id="owner", room_id=ROOM, kind="join", msg_id="j1")
    first = await pipeline.handle(join)
    assert joined(first) == text_of(kb, "group_intro")
    again = await pipeline.handle(join.model_copy(update={"msg_id": "j2"}))
    assert again.replies == []


async def test_silent_without_mention(pipeline: Pipeline) -> None:
    for text in ("今天下午三点开会", "被骗了怎么办", "有人知道快递放哪了吗", "😂"):
        out = await say(pipeline, text, room_id=ROOM)
        assert out.replies == []


async def test_mention_gets_a_short_at_reply_pointing_to_private_chat(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    out = await say(pipeline, "@反诈助手\u2005我微信号被盗了怎么办", user="asker", room_id=ROOM, mentioned=True)
    assert len(out.replies) == 1
    reply = out.replies[0]
    assert reply.mention == ["asker"]
    assert text_of(kb, "group_mention_suffix") in reply.text
    assert out.scenario == "account_stolen"
    unclear = await say(pipeline, "@反诈助手", user="asker", room_id=ROOM, mentioned=True)
    assert joined(unclear) == text_of(kb, "group_mention_menu")


async def test_scam_ad_alert_names_poster_pattern_and_law_once(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    outs = [await say(pipeline, AD, user="spammer", user_name="小王", room_id=ROOM) for _ in range(10)]
    alerts = [o for o in outs if o.replies]
    assert len(alerts) == 1
    text = joined(alerts[0])
    pattern = kb.patterns["account_trading"]
    assert "小王" in text and pattern.name in text
    assert "第三十一条" in text or "第二百八十七条之二" in text
    other_room = await say(pipeline, AD, user="spammer", room_id="other@chatroom")
    assert other_room.replies


async def test_warnings_and_questions_are_not_alerted(pipeline: Pipeline) -> None:
    for text in ("大家注意，有人在群里收购微信号，千万别卖", "有人让我出租微信号，这是不是诈骗？", "物业通知：明天停电"):
        assert (await say(pipeline, text, room_id=ROOM)).replies == []


async def test_admin_commands(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    refused = await say(pipeline, "@反诈助手 关闭提醒", user="member", room_id=ROOM, mentioned=True)
    assert joined(refused) == text_of(kb, "group_admin_only")
    off = await say(pipeline, "@反诈助手 关闭提醒", user="boss", room_id=ROOM, mentioned=True, is_admin=True)
    assert joined(off) == text_of(kb, "group_alerts_off")
    assert (await say(pipeline, AD, room_id=ROOM)).replies == []
    on = await say(pipeline, "@反诈助手 开启提醒", user="boss", room_id=ROOM, mentioned=True, is_admin=True)
    assert joined(on) == text_of(kb, "group_alerts_on")
    assert (await say(pipeline, AD, room_id=ROOM)).replies
    stats = await say(pipeline, "@反诈助手 统计", user="member", room_id=ROOM, mentioned=True)
    assert "1" in joined(stats)


async def test_keyword_answers_are_opt_in(pipeline: Pipeline) -> None:
    assert (await say(pipeline, "我微信被盗了怎么办啊", room_id=ROOM)).replies == []
    await say(pipeline, "@反诈助手 开启关键词回答", user="boss", room_id=ROOM, mentioned=True, is_admin=True)
    out = await say(pipeline, "我微信被盗了怎么办啊", user="x", room_id=ROOM)
    assert out.replies and out.replies[0].mention == ["x"]
    assert (await say(pipeline, "今晚一起吃饭吗", room_id=ROOM)).replies == []


async def test_no_session_is_kept_for_a_group_member(pipeline: Pipeline) -> None:
    from bot.store.sessions import conversation_id

    await say(pipeline, "大家好", user="member", room_id=ROOM, msg_id="g-1")
    await say(pipeline, "@反诈助手 我微信被盗了", user="member", room_id=ROOM, mentioned=True, msg_id="g-2")
    assert await pipeline.store.peek(conversation_id("http", "member", ROOM)) is None
    again = await say(pipeline, "@反诈助手 我微信被盗了", user="member", room_id=ROOM, mentioned=True, msg_id="g-2")
    assert again.duplicate and again.replies  # the replies are still recorded for redeliveries


async def test_duplicate_delivery_in_a_room_alerts_once(pipeline: Pipeline) -> None:
    first = await say(pipeline, AD, room_id="dup@chatroom", msg_id="same-id")
    second = await say(pipeline, AD, room_id="dup@chatroom", msg_id="same-id")
    assert first.replies and second.replies == first.replies and second.duplicate


async def test_group_over_http(pipeline: Pipeline) -> None:
    async def ready() -> dict[str, bool]:
        return {"redis": True}

    client = TestClient(TestServer(make_app(pipeline.handle, ready), host="127.0.0.1"))
    await client.start_server()
    try:
        async def post(body: dict[str, object]) -> dict[str, object]:
            resp = await client.post("/api/v1/messages", data=json.dumps(body),
                                     headers={"Content-Type": "application/json"})
            assert resp.status == 200
            return await resp.json()

        quiet = await post({"user_id": "a", "text": "明天几点集合", "room_id": "h@chatroom", "mentioned": False})
        assert quiet["replies"] == []
        asked = await post({"user_id": "a", "text": "@反诈助手 钱包里的钱被转走了", "room_id": "h@chatroom", "mentioned": True})
        assert asked["replies"] and asked["scenario"] == "wallet_loss"
        alert = await post({"user_id": "b", "text": AD, "room_id": "h@chatroom", "mentioned": False})
        assert len(alert["replies"]) == 1
    finally:
        await client.close()


def _day_of_traffic() -> list[tuple[str, bool]]:
    """A generated day in a 500-member group: chatter, a few ads (some pasted repeatedly), @-questions."""
    data = Path(__file__).parent / "data" / "heldout_group.jsonl"
    rows = [json.loads(x) for x in data.read_text(encoding="utf-8").splitlines() if x.strip()]
    benign = [r["text"] for r in rows if not r["alert"]]
    ads = [r["text"] for r in rows if r["alert"]]
    day: list[tuple[str, bool]] = []
    for i in range(600):
        day.append((benign[i % len(benign)], False))
        if i % 60 == 7:
            ad = ads[(i // 60) % len(ads)]
            day += [(ad, False)] * 4  # the same ad pasted four times in a row
        if i % 100 == 50:
            day.append(("@反诈助手 有人让我帮忙刷单返利，靠谱吗", True))
    return day


async def test_noise_level_of_a_generated_day(pipeline: Pipeline) -> None:
    sent = 0
    day = _day_of_traffic()
    for i, (text, mentioned) in enumerate(day):
        out = await say(pipeline, text, user=f"m{i % 80}", room_id="day@chatroom", mentioned=mentioned)
        sent += len(out.replies)
    mentions = sum(1 for _, m in day if m)
    ads = 10  # distinct ad bursts in the generated day
    assert sent <= mentions + ads, f"bot sent {sent} messages for {len(day)} group messages"
    assert sent >= mentions + 1  # it did warn at least once


async def test_weekly_tips_are_opt_in_and_sent_once_per_week(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    from bot.tips import WEEK_S, send_due_tips, tip_for

    sent: list[tuple[str, str]] = []

    async def send(room_id: str, text: str) -> None:
        sent.append((room_id, text))

    senders = {"http": send}
    assert await send_due_tips(kb, pipeline.rooms, senders, now=WEEK_S * 100) == 0  # nobody opted in
    refused = await say(pipeline, "@反诈助手 开启每周提示", user="m", room_id="tips@chatroom", mentioned=True)
    assert joined(refused) == text_of(kb, "group_admin_only")
    await say(pipeline, "@反诈助手 开启每周提示", user="boss", room_id="tips@chatroom", mentioned=True, is_admin=True)
    now = WEEK_S * 100
    results = await asyncio.gather(*(send_due_tips(kb, pipeline.rooms, senders, now=now) for _ in range(3)))
    assert sum(results) == 1 and sent == [("tips@chatroom", tip_for(kb, now))]
    assert await send_due_tips(kb, pipeline.rooms, senders, now=now + 3600) == 0  # not due yet
    assert await send_due_tips(kb, pipeline.rooms, senders, now=now + WEEK_S + 1) == 1
    await say(pipeline, "@反诈助手 关闭每周提示", user="boss", room_id="tips@chatroom", mentioned=True, is_admin=True)
    assert await send_due_tips(kb, pipeline.rooms, senders, now=now + 3 * WEEK_S) == 0


async def test_a_chatty_member_gets_no_notice_and_is_still_scanned(pipeline: Pipeline) -> None:
    chatty = pipeline.store.rate_per_min + 5
    outs = [await say(pipeline, f"哈哈今天天气真好{i}", user="chatty", room_id=ROOM) for i in range(chatty)]
    assert all(o.replies == [] for o in outs)
    assert (await say(pipeline, AD, user="chatty", room_id=ROOM)).replies


async def test_the_alert_never_quotes_personal_data_from_a_nickname(pipeline: Pipeline, redis) -> None:  # type: ignore[no-untyped-def]
    out = await say(pipeline, AD, user="s", user_name="张三13800138000", room_id=ROOM)
    assert "13800138000" not in joined(out) and "张三" in joined(out)
    for key in await redis.keys("*"):
        if await redis.type(key) == b"string":
            assert b"13800138000" not in (await redis.get(key) or b"")


async def test_a_code_posted_in_a_group_is_warned_about(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    out = await say(pipeline, "@反诈助手 验证码是 8 8 1 2 3 4，客服让我发给他", user="v", room_id=ROOM, mentioned=True)
    assert out.replies[0].text == text_of(kb, "secret_warning", what="验证码")
    assert out.replies[0].mention == ["v"]
    assert "881234" not in joined(out) and "8 8 1 2 3 4" not in joined(out)


async def test_the_room_budget_does_not_eat_a_warning(make_pipeline, kb: KnowledgeBase) -> None:  # type: ignore[no-untyped-def]
    pipeline = make_pipeline(rate_room_per_min=1)
    assert (await say(pipeline, "@反诈助手 我微信被盗了", user="a", room_id=ROOM, mentioned=True)).replies
    assert (await say(pipeline, AD, user="b", room_id=ROOM)).replies == []  # budget spent
    stats = (await pipeline.rooms.get("http", ROOM))
    assert stats.n_alerts == 0
    await pipeline.rooms.redis.delete(f"{pipeline.rooms._base('http', ROOM)}:rate")  # a minute later
    assert (await say(pipeline, AD, user="b", room_id=ROOM)).replies  # not swallowed by the cooldown


async def test_an_error_in_a_group_is_not_posted_unasked(pipeline: Pipeline, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("scanner bug")

    monkeypatch.setattr(pipeline.group.scanner, "scan", broken)
    assert (await say(pipeline, AD, room_id=ROOM)).replies == []
    assert (await say(pipeline, "@反诈助手 被骗了怎么办", room_id=ROOM, mentioned=True)).replies


async def test_a_room_called_dm_is_not_a_private_chat(pipeline: Pipeline) -> None:
    await say(pipeline, "5", user="u9")
    await say(pipeline, "@反诈助手 菜单", user="u9", room_id="dm", mentioned=True)
    assert (await say(pipeline, "下一步", user="u9")).scenario == "account_rental"


async def test_tip_subscriptions_are_renewed_when_used(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    from bot.tips import WEEK_S, send_due_tips

    async def send(room_id: str, text: str) -> None:
        return None

    await pipeline.rooms.set_flag("http", "ttl@chatroom", "tips", True)
    await pipeline.rooms.redis.expire(pipeline.rooms.tips_key, 100)
    await send_due_tips(kb, pipeline.rooms, {"http": send}, now=WEEK_S * 300)
    assert await pipeline.rooms.redis.ttl(pipeline.rooms.tips_key) > 100
