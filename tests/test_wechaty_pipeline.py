"""The WeChat channel with the real pipeline (real Redis-protocol server) behind the fake gateway.

The ``pipeline`` fixture comes from tests/conftest.py. These check the end-to-end promises:
a 1:1 question gets an answer, a redelivered message id gets exactly one answer, rooms stay
quiet unless the bot is @-mentioned (then it @-replies the asker), non-text asks for text, and
being added to a room gives one introduction.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.channels.wechaty import WechatyChannel
from bot.models import IncomingMessage, Outcome, Reply
from tests.helpers import text_of
from tests.wechaty_peer.fake_server import AUDIO, FakePuppetServer, SentText
from tests.wechaty_peer.support import fast_settings, until

ROOM = "10001@chatroom"
QUESTION = "有人冒充公安说我涉嫌洗钱，让我把钱转到安全账户，怎么办"
BARRIER = "—barrier—"
"""A message the wrapper answers itself (never the pipeline) with exactly this text."""


class Counting:
    """Wraps the pipeline: counts the calls, keeps the outcomes; answers ``BARRIER`` itself."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.calls: list[IncomingMessage] = []
        self.outcomes: list[Outcome] = []

    async def __call__(self, msg: IncomingMessage) -> Outcome:
        if msg.text == BARRIER:
            return Outcome(replies=[Reply(text=BARRIER)])
        self.calls.append(msg)
        outcome = await self.pipeline.handle(msg)
        self.outcomes.append(outcome)
        return outcome


async def sent_before_barrier(peer: FakePuppetServer, since: int, room: str | None = None) -> list[SentText]:
    """What was sent since ``peer.sent[since]`` by the conversation's earlier messages.

    One conversation is handled and sent strictly in order, so once the reply to a barrier
    message in the same conversation is out, everything the earlier messages were going to
    send is out too: "nothing more was sent" is then a fact, not a guess after a sleep.
    """
    peer.say("alice-id", BARRIER, room=room)
    await until(lambda: any(s.text == BARRIER for s in peer.sent[since:]), what="barrier reply")
    out = peer.sent[since:]
    assert out[-1].text == BARRIER and [s.text for s in out].count(BARRIER) == 1
    return out[:-1]


@pytest.fixture
async def peer() -> AsyncIterator[FakePuppetServer]:
    server = FakePuppetServer()
    server.add_contact("alice-id", "Alice")
    server.add_contact("bob-id", "Bob")
    server.add_room(ROOM, owner="bob-id", members=["bot-id", "alice-id", "bob-id"])
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def wired(peer: FakePuppetServer, pipeline: Any) -> AsyncIterator[Counting]:
    handler = Counting(pipeline)
    channel = WechatyChannel(fast_settings(peer.endpoint, peer.token), handler)
    await channel.start()
    await until(lambda: channel.ready, what="channel ready")
    try:
        yield handler
    finally:
        await channel.stop(drain_timeout=1.0)


async def test_direct_question_gets_an_answer(peer: FakePuppetServer, wired: Counting) -> None:
    peer.say("alice-id", QUESTION)
    sent = await peer.wait_sent(1)
    assert sent[0].conversation_id == "alice-id" and sent[0].text.strip()
    assert wired.outcomes[0].scenario is not None


async def test_duplicate_delivery_is_answered_once(peer: FakePuppetServer, wired: Counting) -> None:
    mid = peer.say("alice-id", QUESTION)
    answered = await sent_before_barrier(peer, 0)
    assert len(answered) >= 1 and len(wired.outcomes) == 1
    since = len(peer.sent)
    peer.deliver(mid)  # the gateway delivers the same message again
    assert await sent_before_barrier(peer, since) == []
    assert len(wired.outcomes) == 2 and wired.outcomes[1].duplicate


