"""The WeChat channel driven through a fake puppet-service gateway (real gRPC on 127.0.0.1).

The handler here is a recorder, so these tests pin down the adapter's side of the contract:
what IncomingMessage it builds, what it filters, and how it sends. The same scenarios with the
real pipeline are in test_wechaty_pipeline.py, and against the TypeScript gateway in
test_wechaty_ts_peer.py.

Longer than our ~350-line rule on purpose: one file is the adapter's whole contract with the
gateway (1:1, rooms, filters, order, sending, connection, settings, pure helpers), grouped by
the section comments, so a change to the channel has one place to look for what it must keep.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from bot.channels.wechaty import (
    SendPacer,
    WechatyChannel,
    WechatySettings,
    mentions_name,
    split_text,
    to_seconds,
    wechaty_settings_from_env,
)
from bot.models import IncomingMessage, Outcome, Reply
from tests.wechaty_peer.fake_server import AUDIO, IMAGE, RECALLED, URL, FakePuppetServer
from tests.wechaty_peer.support import fast_settings, until

ROOM = "10001@chatroom"
SECRET_TEXT = "我的银行卡密码是秘密文字"


class Recorder:
    """A handler that records what it was given and answers with ``reply(msg)``."""

    def __init__(self, reply: Callable[[IncomingMessage], list[Reply]] | None = None,
                 delay: float = 0.0, dedupe: bool = False) -> None:
        self.seen: list[IncomingMessage] = []
        self.reply = reply or (lambda m: [Reply(text=f"答复{len(self.seen)}", mention=[m.user_id] if m.room_id else [])])
        self.delay = delay
        self.dedupe = dedupe
        self.answered: set[str] = set()
        self.active = 0
        self.max_active = 0

    async def __call__(self, msg: IncomingMessage) -> Outcome:
        self.seen.append(msg)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.dedupe and msg.msg_id in self.answered:
                return Outcome(replies=self.reply(msg), duplicate=True, state="duplicate")
            if msg.msg_id:
                self.answered.add(msg.msg_id)
            return Outcome(replies=self.reply(msg))
        finally:
            self.active -= 1

    def ids(self) -> list[str | None]:
        return [m.msg_id for m in self.seen]


@pytest.fixture
async def peer() -> AsyncIterator[FakePuppetServer]:
    server = FakePuppetServer()
    server.add_contact("alice-id", "Alice")
    server.add_contact("bob-id", "Bob")
    server.add_contact("carol-id", "Carol")
    server.add_room(ROOM, owner="bob-id", admins=["carol-id"], members=["bot-id", "alice-id", "bob-id", "carol-id"],
                    aliases={"bot-id": "小反"})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def settings_for(peer: FakePuppetServer, **overrides: Any) -> WechatySettings:
    overrides.setdefault("token", peer.token)
    return fast_settings(peer.endpoint, **overrides)


@pytest.fixture
async def connect(peer: FakePuppetServer) -> AsyncIterator[Callable[..., Awaitable[WechatyChannel]]]:
    channels: list[WechatyChannel] = []

    async def make(handler: Any, wait_ready: bool = True, **overrides: Any) -> WechatyChannel:
        channel = WechatyChannel(settings_for(peer, **overrides), handler)
        channels.append(channel)
        await channel.start()
        if wait_ready:
            await until(lambda: channel.ready, what="channel ready")
        return channel

    yield make
    for channel in channels:
        await channel.stop(drain_timeout=1.0)


async def barrier(peer: FakePuppetServer, rec: Recorder, talker: str = "alice-id") -> None:
    """Send a plain 1:1 message and wait until the handler saw it: everything emitted before
    it has been through the (ordered) inbox by then."""
    mid = peer.say(talker, "barrier")
    await until(lambda: mid in rec.ids(), what="barrier message")


# -- 1:1 -------------------------------------------------------------------------------------
async def test_direct_question_is_answered_to_the_talker(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="先别转账，拨打 110。")])
    await connect(rec)
    mid = peer.say("alice-id", "有人让我转账到安全账户")
    sent = await peer.wait_sent(1)
    msg = rec.seen[0]
    assert (msg.channel, msg.user_id, msg.text, msg.room_id, msg.msg_id) == (
        "wechaty", "alice-id", "有人让我转账到安全账户", None, mid)
    assert (msg.kind, msg.mentioned, msg.user_name, msg.is_admin) == ("text", False, "Alice", False)
    assert (sent[0].conversation_id, sent[0].text, sent[0].mention_ids) == ("alice-id", "先别转账，拨打 110。", [])


async def test_non_text_direct_becomes_non_text_kind(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="请发文字")])
    await connect(rec)
    peer.say("alice-id", "<voice>", type_=AUDIO)
    await peer.wait_sent(1)
    assert rec.seen[0].kind == "non_text" and rec.seen[0].text == ""
    peer.say("alice-id", "recalled", type_=RECALLED)  # system-ish: ignored
    await barrier(peer, rec)
    assert [m.kind for m in rec.seen] == ["non_text", "text"]


async def test_official_accounts_are_never_answered(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="请发文字")])
    channel = await connect(rec)
    peer.add_contact("gh_news", "某某新闻", official=True)
    peer.say("gh_news", "<appmsg>今日推送</appmsg>", type_=URL)
    peer.say("gh_news", "纯文字推送")
    await barrier(peer, rec)
    assert [m.text for m in rec.seen] == ["barrier"]
    assert channel.stats["skipped_official_account"] == 2


# -- rooms -----------------------------------------------------------------------------------
async def test_room_without_mention_is_not_mentioned(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [])
    await connect(rec)
    mid = peer.say("alice-id", "大家晚上好", room=ROOM)
    await until(lambda: mid in rec.ids())
    msg = rec.seen[0]
    assert (msg.room_id, msg.mentioned, msg.user_id, msg.is_admin, msg.user_name) == (
        ROOM, False, "alice-id", False, "Alice")
    await barrier(peer, rec)
    assert peer.sent == []


@pytest.mark.parametrize(
    ("text", "mention", "expected"),
    [
        ("@反诈助手\u2005有人冒充客服", ["bot-id"], True),  # id list (and text)
        ("帮我看看这个链接", ["bot-id"], True),  # id list only
        ("@反诈助手\u2005有人冒充客服", [], True),  # text only, U+2005
        ("@反诈助手 有人冒充客服", [], True),  # text only, space
        ("有人冒充客服 @反诈助手", [], True),  # at the end
        ("@小反\u2005在吗", [], True),  # the bot's alias in this room
        ("@反诈助手们 在吗", [], False),  # another name that starts the same
        ("@Bob\u2005你好", ["bob-id"], False),  # someone else
        ("邮箱 a@反诈助手.com", [], False),
    ],
)
async def test_room_mention_detection(peer: FakePuppetServer, connect: Any, text: str,
                                      mention: list[str], expected: bool) -> None:
    rec = Recorder(reply=lambda m: [])
    await connect(rec)
    mid = peer.say("alice-id", text, room=ROOM, mention=mention)
    await until(lambda: mid in rec.ids())
    assert rec.seen[0].mentioned is expected
    assert rec.seen[0].text == text


async def test_room_mention_reply_ats_the_asker(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="请私聊我，我一步步告诉你。", mention=[m.user_id])] if m.mentioned else [])
    await connect(rec)
    peer.say("alice-id", "@反诈助手\u2005被骗了怎么办", room=ROOM)  # by text only
    sent = await peer.wait_sent(1)
    assert sent[0].conversation_id == ROOM
    assert sent[0].text == "@Alice 请私聊我，我一步步告诉你。"
    assert sent[0].mention_ids == ["alice-id"]


async def test_room_owner_and_admins_are_admins(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [])
    await connect(rec)
    for talker in ("bob-id", "carol-id", "alice-id"):
        peer.say(talker, "统计", room=ROOM)
    await until(lambda: len(rec.seen) == 3)
    assert [(m.user_id, m.is_admin) for m in rec.seen] == [
        ("bob-id", True), ("carol-id", True), ("alice-id", False)]


async def test_room_non_text_is_ignored(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [])
    await connect(rec)
    peer.say("alice-id", "<img>", room=ROOM, type_=IMAGE)
    await barrier(peer, rec)
    assert [m.text for m in rec.seen] == ["barrier"]


async def test_bot_added_to_room_hands_over_a_join(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="大家好，我是反诈助手。")] if m.kind == "join" else [])
    await connect(rec)
    peer.add_room("20002@chatroom", owner="alice-id", members=["alice-id"])
    peer.emit(19, {"inviteeIdList": ["bob-id"], "inviterId": "alice-id", "roomId": "20002@chatroom",
                   "timestamp": int(time.time() * 1000)})  # someone else joined: not for us
    peer.add_bot_to_room("20002@chatroom", inviter="alice-id")
    sent = await peer.wait_sent(1)
    joins = [m for m in rec.seen if m.kind == "join"]
    assert len(joins) == 1
    j = joins[0]
    assert (j.room_id, j.user_id, j.text, j.is_admin, j.channel) == ("20002@chatroom", "alice-id", "", True, "wechaty")
    assert (sent[0].conversation_id, sent[0].text) == ("20002@chatroom", "大家好，我是反诈助手。")
    await barrier(peer, rec)
    assert len([m for m in rec.seen if m.kind == "join"]) == 1


# -- filters ---------------------------------------------------------------------------------
async def test_own_echo_and_history_are_ignored(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="好的")])
    channel = await connect(rec)
    peer.say("bot-id", "我自己发的")  # own message
    peer.say("alice-id", "一小时前的消息", ts_ms=int((time.time() - 3600) * 1000))  # replayed history
    peer.say("alice-id", "秒级时间戳的旧消息", ts_ms=int(time.time() - 3600))  # seconds, also history
    await barrier(peer, rec)
    assert [m.text for m in rec.seen] == ["barrier"]
    # the reply to the barrier came back as an echo event (echo_sends): not handled either
    await peer.wait_sent(1)
    await barrier(peer, rec, talker="bob-id")
    assert [m.text for m in rec.seen] == ["barrier", "barrier"]
    assert channel.stats["skipped_own_echo"] >= 2
    assert channel.stats["skipped_history"] == 2


async def test_duplicate_delivery(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="答复")], dedupe=True)
    channel = await connect(rec)
    mid = peer.say("alice-id", "问题")
    await peer.wait_sent(1)
    peer.deliver(mid)  # redelivered later: handed over again, the handler says duplicate
    await until(lambda: rec.ids().count(mid) == 2)
    await barrier(peer, rec)
    assert [s.text for s in peer.sent].count("答复") == 2  # the first answer + the barrier's
    assert channel.stats["duplicates"] == 1


async def test_same_id_is_never_processed_twice_at_once(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="答复")], delay=0.3)
    channel = await connect(rec)
    mid = peer.say("alice-id", "问题")
    peer.deliver(mid)
    peer.deliver(mid)
    await peer.wait_sent(1)
    await barrier(peer, rec)
    assert rec.ids().count(mid) == 1
    assert channel.stats["dropped_inflight_duplicate"] == 2


# -- ordering and robustness ----------------------------------------------------------------
async def test_one_conversation_in_order_others_concurrently(peer: FakePuppetServer, connect: Any) -> None:
    done: list[str] = []

    async def handler(msg: IncomingMessage) -> Outcome:
        await asyncio.sleep(0.3 if msg.text == "一" else 0.01)
        done.append(f"{msg.user_id}:{msg.text}")
        return Outcome()

    await connect(handler)
    peer.say("alice-id", "一")
    peer.say("alice-id", "二")
    peer.say("bob-id", "三")
    await until(lambda: len(done) == 3)
    assert done.index("alice-id:一") < done.index("alice-id:二")
    assert done[0] == "bob-id:三"  # not stuck behind alice's slow message


async def test_the_next_room_message_is_read_while_a_reply_waits_out_its_retry(
        peer: FakePuppetServer, connect: Any) -> None:
    """In a busy group the scanner must keep reading: a reply in backoff does not block it."""
    rec = Recorder(reply=lambda m: [Reply(text=f"答复 {m.text}")])
    channel = await connect(rec, send_retry_backoff=1.5)
    peer.fail_sends = 1
    peer.say("alice-id", "第一条", room=ROOM)
    await until(lambda: channel.stats["send_errors"] == 1, what="first send failed")
    peer.say("bob-id", "第二条", room=ROOM)
    await until(lambda: len(rec.seen) == 2, timeout=1.0, what="second message handled during the backoff")
    assert peer.sent == []  # the first reply is still waiting out its retry
    sent = await peer.wait_sent(2)
    assert [s.text for s in sent] == ["答复 第一条", "答复 第二条"]  # and the room's order is kept


async def test_sending_holds_no_concurrency_slot(peer: FakePuppetServer, connect: Any) -> None:
    """With one slot, a conversation whose reply is being paced does not stop another one."""
    rec = Recorder(reply=lambda m: [Reply(text="一"), Reply(text="二"), Reply(text="三")])
    await connect(rec, max_concurrency=1, send_interval_room=1.0)
    peer.say("alice-id", "问题")
    await peer.wait_sent(1)  # the next two replies to alice wait 1 s each
    peer.say("bob-id", "问题")
    await until(lambda: len(rec.seen) == 2, timeout=0.8, what="bob handled while alice's replies are paced")
    await until(lambda: sum(s.conversation_id == "bob-id" for s in peer.sent) >= 1, timeout=0.8,
                what="bob answered while alice's replies are paced")
    assert [s.text for s in peer.sent if s.conversation_id == "alice-id"] == ["一"]


async def test_handler_errors_are_logged_with_ids_not_text(peer: FakePuppetServer, connect: Any,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def handler(msg: IncomingMessage) -> Outcome:
        if msg.text == SECRET_TEXT:
            raise KeyError(msg.text)
        return Outcome(replies=[Reply(text="ok")])

    channel = await connect(handler)
    bad = peer.say("alice-id", SECRET_TEXT)
    peer.say("alice-id", "下一条")
    await peer.wait_sent(1)
    assert channel.stats["handler_errors"] == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(bad in r.getMessage() and "KeyError" in r.getMessage() for r in errors)
    for r in caplog.records:
        assert SECRET_TEXT not in r.getMessage()
        assert peer.token not in r.getMessage()
        assert "下一条" not in r.getMessage()


async def test_a_slow_gateway_call_times_out_and_the_channel_carries_on(
        peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="答复")])
    channel = await connect(rec, rpc_timeout=0.3)
    peer.payload_delay = 1.0
    peer.say("alice-id", "慢")
    await until(lambda: channel.stats["ingest_errors"] == 1)
    peer.payload_delay = 0.0
    await barrier(peer, rec)
    assert [m.text for m in rec.seen] == ["barrier"]
    assert channel.ready  # the event stream itself has no timeout


async def test_failed_send_is_retried(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="答复")])
    channel = await connect(rec)
    peer.fail_sends = 2
    peer.say("alice-id", "问题")
    sent = await peer.wait_sent(1)
    assert sent[0].text == "答复"
    assert peer.calls.count("MessageSendText") == 3
    assert channel.stats["send_errors"] == 2


async def test_a_send_that_times_out_is_not_sent_twice(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="只发一次" if m.text == "问题" else "下一条")])
    channel = await connect(rec, rpc_timeout=0.3)
    peer.slow_sends = 1.0  # the gateway sends, then answers after the client gave up
    peer.say("alice-id", "问题")
    await until(lambda: channel.stats["send_uncertain"] == 1)
    peer.slow_sends = 0.0
    peer.say("alice-id", "再问")  # the conversation's outbox is FIFO: a resend would come first
    sent = await peer.wait_sent(2)
    assert [s.text for s in sent] == ["只发一次", "下一条"]
    assert peer.calls.count("MessageSendText") == 2


async def test_send_that_keeps_failing_is_logged_not_lost_silently(
        peer: FakePuppetServer, connect: Any, caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="第一条"), Reply(text="第二条")])
    channel = await connect(rec)
    peer.fail_sends = 3
    mid = peer.say("alice-id", "问题")
    await until(lambda: channel.stats["send_lost"] > 0)
    assert peer.calls.count("MessageSendText") == 3
    assert channel.stats["send_lost"] == 2  # both replies are accounted for
    assert any(r.levelno == logging.ERROR and mid in r.getMessage() and "NOT delivered" in r.getMessage()
               for r in caplog.records)
    peer.say("alice-id", "再问")  # the channel carries on
    await peer.wait_sent(2)


async def test_a_broken_delivery_does_not_drop_the_ones_queued_behind_it(
        peer: FakePuppetServer, connect: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    channel = await connect(Recorder(reply=lambda m: [Reply(text=f"答复 {m.text}")]), send_interval_room=0.3)
    real = channel.outbox._deliver
    broken: list[str] = []

    async def deliver(conv: str, d: Any) -> bool:
        if not broken:
            broken.append(d.ref)
            await until(lambda: channel.outbox.backlog == 1, what="the second reply queued behind")
            raise RuntimeError("a bug in delivery")
        return await real(conv, d)

    monkeypatch.setattr(channel.outbox, "_deliver", deliver)
    peer.say("alice-id", "一")
    peer.say("alice-id", "二")
    sent = await peer.wait_sent(1)
    assert [s.text for s in sent] == ["答复 二"] and channel.stats["send_errors"] == 1


async def test_a_proactive_send_that_fails_raises_so_the_tip_is_due_again(
        peer: FakePuppetServer, connect: Any) -> None:
    channel = await connect(Recorder())
    peer.fail_sends = 3
    with pytest.raises(ConnectionError):
        await channel.send_to_room(ROOM, "本周提示")
    await channel.send_to_room(ROOM, "本周提示")
    assert [s.text for s in peer.sent] == ["本周提示"]


async def test_long_reply_is_split_at_natural_boundaries(peer: FakePuppetServer, connect: Any) -> None:
    para = "第一步：立即联系银行冻结账户。" * 12
    long_text = "\n\n".join([para, para.replace("第一步", "第二步"), para.replace("第一步", "第三步")])
    rec = Recorder(reply=lambda m: [Reply(text=long_text, mention=[m.user_id] if m.room_id else [])])
    await connect(rec, max_reply_chars=300)
    peer.say("alice-id", "@反诈助手 怎么办", room=ROOM)
    await until(lambda: sum(len(s.text) for s in peer.sent) >= len(long_text) - 10)
    await asyncio.sleep(0.1)
    sent = peer.sent
    assert len(sent) >= 3
    assert all(len(s.text) <= 300 for s in sent)
    assert sent[0].text.startswith("@Alice ") and sent[0].mention_ids == ["alice-id"]
    assert all(s.mention_ids == [] and not s.text.startswith("@") for s in sent[1:])
    assert all(s.text.endswith("。") for s in sent)
    body = sent[0].text.removeprefix("@Alice ") + "".join(s.text for s in sent[1:])
    assert body == long_text.replace("\n\n", "")


async def test_server_restart_reconnects_and_continues(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="答复")])
    channel = await connect(rec)
    peer.say("alice-id", "第一条")
    await peer.wait_sent(1)
    await peer.restart(down_for=0.3)
    await until(lambda: channel.ready and peer.event_streams >= 2, what="reconnected")
    assert channel.connections >= 2
    peer.say("alice-id", "重连后的消息")
    await peer.wait_sent(2)
    assert [m.text for m in rec.seen] == ["第一条", "重连后的消息"]


async def test_a_call_cut_by_a_restart_does_not_stop_the_channel(peer: FakePuppetServer, connect: Any) -> None:
    rec = Recorder(reply=lambda m: [Reply(text="答复")])
    channel = await connect(rec)
    peer.payload_delay = 2.0
    peer.say("alice-id", "在途")
    await until(lambda: "MessagePayload" in peer.calls)
    await peer.restart(down_for=0.2)  # the in-flight call dies with the connection
    peer.payload_delay = 0.0
    await until(lambda: channel.ready and peer.event_streams >= 2, what="reconnected")
    await barrier(peer, rec)
    assert channel.stats["ingest_errors"] == 1


async def test_messages_sent_during_an_outage_still_count(peer: FakePuppetServer, connect: Any) -> None:
    """After a reconnect the history cutoff is when the old stream was last alive, not 'now'."""
    rec = Recorder(reply=lambda m: [])
    await connect(rec)
    await peer.stop()
    await asyncio.sleep(0.2)
    during = int(time.time() * 1000)
    await asyncio.sleep(0.2)
    await peer.start()
    await until(lambda: peer.event_streams >= 2)
    mid = peer.say("alice-id", "断线时发的", ts_ms=during)  # e.g. replayed by the gateway
    await until(lambda: mid in rec.ids())


async def test_watchdog_reconnects_a_silent_stream(peer: FakePuppetServer, connect: Any) -> None:
    peer.answer_ding = False  # the stream stays open but nothing ever comes
    channel = await connect(Recorder(), watchdog_minutes=1.0 / 60)  # 1 s
    await until(lambda: peer.event_streams >= 2, timeout=10, what="watchdog reconnect")
    assert channel.stats["watchdog"] >= 1
    assert "Ding" in peer.calls


async def test_keepalive_ding_keeps_a_quiet_stream(peer: FakePuppetServer, connect: Any) -> None:
    channel = await connect(Recorder(), watchdog_minutes=1.0 / 60)
    await asyncio.sleep(2.5)
    assert peer.event_streams == 1 and channel.ready
    assert peer.calls.count("Ding") >= 2


async def test_wrong_token_never_gets_ready_and_keeps_trying(peer: FakePuppetServer, connect: Any,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    channel = await connect(Recorder(), wait_ready=False, token="wrong-token")
    await until(lambda: peer.auth_failures >= 2, what="retries")
    assert not channel.ready
    assert any("UNAUTHENTICATED" in r.getMessage() for r in caplog.records)
    assert not any("wrong-token" in r.getMessage() for r in caplog.records)


async def test_stop_is_clean(peer: FakePuppetServer) -> None:
    channel = WechatyChannel(settings_for(peer), Recorder())
    await channel.start()
    await until(lambda: channel.ready)
    await channel.stop()
    assert not channel.ready
    await until(lambda: not peer._queues, what="server side stream closed")
    assert all(t.done() for t in channel._run.tasks)


async def test_stop_during_a_gateway_call_is_prompt(peer: FakePuppetServer, connect: Any,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Closing the channel turns the in-flight call's cancellation into StreamTerminatedError
    (grpclib): the consumer must still stop, not log it and wait for the next message."""
    rec = Recorder()
    channel = await connect(rec)
    peer.payload_delay = 3.0
    peer.say("alice-id", "在途")
    await until(lambda: "MessagePayload" in peer.calls)
    started = time.monotonic()
    await channel.stop(drain_timeout=0.1)
    assert time.monotonic() - started < 1.5
    assert not any("abandoned" in r.getMessage() for r in caplog.records)
    assert rec.seen == []


