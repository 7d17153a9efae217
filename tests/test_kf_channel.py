"""The 微信客服 channel end to end: 企业微信-built encrypted callbacks → kf/sync_msg on a local
fake of qyapi.weixin.qq.com → the real pipeline (real Redis-protocol server) → kf/send_msg."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.channels.kf import KfChannel, KfSettings, kf_settings_from_env
from bot.http_app import make_app
from bot.models import IncomingMessage, Outcome
from bot.server import mount
from tests.helpers import text_of
from tests.wechaty_peer.support import until
from tests.wx_peer import callbacks as wx
from tests.wx_peer.fake_api import CORP_ID, CORP_SECRET, FakeWeChatApi
from tests.wx_peer.fuzz import odd_body, odd_value

SEND = "/cgi-bin/kf/send_msg"
SYNC = "/cgi-bin/kf/sync_msg"
TRANS = "/cgi-bin/kf/service_state/trans"
ON_EVENT = "/cgi-bin/kf/send_msg_on_event"
KFID = "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw"
MULTI = "我被骗了两千块钱，对方是刷单的"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChatApi]:
    api = FakeWeChatApi()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


def kf_settings(fake: FakeWeChatApi, **overrides: Any) -> KfSettings:
    values: dict[str, Any] = dict(corp_id=CORP_ID, secret=CORP_SECRET, token=wx.KF_TOKEN, aes_key=wx.KF_AES_KEY,
                                  api_base=fake.url, send_interval_user_s=0.01, send_interval_global_s=0.0,
                                  send_retry_backoff_s=0.01)
    values.update(overrides)
    return KfSettings(_env_file=None, **values)  # type: ignore[call-arg]


class Wired:
    def __init__(self, client: TestClient, channel: KfChannel, calls: list[IncomingMessage]) -> None:
        self.client, self.channel, self.calls = client, channel, calls

    async def notify(self, sync_token: str = "ENCtoken", **kw: Any) -> tuple[int, str]:
        query, body = wx.kf_event_callback(CORP_ID, KFID, sync_token, **kw)
        resp = await self.client.post("/wechat/kf", params=query, data=body)
        return resp.status, await resp.text()

    async def idle(self) -> None:
        await until(lambda: not self.channel._syncers and self.channel.outbox.pending == 0)


async def wire(pipeline: Any, kb: Any, redis: Any, settings: KfSettings) -> Wired:
    calls: list[IncomingMessage] = []

    async def handle(msg: IncomingMessage) -> Outcome:
        calls.append(msg)
        return await pipeline.handle(msg)

    channel = KfChannel(settings, handle, kb, redis=redis)

    async def ready() -> dict[str, bool]:
        return {"kf": channel.ready}

    app = make_app(handle, ready)
    mount(app, [channel])
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    await channel.start()
    return Wired(client, channel, calls)


async def close(w: Wired) -> None:
    await w.channel.stop()
    await w.client.close()


@pytest.fixture
async def kf(pipeline: Any, kb: Any, redis: Any, fake: FakeWeChatApi) -> AsyncIterator[Wired]:
    w = await wire(pipeline, kb, redis, kf_settings(fake))
    try:
        yield w
    finally:
        await close(w)


def sent_texts(fake: FakeWeChatApi, user: str | None = None) -> list[str]:
    return [c.body["text"]["content"] for c in fake.of(SEND)
            if c.body and (user is None or c.body["touser"] == user)]


async def test_url_verification_decrypts_echostr(kf: Wired) -> None:
    ts, nonce = str(int(time.time())), "12345"
    echostr = next(e for e in (wx.encrypt(wx.KF_AES_KEY, CORP_ID, b"1616140317555161061") for _ in range(200))
                   if "+" in e)
    q = {"msg_signature": wx.sha1(wx.KF_TOKEN, ts, nonce, echostr), "timestamp": ts, "nonce": nonce,
         "echostr": echostr}
    resp = await kf.client.get("/wechat/kf", params=q)
    assert resp.status == 200 and await resp.text() == "1616140317555161061"
    raw_plus = "&".join(f"{k}={v}" for k, v in q.items())  # '+' unescaped, as some proxies pass it on
    resp = await kf.client.get("/wechat/kf?" + raw_plus)
    assert resp.status == 200 and await resp.text() == "1616140317555161061"
    resp = await kf.client.get("/wechat/kf", params={**q, "msg_signature": "0" * 40})
    assert resp.status == 403
    other = wx.encrypt(wx.KF_AES_KEY, "ww_other_corp", b"1")
    q2 = {**q, "echostr": other, "msg_signature": wx.sha1(wx.KF_TOKEN, ts, nonce, other)}
    assert (await kf.client.get("/wechat/kf", params=q2)).status == 400


async def test_event_pulls_messages_and_answers_with_send_msg(kf: Wired, fake: FakeWeChatApi, pipeline: Any) -> None:
    fake.customer_message(KFID, "wmUser1", MULTI)
    assert await kf.notify("SYNCTOKEN1") == (200, "success")
    expected = [r.text for r in (await pipeline.handle(IncomingMessage(channel="ref", user_id="r", text=MULTI,
                                                                       msg_id="ref"))).replies]
    await until(lambda: len(fake.of(SEND)) == len(expected))
    assert sent_texts(fake) == expected
    body = fake.of(SEND)[0].body
    assert body and body["open_kfid"] == KFID and body["touser"] == "wmUser1"
    assert fake.sync_tokens == ["SYNCTOKEN1"]
    assert kf.calls[0].user_id == f"{KFID}:wmUser1" and kf.calls[0].channel == "kf"


async def test_cursor_in_redis_nothing_read_twice_or_skipped_across_restarts(
        pipeline: Any, kb: Any, redis: Any, fake: FakeWeChatApi) -> None:
    first = await wire(pipeline, kb, redis, kf_settings(fake, sync_limit=2))
    for i in range(3):
        fake.customer_message(KFID, f"wmU{i}", "我的微信号被盗了怎么办")
    await first.notify()
    await first.idle()
    await close(first)
    assert len(first.calls) == 3
    # "restart": a new process, and more messages arrived meanwhile
    second = await wire(pipeline, kb, redis, kf_settings(fake, sync_limit=2))
    try:
        fake.customer_message(KFID, "wmU9", "我的微信号被盗了怎么办")
        await second.notify()
        await second.idle()
        assert [m.user_id for m in second.calls] == [f"{KFID}:wmU9"]
        cursors = [c.body["cursor"] for c in fake.of(SYNC) if c.body]
        assert cursors == ["", "2", "3"]  # paged by 2, then resumed where the first left off
        assert len(sent_texts(fake)) == 4
    finally:
        await close(second)


async def test_two_processes_share_the_cursor_and_answer_each_message_once(
        pipeline: Any, kb: Any, redis: Any, fake: FakeWeChatApi) -> None:
    a = await wire(pipeline, kb, redis, kf_settings(fake, sync_limit=1))
    b = await wire(pipeline, kb, redis, kf_settings(fake, sync_limit=1))
    try:
        for i in range(6):
            fake.customer_message(KFID, f"wmP{i}", "我的微信号被盗了怎么办")
        await asyncio.gather(a.notify(), b.notify(), a.notify(), b.notify())
        await a.idle()
        await b.idle()
        handled = sorted(m.user_id for m in a.calls + b.calls)
        assert handled == sorted(f"{KFID}:wmP{i}" for i in range(6))
        assert sorted(c.body["touser"] for c in fake.of(SEND) if c.body) == sorted(f"wmP{i}" for i in range(6))
    finally:
        await close(a)
        await close(b)


async def test_redelivered_message_is_answered_once(kf: Wired, fake: FakeWeChatApi) -> None:
    fake.customer_message(KFID, "wmDup", "我的微信号被盗了怎么办", msgid="SAME")
    fake.customer_message(KFID, "wmDup", "我的微信号被盗了怎么办", msgid="SAME")
    await kf.notify()
    await kf.idle()
    await asyncio.sleep(0.1)
    assert len(sent_texts(fake, "wmDup")) == 1


async def test_enter_session_welcome_uses_the_welcome_code(kf: Wired, fake: FakeWeChatApi, kb: Any) -> None:
    fake.kf_event(KFID, {"event_type": "enter_session", "external_userid": "wmNew", "scene": "s",
                         "welcome_code": "WELCOME_CODE_1"})
    await kf.notify()
    await until(lambda: len(fake.of(ON_EVENT)) == 1)
    body = fake.of(ON_EVENT)[0].body
    assert body and body["code"] == "WELCOME_CODE_1" and body["msgtype"] == "text"
    assert body["text"]["content"].startswith(text_of(kb, "kf_welcome")) and "1." in body["text"]["content"]
    fake.customer_message(KFID, "wmNew", "1")  # the menu is live: a number picks a scenario
    await kf.notify()
    await until(lambda: len(fake.of(SEND)) >= 1)
    assert sent_texts(fake, "wmNew")[0] != text_of(kb, "menu_reprompt")


async def test_human_without_servicer_is_honest_with_hotline(kf: Wired, fake: FakeWeChatApi, kb: Any) -> None:
    fake.customer_message(KFID, "wmH", "人工")
    await kf.notify()
    await until(lambda: len(fake.of(SEND)) == 1)
    text = sent_texts(fake, "wmH")[0]
    assert kb.hotlines["110"].number in text and fake.of(TRANS) == []


async def test_human_with_servicer_hands_over_and_bot_stays_quiet(
        pipeline: Any, kb: Any, redis: Any, fake: FakeWeChatApi) -> None:
    w = await wire(pipeline, kb, redis, kf_settings(fake, servicer_userid="zhangsan"))
    try:
        fake.customer_message(KFID, "wmH2", "转人工")
        await w.notify()
        # the transfer follows the notice: wait for both (under load the second is a moment later)
        await until(lambda: len(fake.of(SEND)) == 1 and len(fake.of(TRANS)) >= 1)
        trans = fake.of(TRANS)
        assert len(trans) == 1 and trans[0].body == {"open_kfid": KFID, "external_userid": "wmH2",
                                                     "service_state": 3, "servicer_userid": "zhangsan"}
        assert sent_texts(fake, "wmH2") == [text_of(kb, "kf_handoff")]
        # the notice went out while the bot still had the conversation: once a human has it
        # the platform refuses API sends (95018), so the order is notice first, then trans
        assert [c.body["touser"] for c in fake.delivered if c.body] == ["wmH2"]
        assert fake.calls.index(fake.delivered[0]) < fake.calls.index(trans[0])
        fake.customer_message(KFID, "wmH2", "我的微信号被盗了怎么办")  # now talking to the human
        await w.notify()
        await w.idle()
        assert len(sent_texts(fake, "wmH2")) == 1
        fake.kf_event(KFID, {"event_type": "session_status_change", "external_userid": "wmH2", "change_type": 3})
        fake.customer_message(KFID, "wmH2", "我的微信号被盗了怎么办")  # session ended: the bot answers again
        await w.notify()
        await until(lambda: len(sent_texts(fake, "wmH2")) == 2)
    finally:
        await close(w)


async def test_failed_handoff_falls_back_to_the_honest_answer(
        pipeline: Any, kb: Any, redis: Any, fake: FakeWeChatApi) -> None:
    w = await wire(pipeline, kb, redis, kf_settings(fake, servicer_userid="zhangsan"))
    try:
        fake.fail(TRANS, {"errcode": 95014, "errmsg": "servicer not in this account"})
        fake.customer_message(KFID, "wmH3", "人工")
        await w.notify()
        await until(lambda: len(fake.of(SEND)) == 3)
        notice, failed, honest = sent_texts(fake, "wmH3")
        assert notice == text_of(kb, "kf_handoff") and failed == text_of(kb, "kf_handoff_failed")
        assert kb.hotlines["110"].number in honest and honest != notice
    finally:
        await close(w)


async def test_send_count_limit_packs_replies_into_five(pipeline: Any, kb: Any, redis: Any,
                                                       fake: FakeWeChatApi) -> None:
    w = await wire(pipeline, kb, redis, kf_settings(fake, max_sends_per_message=2))
    try:
        fake.customer_message(KFID, "wmC", MULTI)  # three replies
        await w.notify()
        await w.idle()
        texts = sent_texts(fake, "wmC")
        assert len(texts) == 2 and all(len(t.encode()) <= 2000 for t in texts)
    finally:
        await close(w)


async def test_messages_older_than_the_send_window_are_not_answered(kf: Wired, fake: FakeWeChatApi) -> None:
    fake.customer_message(KFID, "wmOld", "我的微信号被盗了怎么办", send_time=int(time.time()) - 49 * 3600)
    fake.customer_message(KFID, "wmNow", "我的微信号被盗了怎么办")
    await kf.notify()
    await until(lambda: len(fake.of(SEND)) == 1)
    await kf.idle()
    assert [m.user_id for m in kf.calls] == [f"{KFID}:wmNow"]


async def test_non_text_asks_to_type(kf: Wired, fake: FakeWeChatApi, kb: Any) -> None:
    fake.customer_image(KFID, "wmImg")
    await kf.notify()
    await until(lambda: len(fake.of(SEND)) == 1)
    assert sent_texts(fake, "wmImg") == [text_of(kb, "non_text")]


async def test_failed_sync_moves_no_cursor_and_the_next_event_catches_up(
        kf: Wired, fake: FakeWeChatApi) -> None:
    fake.customer_message(KFID, "wmF", "我的微信号被盗了怎么办")
    fake.fail(SYNC, {"errcode": -1, "errmsg": "system busy"})
    await kf.notify()
    await kf.idle()
    assert kf.calls == []
    await kf.notify()
    await until(lambda: len(fake.of(SEND)) == 1)
    assert [c.body["cursor"] for c in fake.of(SYNC) if c.body] == ["", ""]


async def test_bad_callbacks_are_refused_and_pull_nothing(kf: Wired, fake: FakeWeChatApi) -> None:
    query, body = wx.kf_event_callback(CORP_ID, KFID, "T")
    assert (await kf.client.post("/wechat/kf", params={**query, "msg_signature": "1" * 40}, data=body)).status == 403
    stale, body2 = wx.kf_event_callback(CORP_ID, KFID, "T", timestamp=int(time.time()) - 7200)
    assert (await kf.client.post("/wechat/kf", params=stale, data=body2)).status == 403
    assert (await kf.client.post("/wechat/kf", params=query, data="<xml><Encrypt>")).status == 400
    other, body3 = wx.kf_event_callback("ww_other_corp", KFID, "T")
    assert (await kf.client.post("/wechat/kf", params=other, data=body3)).status == 400
    await asyncio.sleep(0.05)
    assert fake.of(SYNC) == []


def test_settings_all_four_or_none(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CORP_ID", "SECRET", "TOKEN", "AES_KEY", "API_BASE", "SERVICER_USERID"):
        monkeypatch.delenv(f"FANZHA_KF_{name}", raising=False)
    assert kf_settings_from_env(_env_file=None) is None
    monkeypatch.setenv("FANZHA_KF_SECRET", "a-secret-value")
    with pytest.raises(ValueError, match="FANZHA_KF_CORP_ID") as err:
        kf_settings_from_env(_env_file=None)
    assert "a-secret-value" not in str(err.value)
    monkeypatch.setenv("FANZHA_KF_CORP_ID", CORP_ID)
    monkeypatch.setenv("FANZHA_KF_TOKEN", wx.KF_TOKEN)
    monkeypatch.setenv("FANZHA_KF_AES_KEY", wx.KF_AES_KEY)
    s = kf_settings_from_env(_env_file=None)
    assert s is not None and s.api_base == "https://qyapi.weixin.qq.com" and s.servicer_userid is None


async def test_a_page_read_again_after_a_crash_is_answered_once(kf: Wired, fake: FakeWeChatApi, redis: Any) -> None:
    """Crash between answering a page and saving the cursor: the next pull reads it again."""
    fake.customer_message(KFID, "wmCrash", "我的微信号被盗了怎么办")
    await kf.notify()
    await until(lambda: len(fake.of(SEND)) == 1)
    await kf.idle()
    cursor_keys = [k async for k in redis.scan_iter(match="fanzha:kf:cursor:*")]
    assert len(cursor_keys) == 1 and await redis.get(cursor_keys[0]) == b"1"
    await redis.delete(cursor_keys[0])  # as if the process died before saving it
    await kf.notify()
    await kf.idle()
    assert len(fake.of(SYNC)) == 2 and len(fake.of(SEND)) == 1
    assert await redis.ttl(cursor_keys[0]) > 0  # saved again, with a TTL like every key


async def test_pipeline_marks_a_request_for_a_human(pipeline: Any) -> None:
    asks = await pipeline.handle(IncomingMessage(channel="kf", user_id="h", text="转人工", msg_id="h1"))
    other = await pipeline.handle(IncomingMessage(channel="kf", user_id="h", text="我的微信号被盗了", msg_id="h2"))
    assert asks.handoff and asks.replies and not other.handoff


async def test_callback_naming_no_account_pulls_every_account(kf: Wired, fake: FakeWeChatApi) -> None:
    fake.customer_message(KFID, "wmA1", "我的微信号被盗了怎么办")
    fake.customer_message("wkOTHERACCOUNT", "wmB1", "我的微信号被盗了怎么办")
    query, body = wx.kf_event_callback(CORP_ID, None, "T")
    resp = await kf.client.post("/wechat/kf", params=query, data=body)
    assert resp.status == 200
    await until(lambda: len(fake.of(SEND)) == 2)
    assert sorted((c.body["open_kfid"], c.body["touser"]) for c in fake.of(SEND) if c.body) == [
        (KFID, "wmA1"), ("wkOTHERACCOUNT", "wmB1")]
    assert all(c.body and "open_kfid" not in c.body for c in fake.of(SYNC))


async def test_enter_session_without_welcome_code_leaves_the_dialog_alone(kf: Wired, fake: FakeWeChatApi) -> None:
    fake.customer_message(KFID, "wmBack", "我的微信号被盗了怎么办")
    await kf.notify()
    await until(lambda: len(fake.of(SEND)) >= 1)
    fake.kf_event(KFID, {"event_type": "enter_session", "external_userid": "wmBack", "scene": "s"})
    await kf.notify()
    await kf.idle()
    assert [m.text for m in kf.calls] == ["我的微信号被盗了怎么办"] and fake.of(ON_EVENT) == []


async def test_a_poison_item_is_skipped_not_read_forever(kf: Wired, fake: FakeWeChatApi) -> None:
    handle = kf.channel._handle

    async def breaks_on_one(msg: IncomingMessage) -> Outcome:
        if msg.text == "boom":
            raise RuntimeError("a bug")
        return await handle(msg)

    kf.channel._handle = breaks_on_one
    fake.customer_message(KFID, "wmBoom", "boom")
    fake.customer_message(KFID, "wmAfter", "我的微信号被盗了怎么办")
    await kf.notify()
    await until(lambda: len(fake.of(SEND)) == 1)
    await kf.idle()
    await kf.notify()  # the next pull starts after both: the broken one is not read again
    await kf.idle()
    assert sent_texts(fake, "wmAfter") and len(fake.of(SEND)) == 1
    assert [c.body["cursor"] for c in fake.of(SYNC) if c.body] == ["", "2"]


async def test_ids_too_long_for_a_conversation_are_skipped(kf: Wired, fake: FakeWeChatApi) -> None:
    fake.customer_message(KFID, "wm" + "x" * 200, "我的微信号被盗了怎么办")
    fake.customer_message(KFID, "wmOk", "我的微信号被盗了怎么办")
    await kf.notify()
    await until(lambda: len(fake.of(SEND)) == 1)
    await kf.idle()
    assert [m.user_id for m in kf.calls] == [f"{KFID}:wmOk"]


async def test_random_bad_input_never_gets_a_5xx(kf: Wired) -> None:
    import random

    rng = random.Random(7)
    statuses = set()
    for i in range(80):
        junk = "".join(rng.choice(["<xml>", "</xml>", "QUJD", "=", "中", "\x00", "<Encrypt>", "]]>", "&lt;"])
                       for _ in range(rng.randrange(1, 10)))
        ts, nonce = str(int(time.time())), str(i)
        q = {"msg_signature": wx.sha1(wx.KF_TOKEN, ts, nonce, junk), "timestamp": ts, "nonce": nonce}
        resp = await kf.client.post("/wechat/kf", params=q, data=f"<xml><Encrypt><![CDATA[{junk}]]></Encrypt></xml>")
        statuses.add(resp.status)
        resp = await kf.client.get("/wechat/kf", params={**q, "echostr": junk})
        statuses.add(resp.status)
    assert statuses <= {200, 400, 403}, statuses


async def test_refused_secret_makes_the_channel_not_ready(pipeline: Any, kb: Any, redis: Any,
                                                          fake: FakeWeChatApi) -> None:
    w = await wire(pipeline, kb, redis, kf_settings(fake, secret="wrong-secret"))
    try:
        fake.customer_message(KFID, "wmS", "我的微信号被盗了怎么办")
        assert w.channel.ready
        await w.notify()
        await until(lambda: not w.channel.ready)
        resp = await w.client.get("/readyz")
        assert resp.status == 503 and (await resp.json())["checks"]["kf"] is False
        assert w.calls == []  # nothing pulled, so nothing lost: the cursor is where it was
    finally:
        await close(w)


@pytest.mark.parametrize("timestamp", ["²", "¹²³"])
async def test_non_ascii_digit_timestamp_is_403_not_5xx(kf: Wired, timestamp: str) -> None:
    """``str.isdigit`` accepts superscripts, which ``int`` then refuses: that was a 500."""
    nonce = "1"
    echostr = wx.encrypt(wx.KF_AES_KEY, CORP_ID, b"1")
    q = {"msg_signature": wx.sha1(wx.KF_TOKEN, timestamp, nonce, echostr), "timestamp": timestamp,
         "nonce": nonce, "echostr": echostr}
    assert (await kf.client.get("/wechat/kf", params=q)).status == 403


async def test_kf_signed_fuzz_never_5xx(kf: Wired) -> None:
    rng = random.Random(2027)
    statuses: set[int] = set()
    for i in range(200):
        ts, nonce = odd_value(rng), odd_value(rng)
        body = odd_body(rng)
        enc = wx.encrypt(wx.KF_AES_KEY, CORP_ID, body if isinstance(body, bytes) else body.encode())
        try:
            sig = wx.sha1(wx.KF_TOKEN, ts, nonce, enc)
        except UnicodeEncodeError:
            sig = "0" * 40
        query = {"msg_signature": sig, "timestamp": ts, "nonce": nonce}
        if i % 3 == 0:
            resp = await kf.client.get("/wechat/kf", params={**query, "echostr": enc})
        else:
            resp = await kf.client.post("/wechat/kf", params=query, data=f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>")
        statuses.add(resp.status)
    assert statuses <= {200, 400, 403}, statuses
    assert {200, 403} <= statuses


async def test_first_pull_without_a_cursor_skips_the_backlog(kf: Wired, fake: FakeWeChatApi) -> None:
    """With no cursor yet (first start, or Redis lost its data) kf/sync_msg begins at the
    oldest messages the platform keeps: the bot must not answer hours-old questions then."""
    fake.customer_message(KFID, "wmBack", "我的微信号被盗了怎么办", send_time=int(time.time()) - 3600)
    fake.customer_message(KFID, "wmNow", "我的微信号被盗了怎么办")
    await kf.notify()
    await until(lambda: len(fake.of(SEND)) >= 1)
    await kf.idle()
    assert sent_texts(fake, "wmBack") == [] and len(sent_texts(fake, "wmNow")) >= 1
    # once a cursor exists, a late-arriving older message is answered (it is new to us)
    fake.customer_message(KFID, "wmLate", "我的微信号被盗了怎么办", send_time=int(time.time()) - 3600)
    await kf.notify()
    await until(lambda: len(sent_texts(fake, "wmLate")) >= 1)

