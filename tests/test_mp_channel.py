"""The 公众号 channel end to end: WeChat-built callbacks → real pipeline (real Redis-protocol
server) → passive reply + customer-service sends to a local fake of api.weixin.qq.com."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.channels.mp import MpChannel, MpSettings, mp_settings_from_env
from bot.channels.wxbase.wxxml import parse
from bot.http_app import make_app
from bot.models import IncomingMessage, Outcome
from bot.server import mount
from tests.helpers import text_of
from tests.wechaty_peer.support import until
from tests.wx_peer import callbacks as wx
from tests.wx_peer.fake_api import APP_ID, APP_SECRET, FakeWeChatApi
from tests.wx_peer.fuzz import odd_body, odd_value

SEND = "/cgi-bin/message/custom/send"
MULTI = "我被骗了两千块钱，对方是刷单的"  # three replies from the pipeline


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeChatApi]:
    api = FakeWeChatApi()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


def mp_settings(fake: FakeWeChatApi, **overrides: Any) -> MpSettings:
    values: dict[str, Any] = dict(token=wx.MP_TOKEN, app_id=APP_ID, app_secret=APP_SECRET, aes_key=None,
                                  api_base=fake.url, send_interval_user_s=0.02, send_interval_global_s=0.0,
                                  send_retry_backoff_s=0.01)
    values.update(overrides)
    return MpSettings(_env_file=None, **values)  # type: ignore[call-arg]


class Wired:
    def __init__(self, client: TestClient, channel: MpChannel, calls: list[IncomingMessage]) -> None:
        self.client, self.channel, self.calls = client, channel, calls

    async def post(self, query: dict[str, str], body: str | bytes) -> tuple[int, str]:
        resp = await self.client.post("/wechat/mp", params=query, data=body)
        return resp.status, await resp.text()

    async def plain(self, xml: str) -> tuple[int, str]:
        return await self.post(wx.mp_plain_query(), xml)


async def wire(pipeline: Any, kb: Any, redis: Any, settings: MpSettings, slow_s: float = 0.0) -> Wired:
    calls: list[IncomingMessage] = []

    async def handle(msg: IncomingMessage) -> Outcome:
        calls.append(msg)
        if slow_s:
            await asyncio.sleep(slow_s)
        return await pipeline.handle(msg)

    channel = MpChannel(settings, handle, kb, redis=redis)

    async def ready() -> dict[str, bool]:
        return {"mp": channel.ready}

    app = make_app(handle, ready)
    mount(app, [channel])
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    await channel.start()
    return Wired(client, channel, calls)


@pytest.fixture
async def mp(pipeline: Any, kb: Any, redis: Any, fake: FakeWeChatApi) -> AsyncIterator[Wired]:
    """A 公众号 in plain mode (no EncodingAESKey)."""
    w = await wire(pipeline, kb, redis, mp_settings(fake))
    try:
        yield w
    finally:
        await w.channel.stop()
        await w.client.close()


@pytest.fixture
async def mps(pipeline: Any, kb: Any, redis: Any, fake: FakeWeChatApi) -> AsyncIterator[Wired]:
    """A 公众号 in safe mode (EncodingAESKey set)."""
    w = await wire(pipeline, kb, redis, mp_settings(fake, aes_key=wx.MP_AES_KEY))
    try:
        yield w
    finally:
        await w.channel.stop()
        await w.client.close()


def passive_text(body: str) -> str:
    return parse(body)["Content"]


# -- URL verification ----------------------------------------------------------------------
async def test_url_verification_echoes_only_with_a_valid_signature(mp: Wired) -> None:
    q = {**wx.mp_plain_query(), "echostr": "8734562981"}
    resp = await mp.client.get("/wechat/mp", params=q)
    assert resp.status == 200 and await resp.text() == "8734562981"
    forged = {**q, "signature": "0" * 40}
    resp = await mp.client.get("/wechat/mp", params=forged)
    assert resp.status == 403 and "8734562981" not in await resp.text()
    resp = await mp.client.get("/wechat/mp", params={"echostr": "1"})
    assert resp.status == 403


# -- plain and safe mode, multi-message answers --------------------------------------------
async def test_plain_mode_multi_message_answer_first_passive_rest_in_order(mp: Wired, fake: FakeWeChatApi,
                                                                         pipeline: Any) -> None:
    status, body = await mp.plain(wx.mp_text("oUser1", MULTI, "10001"))
    assert status == 200
    reply = parse(body)
    assert reply["ToUserName"] == "oUser1" and reply["FromUserName"] == wx.ACCOUNT and reply["MsgType"] == "text"
    # The same question through the pipeline directly (another user) gives the reference texts.
    expected = [r.text for r in (await pipeline.handle(IncomingMessage(channel="ref", user_id="ref", text=MULTI,
                                                                       msg_id="ref1"))).replies]
    assert len(expected) >= 3 and reply["Content"] == expected[0]
    await until(lambda: len(fake.of(SEND)) == len(expected) - 1)
    sent = fake.of(SEND)
    assert [c.body["text"]["content"] for c in sent if c.body] == expected[1:]
    assert all(c.body and c.body["touser"] == "oUser1" and c.body["msgtype"] == "text" for c in sent)
    assert len(fake.of("/cgi-bin/token")) == 1  # one token for all sends


async def test_safe_mode_decrypts_and_answers_encrypted(mps: Wired) -> None:
    mp = mps
    query, body = wx.mp_safe(wx.mp_text("oUser2", "我的微信号被盗了怎么办", "20001"), APP_ID)
    status, text = await mp.post(query, body)
    assert status == 200
    envelope = parse(text)
    assert wx.sha1(wx.MP_TOKEN, envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"]) == envelope["MsgSignature"]
    inner, receiver = wx.decrypt(wx.MP_AES_KEY, envelope["Encrypt"])
    assert receiver.decode() == APP_ID
    reply = parse(inner)
    assert reply["ToUserName"] == "oUser2" and reply["Content"]
    assert mp.calls[-1].text == "我的微信号被盗了怎么办" and mp.calls[-1].channel == "mp"


async def test_retried_msgid_gets_one_answer_only(mp: Wired, fake: FakeWeChatApi) -> None:
    xml = wx.mp_text("oUser3", MULTI, "30001")
    first = await mp.plain(xml)
    retries = [await mp.plain(xml) for _ in range(3)]
    assert first[0] == 200 and passive_text(first[1])
    assert retries == [(200, "success")] * 3
    await asyncio.sleep(0.3)
    assert len(fake.of(SEND)) == 2  # the rest of the first answer, nothing for the retries


async def test_concurrent_retries_while_the_first_is_still_running(pipeline: Any, kb: Any, redis: Any,
                                                                   fake: FakeWeChatApi) -> None:
    """WeChat retries after 5 s; when our answer is slower, every copy sees 'success' and the
    answer arrives once, through the API."""
    w = await wire(pipeline, kb, redis, mp_settings(fake, reply_budget_s=0.2), slow_s=0.5)
    try:
        xml = wx.mp_text("oUser4", "我的微信号被盗了怎么办", "40001")
        results = await asyncio.gather(*(w.plain(xml) for _ in range(3)))
        assert results == [(200, "success")] * 3
        await until(lambda: len(fake.of(SEND)) >= 1)
        await asyncio.sleep(0.8)
        sent = fake.of(SEND)
        assert len(sent) == 1 and sent[0].body and sent[0].body["touser"] == "oUser4"
    finally:
        await w.channel.stop()
        await w.client.close()


# -- events and message types ----------------------------------------------------------------
async def test_subscribe_gets_welcome_then_menu_and_menu_choice_works(mp: Wired, fake: FakeWeChatApi,
                                                                     kb: Any) -> None:
    created = int(time.time())
    status, body = await mp.plain(wx.mp_event("oNew", "subscribe", created))
    greeting = passive_text(body)
    assert status == 200 and greeting.startswith(text_of(kb, "mp_welcome")) and "\n1." in greeting
    assert fake.of(SEND) == []  # welcome and menu fit one passive reply
    assert (await mp.plain(wx.mp_event("oNew", "subscribe", created))) == (200, "success")  # WeChat's retry
    _, body = await mp.plain(wx.mp_text("oNew", "1", "50001"))
    assert "被盗" in passive_text(body) or len(passive_text(body)) > 20  # the first scenario, not a re-prompt
    assert passive_text(body) != text_of(kb, "menu_reprompt")


async def test_unsubscribe_and_other_events_say_nothing(mp: Wired, fake: FakeWeChatApi) -> None:
    for event in ("unsubscribe", "CLICK", "VIEW", "LOCATION"):
        assert await mp.plain(wx.mp_event("oGone", event)) == (200, "success")
    assert mp.calls == [] and fake.of(SEND) == []


async def test_voice_recognition_is_handled_as_text(mp: Wired) -> None:
    status, body = await mp.plain(wx.mp_voice("oVoice", "我的微信号被盗了怎么办", "60001"))
    assert status == 200 and passive_text(body)
    assert mp.calls[-1].kind == "text" and mp.calls[-1].text == "我的微信号被盗了怎么办"


async def test_image_and_unrecognised_voice_ask_to_type(mp: Wired, kb: Any) -> None:
    _, body = await mp.plain(wx.mp_image("oImg", "70001"))
    assert passive_text(body) == text_of(kb, "non_text")
    _, body = await mp.plain(wx.mp_voice("oImg", "", "70002"))
    assert passive_text(body) == text_of(kb, "non_text")


# -- bad input ---------------------------------------------------------------------------------
async def test_forged_or_missing_signature_is_403_and_nothing_processed(mp: Wired) -> None:
    xml = wx.mp_text("oBad", "你好", "80001")
    assert (await mp.post({**wx.mp_plain_query(), "signature": "f" * 40}, xml))[0] == 403
    assert (await mp.post({}, xml))[0] == 403
    assert (await mp.post(wx.mp_plain_query(token="wrongtoken"), xml))[0] == 403
    assert mp.calls == []


async def test_forged_msg_signature_is_403_in_safe_mode(mps: Wired) -> None:
    query, body = wx.mp_safe(wx.mp_text("oBad", "你好", "80002"), APP_ID)
    assert (await mps.post({**query, "msg_signature": "0" * 40}, body))[0] == 403
    assert (await mps.post({k: v for k, v in query.items() if k != "msg_signature"}, body))[0] == 403
    assert mps.calls == []


async def test_safe_mode_refuses_a_plain_body(mps: Wired) -> None:
    """In plain mode the signature covers only token, timestamp and nonce, never the body: a
    safe-mode account that took plain callbacks would let anyone holding one signed URL (proxy
    logs...) post any message for the whole clock-skew window. WeChat's 兼容模式 and 安全模式
    both call with ``encrypt_type=aes``, so nothing legitimate is refused."""
    xml = wx.mp_text("oForged", "菜单", "80003")
    assert (await mps.post(wx.mp_plain_query(), xml))[0] == 403
    assert (await mps.post({**wx.mp_plain_query(), "encrypt_type": "raw"}, xml))[0] == 403
    assert mps.calls == []


@pytest.mark.parametrize("timestamp", ["²", "¹²³", "١٧٠٠٠٠٠٠٠٠"])
async def test_non_ascii_digit_timestamp_is_403_not_5xx(mp: Wired, timestamp: str) -> None:
    """``str.isdigit`` accepts superscripts (``int`` then raises) and Arabic-Indic digits."""
    nonce = "1"
    query = {"timestamp": timestamp, "nonce": nonce, "signature": wx.sha1(wx.MP_TOKEN, timestamp, nonce)}
    resp = await mp.client.get("/wechat/mp", params={**query, "echostr": "e"})
    assert resp.status == 403
    assert (await mp.post(query, wx.mp_text("oTs", "你好", "80004")))[0] == 403
    assert mp.calls == []


async def test_old_or_future_timestamp_is_refused(mp: Wired) -> None:
    xml = wx.mp_text("oOld", "你好", "81001")
    assert (await mp.post(wx.mp_plain_query(timestamp=int(time.time()) - 3600), xml))[0] == 403
    assert (await mp.post(wx.mp_plain_query(timestamp=int(time.time()) + 3600), xml))[0] == 403
    assert mp.calls == []


@pytest.mark.parametrize("body", [
    "<xml><ToUserName>", "not xml at all", "",
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>',
    "<xml><MsgType>text</MsgType></xml>",  # no sender
])
async def test_malformed_xml_is_400(mp: Wired, body: str) -> None:
    status, _ = await mp.plain(body)
    assert status == 400 and mp.calls == []


async def test_wrong_appid_and_bad_padding_are_400(mps: Wired) -> None:
    mp = mps
    xml = wx.mp_text("oX", "你好", "82001")
    query, body = wx.mp_safe(xml, "wx0000000000000000")
    assert (await mp.post(query, body))[0] == 400
    query, body = wx.mp_safe(xml, APP_ID, pad=b"\x00" * 16)
    assert (await mp.post(query, body))[0] == 400
    query, body = wx.mp_safe(xml, APP_ID, aes_key="B" * 43)  # encrypted with another key
    assert (await mp.post(query, body))[0] == 400
    assert mp.calls == []


async def test_oversized_body_is_413_not_5xx(mp: Wired) -> None:
    status, _ = await mp.plain("<xml>" + "x" * 200_000 + "</xml>")
    assert status == 413


# -- the API: token refresh, retries, no silent loss ----------------------------------------
async def test_expired_token_is_refreshed_and_send_retried(mp: Wired, fake: FakeWeChatApi) -> None:
    await mp.plain(wx.mp_text("oTok", MULTI, "90001"))
    await until(lambda: len([c for c in fake.of(SEND)]) >= 2)
    fake.revoke_tokens()
    fake.fail(SEND, {"errcode": -1, "errmsg": "system error"})  # and one transient failure
    await mp.plain(wx.mp_text("oTok2", MULTI, "90002"))
    await until(lambda: len(fake.of("/cgi-bin/token")) == 2)
    await until(lambda: sum(1 for c in fake.of(SEND) if c.query.get("access_token") == "TOKEN002") >= 2)
    assert mp.channel.outbox.lost == 0


async def test_permanent_send_failure_is_logged_not_silent(mp: Wired, fake: FakeWeChatApi,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    fake.fail(SEND, {"errcode": 45015, "errmsg": "response out of time limit"})
    await mp.plain(wx.mp_text("oLate", MULTI, "91001"))
    await until(lambda: mp.channel.outbox.lost == 1)
    assert any("not delivered" in r.getMessage() and "45015" in r.getMessage() for r in caplog.records)


async def test_access_token_never_logged(mp: Wired, fake: FakeWeChatApi, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    fake.fail(SEND, {"errcode": 40003, "errmsg": "invalid openid"})
    await mp.plain(wx.mp_text("oLog", MULTI, "92001"))
    await until(lambda: len(fake.of(SEND)) >= 2)
    await asyncio.sleep(0.1)
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "TOKEN0" not in text and APP_SECRET not in text


async def test_refused_credentials_make_the_channel_not_ready(pipeline: Any, kb: Any, redis: Any,
                                                              fake: FakeWeChatApi) -> None:
    w = await wire(pipeline, kb, redis, mp_settings(fake, app_secret="wrong-secret"))
    try:
        assert w.channel.ready
        await w.plain(wx.mp_text("oR", MULTI, "93001"))
        await until(lambda: not w.channel.ready)
        resp = await w.client.get("/readyz")
        assert resp.status == 503 and (await resp.json())["checks"]["mp"] is False
    finally:
        await w.channel.stop()
        await w.client.close()


async def test_refused_token_is_not_fetched_again_for_every_queued_send(pipeline: Any, kb: Any, redis: Any,
                                                                        fake: FakeWeChatApi) -> None:
    """A wrong secret (or a token endpoint outage) must not cost one /cgi-bin/token call per
    message: that endpoint has a daily quota the account needs once the secret is fixed."""
    w = await wire(pipeline, kb, redis, mp_settings(fake, app_secret="wrong-secret"))
    try:
        for i in range(8):
            await w.plain(wx.mp_text(f"oStorm{i}", MULTI, f"95{i:03d}"))
        await until(lambda: w.channel.outbox.lost == 16)  # every one logged as lost, none silent
        assert len(fake.of("/cgi-bin/token")) == 1
    finally:
        await w.channel.stop()
        await w.client.close()


async def test_token_shared_by_two_processes_through_redis(pipeline: Any, kb: Any, redis: Any,
                                                           fake: FakeWeChatApi) -> None:
    a = await wire(pipeline, kb, redis, mp_settings(fake))
    b = await wire(pipeline, kb, redis, mp_settings(fake))
    try:
        await asyncio.gather(a.plain(wx.mp_text("oA", MULTI, "94001")), b.plain(wx.mp_text("oB", MULTI, "94002")))
        await until(lambda: len(fake.of(SEND)) == 4)
        assert len(fake.of("/cgi-bin/token")) == 1
    finally:
        for w in (a, b):
            await w.channel.stop()
            await w.client.close()


# -- settings ------------------------------------------------------------------------------------
def test_settings_need_token_to_enable_and_name_missing_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOKEN", "APP_ID", "APP_SECRET", "AES_KEY", "API_BASE"):
        monkeypatch.delenv(f"FANZHA_MP_{name}", raising=False)
    assert mp_settings_from_env(_env_file=None) is None
    monkeypatch.setenv("FANZHA_MP_TOKEN", "abc123")
    with pytest.raises(ValueError, match="FANZHA_MP_APP_ID and FANZHA_MP_APP_SECRET"):
        mp_settings_from_env(_env_file=None)
    monkeypatch.setenv("FANZHA_MP_APP_ID", APP_ID)
    monkeypatch.setenv("FANZHA_MP_APP_SECRET", "s3cret-value")
    monkeypatch.setenv("FANZHA_MP_AES_KEY", "too-short")
    with pytest.raises(ValueError, match="FANZHA_MP_AES_KEY") as err:
        mp_settings_from_env(_env_file=None)
    assert "too-short" not in str(err.value)
    monkeypatch.setenv("FANZHA_MP_AES_KEY", wx.MP_AES_KEY)
    s = mp_settings_from_env(_env_file=None)
    assert s is not None and s.api_base == "https://api.weixin.qq.com"


async def test_next_answer_queues_behind_one_still_being_sent(pipeline: Any, kb: Any, redis: Any,
                                                              fake: FakeWeChatApi) -> None:
    """A quick second message must not overtake the rest of the first answer."""
    w = await wire(pipeline, kb, redis, mp_settings(fake, send_interval_user_s=0.3))
    try:
        _, first = await w.plain(wx.mp_text("oFast", MULTI, "95001"))
        assert passive_text(first)
        status, second = await w.plain(wx.mp_text("oFast", "证据", "95002"))
        assert (status, second) == (200, "success")
        await until(lambda: len(fake.of(SEND)) == 3)
        texts = [c.body["text"]["content"] for c in fake.of(SEND) if c.body]
        evidence = [r.text for r in (await pipeline.handle(IncomingMessage(
            channel="mp", user_id="oFast", text="证据", msg_id="95002"))).replies]  # the dedupe record
        assert texts[-len(evidence):] == evidence
    finally:
        await w.channel.stop()
        await w.client.close()


async def test_customer_service_quota_packs_the_rest(pipeline: Any, kb: Any, redis: Any, fake: FakeWeChatApi) -> None:
    w = await wire(pipeline, kb, redis, mp_settings(fake, max_sends_per_message=1))
    try:
        _, body = await w.plain(wx.mp_text("oQuota", MULTI, "96001"))
        assert passive_text(body)
        await until(lambda: len(fake.of(SEND)) == 1)
        await asyncio.sleep(0.2)
        packed = fake.of(SEND)[0].body
        assert len(fake.of(SEND)) == 1 and packed and "\n\n" in packed["text"]["content"]
        assert len(packed["text"]["content"].encode()) <= 2000
    finally:
        await w.channel.stop()
        await w.client.close()


def test_split_and_pack_respect_bytes_and_count() -> None:
    from bot.channels.wxbase.text import pack, split_bytes

    long = "。".join(["被骗了要先报警并保存证据"] * 200)
    pieces = split_bytes(long, 600)
    assert all(len(p.encode()) <= 600 for p in pieces) and "".join(pieces).replace("。", "") == long.replace("。", "")
    out, dropped = pack(["a", "b", "c", "d"], 2, 100)
    assert out == ["a", "b\n\nc\n\nd"] and dropped == 0
    out, dropped = pack(["x" * 90] * 4, 2, 100)
    assert len(out) == 2 and dropped == 2


async def test_random_bad_input_never_gets_a_5xx(mp: Wired, mps: Wired) -> None:
    """Signed requests (so they reach the parsers) with garbage bodies, in both modes."""
    import random

    rng = random.Random(12)
    fragments = ["<xml>", "</xml>", "<Encrypt>", "</Encrypt>", "<![CDATA[", "]]>", "<MsgType>text</MsgType>",
                 "<FromUserName>o</FromUserName>", "<ToUserName>g</ToUserName>", "&amp;", "&#0;", "\x00", "中文",
                 "<!DOCTYPE x>", "QUJD" * 4, "=", "<Content>", "</Content>"]
    statuses = set()
    for i in range(120):
        if i % 3 == 0:
            body: bytes | str = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        else:
            body = "".join(rng.choice(fragments) for _ in range(rng.randrange(1, 12)))
        query = wx.mp_plain_query(nonce=str(i))
        if i % 2:
            enc = body if isinstance(body, str) else body.hex()
            query |= {"encrypt_type": "aes", "msg_signature": wx.sha1(wx.MP_TOKEN, query["timestamp"], str(i), enc)}
            body = f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
        status, _ = await (mps if i % 2 else mp).post(query, body)
        statuses.add(status)
    assert statuses <= {200, 400, 403}, statuses
    assert 400 in statuses


async def test_mp_signed_fuzz_never_5xx(mp: Wired, mps: Wired) -> None:
    rng = random.Random(2026)
    statuses: set[int] = set()
    for i in range(300):
        ts, nonce = odd_value(rng), odd_value(rng)
        try:
            sig = wx.sha1(wx.MP_TOKEN, ts, nonce)
        except UnicodeEncodeError:
            sig = "0" * 40
        query: dict[str, Any] = {"signature": sig, "timestamp": ts, "nonce": nonce, "openid": odd_value(rng)}
        if i % 4 == 0:
            resp = await mp.client.get("/wechat/mp", params={**query, "echostr": odd_value(rng)})
            statuses.add(resp.status)
            continue
        target, body = mp, odd_body(rng)
        if i % 4 == 1:  # safe mode: the inner message is the garbage, encrypted and signed properly
            target = mps
            inner = body if isinstance(body, bytes) else body.encode()
            enc = wx.encrypt(wx.MP_AES_KEY, APP_ID, inner)
            query |= {"encrypt_type": rng.choice(["aes", "AES", "aes "]),
                      "msg_signature": wx.sha1(wx.MP_TOKEN, ts, nonce, enc) if sig != "0" * 40 else "0"}
            body = f"<xml><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
        resp = await target.client.post("/wechat/mp", params=query, data=body)
        statuses.add(resp.status)
    assert statuses <= {200, 400, 403}, statuses
    assert {200, 400, 403} <= statuses  # the run did reach every outcome


async def test_subscribe_greets_once(mp: Wired, kb: Any) -> None:
    """The welcome comes before the menu, and the menu introduces the bot itself: the
    follower must not be greeted twice in one message ("…我是反诈助手… 你好，我是反诈助手…")."""
    status, body = await mp.plain(wx.mp_event("oGreet", "subscribe"))
    greeting = passive_text(body)
    assert status == 200 and greeting.count("我是反诈助手") == 1 and greeting.count("不是真人") == 1


async def test_plain_signed_url_cannot_carry_another_body(mp: Wired, fake: FakeWeChatApi) -> None:
    """Plain mode signs only token+timestamp+nonce: a signed URL seen once (a proxy log) must
    not carry a forged message; WeChat's own retry of the same request still gets through."""
    query = wx.mp_plain_query(nonce="424242")
    assert (await mp.post(query, wx.mp_text("oReal", "你好", "96001")))[0] == 200
    assert (await mp.post(query, wx.mp_text("oReal", "你好", "96001")))[0] == 200  # WeChat's retry
    assert (await mp.post(query, wx.mp_text("oVictim", "菜单", "96002")))[0] == 403
    assert [c.user_id for c in mp.calls] == ["oReal", "oReal"]


async def test_passive_only_account_gets_the_whole_answer_in_one_reply(pipeline: Any, kb: Any, redis: Any,
                                                                       fake: FakeWeChatApi) -> None:
    """An account without the customer-service API (an unverified 订阅号) would lose every
    message after the first (48001): with FANZHA_MP_PASSIVE_ONLY the answer is packed, in
    order, into the one passive reply, and the API is never called."""
    w = await wire(pipeline, kb, redis, mp_settings(fake, passive_only=True))
    try:
        replies = [r.text for r in (await pipeline.handle(IncomingMessage(
            channel="probe", user_id="oProbe", text=MULTI, msg_id="p1"))).replies]
        assert len(replies) >= 2
        status, body = await w.plain(wx.mp_text("oPassive", MULTI, "97001"))
        text = passive_text(body)
        assert status == 200 and len(text.encode()) <= 2048
        assert text.startswith(replies[0]) and replies[1] in text
        await asyncio.sleep(0.2)
        assert fake.of(SEND) == [] and fake.of("/cgi-bin/token") == []
    finally:
        await w.channel.stop()
        await w.client.close()