async def test_room_quiet_without_mention_and_at_reply_with_mention(
        peer: FakePuppetServer, wired: Counting) -> None:
    peer.say("alice-id", "大家晚上好", room=ROOM)
    assert await sent_before_barrier(peer, 0, room=ROOM) == []
    assert len(wired.outcomes) == 1 and wired.calls[0].mentioned is False
    peer.say("alice-id", "@反诈助手\u2005" + QUESTION, room=ROOM)  # by text only
    sent = (await peer.wait_sent(2))[1:]
    assert wired.calls[1].mentioned is True
    assert sent[0].conversation_id == ROOM
    assert sent[0].text.startswith("@Alice ") and sent[0].mention_ids == ["alice-id"]


async def test_non_text_direct_asks_for_text(peer: FakePuppetServer, wired: Counting) -> None:
    peer.say("alice-id", "", type_=AUDIO)
    sent = await peer.wait_sent(1)
    assert wired.calls[0].kind == "non_text"
    assert sent[0].conversation_id == "alice-id" and sent[0].text.strip()


async def test_added_to_room_introduces_itself_once(peer: FakePuppetServer, wired: Counting) -> None:
    peer.add_room("20002@chatroom", owner="alice-id", members=["alice-id"])
    peer.add_bot_to_room("20002@chatroom", inviter="alice-id")
    sent = await peer.wait_sent(1)
    assert sent[0].conversation_id == "20002@chatroom" and sent[0].text.strip()
    intro = await sent_before_barrier(peer, 0, room="20002@chatroom")
    assert intro and all(s.conversation_id == "20002@chatroom" for s in intro)
    since = len(peer.sent)
    peer.add_bot_to_room("20002@chatroom", inviter="alice-id", ts_ms=int(time.time() * 1000) + 5)
    assert await sent_before_barrier(peer, since, room="20002@chatroom") == []
    assert len(wired.calls) == 2  # the second join reached the pipeline, which said nothing


async def test_group_admin_commands_follow_the_room_owner(peer: FakePuppetServer, wired: Counting) -> None:
    peer.say("alice-id", "@反诈助手\u2005关闭提醒", room=ROOM, mention=["bot-id"])  # a member
    refused = await peer.wait_sent(1)
    assert wired.calls[0].is_admin is False
    assert refused[0].text == "@Alice " + text_of(wired.pipeline.kb, "group_admin_only")
    peer.say("bob-id", "@反诈助手\u2005关闭提醒", room=ROOM, mention=["bot-id"])  # the owner
    done = await peer.wait_sent(2)
    assert wired.calls[1].is_admin is True
    assert done[1].text == "@Bob " + text_of(wired.pipeline.kb, "group_alerts_off")


async def test_scam_ad_in_room_gets_one_warning(peer: FakePuppetServer, wired: Counting) -> None:
    ad = "高价收购微信号，老号实名号都要，当天结算，私聊"
    for _ in range(3):
        peer.say("alice-id", ad, room=ROOM)
    warnings = await sent_before_barrier(peer, 0, room=ROOM)
    assert len(wired.outcomes) == 3
    assert len(warnings) == 1 and warnings[0].conversation_id == ROOM and "Alice" in warnings[0].text


async def test_weekly_tip_reaches_the_room(peer: FakePuppetServer, pipeline: Any) -> None:
    from bot.tips import WEEK_S, send_due_tips

    channel = WechatyChannel(fast_settings(peer.endpoint, peer.token), pipeline.handle)
    await channel.start()
    await until(lambda: channel.ready, what="channel ready")
    try:
        await pipeline.rooms.set_flag("wechaty", ROOM, "tips", True)
        sent = await send_due_tips(pipeline.kb, pipeline.rooms, {"wechaty": channel.send_to_room},
                                   now=WEEK_S * 200)
        assert sent == 1
        out = await peer.wait_sent(1)
        assert out[0].conversation_id == ROOM and out[0].text.strip()
    finally:
        await channel.stop(drain_timeout=1.0)
