"""Privacy, faults, bad input and abuse: nothing lost, nothing leaked, never a crash."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from redis.asyncio import Redis

from bot.logs import JsonFormatter
from bot.models import IncomingMessage
from bot.pipeline import Pipeline
from bot.privacy import luhn_ok, redact, valid_id_number
from bot.settings import SettingsError, load_settings
from bot.store.embedded import EmbeddedValkey
from knowledge.schema import KnowledgeBase

from .helpers import joined, say, text_of

ROOT = Path(__file__).resolve().parents[1]

ID_NUMBER = "11010519491231002X"
CARD = "6222020200000000006"  # passes Luhn
MOBILE = "13812345678"
CODE = "583920"
PASSWORD = "Abc@12345"


def test_detectors() -> None:
    assert valid_id_number(ID_NUMBER) and not valid_id_number("110105194912310021")
    assert luhn_ok(CARD) and not luhn_ok("6222020200000000009")
    r = redact(f"身份证{ID_NUMBER} 卡号{CARD} 电话{MOBILE} 验证码是{CODE} 密码：{PASSWORD}")
    for secret in (ID_NUMBER, CARD, MOBILE, CODE, PASSWORD):
        assert secret not in r.text
    assert r.kinds == {"id_number", "bank_card", "mobile", "code", "password"}
    assert redact("我被骗了3000元，2024年5月").kinds == set()


async def test_personal_data_never_reaches_redis_or_logs(pipeline: Pipeline, redis: Redis, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    messages = [
        f"我的身份证号{ID_NUMBER}被人拿去贷款了",
        f"银行卡 {CARD} 被盗刷了",
        f"骗子打我电话{MOBILE}",
        f"他让我报验证码，我说了 {CODE}",
        f"我的支付密码是{PASSWORD}",
    ]
    outs = [await say(pipeline, m, user="pii", room_id=None) for m in messages]
    outs.append(await say(pipeline, f"@反诈助手 我卡号{CARD}被盗了", user="pii2", room_id="g1", mentioned=True))
    replies = "\n".join(joined(o) for o in outs)
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    stored = []
    for key in await redis.keys("*"):
        assert await redis.ttl(key) > 0, key
        kind = await redis.type(key)
        if kind == b"string":
            stored.append((await redis.get(key) or b"").decode())
        elif kind == b"hash":
            stored.append(json.dumps({k.decode(): v.decode() for k, v in (await redis.hgetall(key)).items()}))
        stored.append(key.decode())
    blob = "\n".join(stored)
    for secret in (ID_NUMBER, CARD, MOBILE, CODE, PASSWORD):
        assert secret not in blob
        assert secret not in logged
        assert secret not in replies
    assert outs[3].replies[0].text.startswith(text_of(pipeline.kb, "secret_warning", what="验证码")[:10])


async def test_redis_down_gives_static_answer_and_recovers(make_pipeline, tmp_path: Path, kb: KnowledgeBase) -> None:  # type: ignore[no-untyped-def]
    server = EmbeddedValkey(tmp_path / "v")
    url = server.start()
    host, port = url.removeprefix("redis://").split(":")
    from bot.runtime import make_redis

    client = make_redis(url, timeout_s=0.5)
    pipeline = make_pipeline(client)
    try:
        ok = await say(pipeline, "1", user="rd")
        assert ok.state == "scenario"
        server.stop()
        down = await say(pipeline, "我被骗了5000块，刚转给刷单的", user="rd")
        assert down.state == "degraded"
        assert "110" in joined(down)
        assert joined(down).endswith(text_of(kb, "legal_note"))  # the urgent reply cites 第二十条
        unknown = await say(pipeline, "菜单", user="rd")
        assert joined(unknown) == text_of(kb, "static_fallback")
        server2 = EmbeddedValkey(tmp_path / "v", port=int(port))  # back where the client expects it
        server2.start()
        try:
            for _ in range(50):
                back = await say(pipeline, "下一步", user="rd")
                if back.state != "degraded":
                    break
                await asyncio.sleep(0.1)
            assert back.state == "scenario" and back.scenario == "account_stolen"  # session survived
        finally:
            server2.stop()
    finally:
        await client.aclose()


async def test_a_step_that_raises_gets_a_polite_fallback_and_keeps_the_session(pipeline: Pipeline, kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch) -> None:
    await say(pipeline, "2", user="boom")
    original = pipeline.dialog.step

    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("bug in a step")

    monkeypatch.setattr(pipeline.dialog, "step", broken)
    out = await say(pipeline, "下一步", user="boom")
    assert joined(out) == text_of(kb, "error_fallback")
    monkeypatch.setattr(pipeline.dialog, "step", original)
    after = await say(pipeline, "下一步", user="boom")
    assert after.scenario == "wallet_loss"
    assert pipeline.store.local_lock_count == 0


async def test_flood_gets_one_notice_then_silence(make_pipeline, kb: KnowledgeBase) -> None:  # type: ignore[no-untyped-def]
    pipeline = make_pipeline(rate_user_per_min=5)
    outs = [await say(pipeline, "你好", user="flood") for _ in range(9)]
    assert all(o.replies for o in outs[:5])
    assert joined(outs[5]) == text_of(kb, "rate_limited")
    assert all(not o.replies for o in outs[6:])
    assert (await say(pipeline, "你好", user="calm")).replies


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=3000))
async def test_any_text_gets_a_valid_reply_list(pipeline: Pipeline, text: str) -> None:
    out = await pipeline.handle(IncomingMessage(user_id="fuzz", text=text))
    assert out.replies, repr(text)
    assert all(isinstance(r.text, str) and r.text.strip() for r in out.replies)
    assert out.state not in ("error",)


def test_api_beyond_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FANZHA_HTTP_HOST", "0.0.0.0")
    with pytest.raises(SettingsError, match="FANZHA_API_TOKEN"):
        load_settings(_env_file=None)
    monkeypatch.setenv("FANZHA_API_TOKEN", "")  # empty is no token, never "auth off"
    with pytest.raises(SettingsError, match="FANZHA_HTTP_HOST"):
        load_settings(_env_file=None)
    monkeypatch.setenv("FANZHA_API_TOKEN", "short-token")
    with pytest.raises(SettingsError, match="at least 16") as err:
        load_settings(_env_file=None)
    assert "short-token" not in str(err.value)  # a secret is never echoed
    monkeypatch.setenv("FANZHA_API_TOKEN", "t" * 16)
    assert load_settings(_env_file=None).http_host == "0.0.0.0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_serves_then_stops_cleanly_on_sigterm(redis_url: str) -> None:
    port = _free_port()
    env = {**os.environ, "FANZHA_REDIS_URL": redis_url, "FANZHA_HTTP_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import urllib.request

        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    assert json.load(r)["ready"] is True
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.time() < deadline, "bot did not become ready"
                time.sleep(0.2)
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/messages",
            data=json.dumps({"user_id": "sig", "text": "钱包里的钱没了"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.load(r)["scenario"] == "wallet_loss"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_url)
    try:
        assert client.keys("*:lock") == []  # no conversation left locked by the stopped process
    finally:
        client.close()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr
    for line in stderr.splitlines():
        if line.startswith("{"):
            assert "钱包里的钱没了" not in line


def test_log_lines_are_json_and_drop_unlisted_fields() -> None:
    record = logging.LogRecord("bot.pipeline", logging.INFO, __file__, 1, "turn", None, None)
    record.text = f"我的卡号{CARD}"  # a careless extra=... must not reach the log
    record.conv = "abc123"
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "turn" and line["conv"] == "abc123"
    assert "text" not in line and CARD not in json.dumps(line, ensure_ascii=False)


@pytest.mark.parametrize("text,secret", [("我的支付密码123456", "123456"), ("密码 abc12345", "abc12345"),
                                         ("验证码是 8 8 8 8 8 8", "8 8 8 8 8 8"), ("pwd xyz98765", "xyz98765"),
                                         ("PIN 4321 发给客服了", "4321")])
async def test_secrets_in_everyday_forms_are_warned_and_dropped(pipeline: Pipeline, kb: KnowledgeBase, text: str, secret: str) -> None:
    out = await say(pipeline, text, user="forms")
    assert out.replies[0].text.startswith(text_of(kb, "secret_warning", what="x")[:6])
    assert secret not in joined(out)


async def test_non_text_is_deduplicated_too(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    first = await pipeline.handle(IncomingMessage(user_id="img", kind="non_text", msg_id="pic-1"))
    again = await pipeline.handle(IncomingMessage(user_id="img", kind="non_text", msg_id="pic-1"))
    assert joined(first) == text_of(kb, "non_text")
    assert again.duplicate and again.replies == first.replies


async def test_a_redelivery_during_a_flood_still_gets_its_replies(make_pipeline) -> None:  # type: ignore[no-untyped-def]
    pipeline = make_pipeline(rate_user_per_min=2)
    first = await say(pipeline, "你好", user="re", msg_id="keep")
    for _ in range(4):
        await say(pipeline, "你好", user="re")
    again = await say(pipeline, "你好", user="re", msg_id="keep")
    assert again.duplicate and again.replies == first.replies


@pytest.mark.parametrize("text, code", [
    ("验证码发到我妈手机上了 她读给我听 是739201 对不对", "739201"),
    ("两个验证码 一个 739201 一个 582044", "582044"),
])
def test_a_code_further_from_the_word_is_still_redacted(text: str, code: str) -> None:
    r = redact(text)
    assert code not in r.text and "code" in r.secrets


@pytest.mark.parametrize("text, kept", [
    ("转了200000 他还要验证码", "200000"),
    ("他要验证码 我打了95017", "95017"),
    ("验证码给了 转了2000", "2000"),
])
def test_amounts_and_hotlines_near_the_word_code_keep_their_number(text: str, kept: str) -> None:
    """Over-redaction has a cost too: the amount or the hotline the user called is lost."""
    assert kept in redact(text).text