async def test_stop_is_bounded_even_if_the_client_swallows_cancellation(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import bot.channels.wechaty.connection as mod

    async def stubborn_run(self: Any, on_event: Any) -> None:
        on_event("heartbeat", None)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # like the client's start(): Stop in try, Start in finally

    monkeypatch.setattr(mod._PuppetLink, "run", stubborn_run)
    monkeypatch.setattr(mod, "CLIENT_STOP_TIMEOUT", 0.3)
    channel = WechatyChannel(fast_settings("127.0.0.1:9", "t"), Recorder())
    await channel.start()
    await until(lambda: channel.connections == 1 and channel.connection.alive)
    started = time.monotonic()
    await channel.stop(drain_timeout=0.1)
    assert time.monotonic() - started < 2.0
    assert any("abandoned" in r.getMessage() for r in caplog.records)
    for task in asyncio.all_tasks():
        if task.get_name() == "wechaty-stream":
            task.cancel()


async def test_unreachable_gateway_is_retried_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    from tests.wechaty_peer.fake_server import free_port

    s = WechatySettings(_env_file=None, endpoint=f"127.0.0.1:{free_port()}", token="t",  # type: ignore[call-arg]
                        reconnect_backoff=0.05, reconnect_backoff_max=0.1)
    channel = WechatyChannel(s, Recorder())
    await channel.start()
    await until(lambda: channel.stats["disconnects"] >= 3)
    assert not channel.ready
    await channel.stop()


# -- settings ---------------------------------------------------------------------------------
ENV_VARS = ("WECHATY_PUPPET_SERVICE_ENDPOINT", "WECHATY_PUPPET_SERVICE_TOKEN", "FANZHA_WECHATY_ENDPOINT",
            "FANZHA_WECHATY_TOKEN", "TOKEN", "ENDPOINT")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_settings_absent_means_channel_off(env: pytest.MonkeyPatch) -> None:
    assert wechaty_settings_from_env(_env_file=None) is None


def test_endpoint_without_token_is_a_start_up_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("WECHATY_PUPPET_SERVICE_ENDPOINT", "127.0.0.1:8788")
    with pytest.raises(ValueError, match="TOKEN is not") as err:
        wechaty_settings_from_env(_env_file=None)
    assert "\n" not in str(err.value)


def test_token_without_endpoint_is_a_start_up_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("WECHATY_PUPPET_SERVICE_TOKEN", "s3cret-token")
    with pytest.raises(ValueError, match="ENDPOINT is not") as err:
        wechaty_settings_from_env(_env_file=None)
    assert "\n" not in str(err.value) and "s3cret-token" not in str(err.value)


def test_fanzha_names_win_and_values_are_checked(env: pytest.MonkeyPatch) -> None:
    env.setenv("WECHATY_PUPPET_SERVICE_ENDPOINT", "10.0.0.1:1")
    env.setenv("WECHATY_PUPPET_SERVICE_TOKEN", "generic")
    env.setenv("FANZHA_WECHATY_ENDPOINT", "gateway.lan:8788")
    env.setenv("FANZHA_WECHATY_TOKEN", "ours")
    env.setenv("FANZHA_WECHATY_SEND_INTERVAL_ROOM", "2.5")
    s = wechaty_settings_from_env(_env_file=None)
    assert s is not None and s.endpoint == "gateway.lan:8788" and s.host_port == ("gateway.lan", 8788)
    assert s.token is not None and s.token.get_secret_value() == "ours"
    assert (s.send_interval_room, s.send_interval_global, s.max_reply_chars) == (2.5, 0.2, 600)
    env.setenv("FANZHA_WECHATY_ENDPOINT", "https://gateway.lan:8788")
    with pytest.raises(ValueError, match="without a scheme"):
        wechaty_settings_from_env(_env_file=None)
    env.setenv("FANZHA_WECHATY_ENDPOINT", "gateway.lan")
    with pytest.raises(ValueError, match="host:port"):
        wechaty_settings_from_env(_env_file=None)


# -- pure helpers -----------------------------------------------------------------------------
def test_split_text_prefers_natural_boundaries() -> None:
    assert split_text("短消息", 600) == ["短消息"]
    text = "甲" * 50 + "\n\n" + "乙" * 50
    assert split_text(text, 80) == ["甲" * 50, "乙" * 50]
    text = "一句话。" * 30  # 120 chars, no newline
    chunks = split_text(text, 50)
    assert all(len(c) <= 50 and c.endswith("。") for c in chunks)
    assert "".join(chunks) == text
    assert split_text("字" * 120, 50) == ["字" * 50, "字" * 50, "字" * 20]  # hard cut, no boundary


@hyp_settings(max_examples=200, deadline=None)
@given(st.text(alphabet="甲乙丙 。，\n!a", max_size=800), st.integers(min_value=20, max_value=200))
def test_split_text_never_exceeds_the_limit_and_keeps_content(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert all(0 < len(c) <= limit for c in chunks)
    assert "".join("".join(chunks).split()) == "".join(text.split())


def test_mention_names_are_regex_escaped() -> None:
    assert mentions_name("@A.B\u2005hi", ["A.B"])
    assert not mentions_name("@AxB hi", ["A.B"])
    assert mentions_name("hi @(bot)", ["(bot)"])
    assert not mentions_name("hi", [None, ""])


def test_timestamps_in_seconds_or_milliseconds() -> None:
    assert to_seconds(1_700_000_000_000) == 1_700_000_000.0
    assert to_seconds(1_700_000_000) == 1_700_000_000.0
    assert to_seconds(0) == 0.0


async def test_pacer_spaces_sends_per_conversation_and_globally() -> None:
    pacer = SendPacer(per_key=0.2, global_=0.05)
    t0 = time.monotonic()
    stamps: dict[str, list[float]] = {"a": [], "b": []}

    async def send(key: str) -> None:
        await pacer.wait(key)
        stamps[key].append(time.monotonic() - t0)

    await asyncio.gather(*(send(k) for k in ("a", "a", "a", "b", "b")))
    for key in ("a", "b"):
        gaps = [y - x for x, y in zip(stamps[key], stamps[key][1:], strict=False)]
        assert all(g >= 0.19 for g in gaps), (key, gaps)
    every = sorted(stamps["a"] + stamps["b"])
    assert all(y - x >= 0.045 for x, y in zip(every, every[1:], strict=False))
