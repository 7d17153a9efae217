"""``python -m bot.bench_mp``: the 公众号 passive reply under load. Prints; asserts nothing.

WeChat waits 5 s for the answer to each callback, so what matters is the tail: this prints
the p50/p99/max of the time from sending a signed (and, by default, AES-encrypted) callback
to receiving the passive reply, over real HTTP on 127.0.0.1, through the real channel and
pipeline on a real Redis-protocol server (embedded Valkey unless ``--redis-url``). Users run
concurrently, each one's messages in sequence as a person's are. The customer-service API
that carries the extra messages is a tiny local stand-in that answers ``ok`` at once; its
sends are paced, so they never count towards the passive latency. Simulated users type at
once, faster than any person, so a message often arrives while the previous answer is still
going out by API; it then queues behind it (``queued_behind_previous``) rather than overtake.
``over_budget`` counts answers that missed the 4 s budget.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession, TCPConnector, web

from bot.bench import CONVERSATION, _free_port, summarise
from bot.channels.wxbase.crypto import MessageCrypto

TOKEN, APP_ID, SECRET = "benchtoken", "wxbench000000000", "bench-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
BACKLOG = 1024
"""As ``bot.server`` listens: WeChat opens a connection per callback, and a burst over the
default backlog of 128 waits a whole SYN retransmission (1 s) in the kernel."""


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


async def _fake_api() -> tuple[web.AppRunner, str, dict[str, int]]:
    counts = {"token": 0, "send": 0}

    async def token(request: web.Request) -> web.Response:
        counts["token"] += 1
        return web.json_response({"access_token": "BENCHTOKEN", "expires_in": 7200})

    async def send(request: web.Request) -> web.Response:
        await request.read()
        counts["send"] += 1
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    app = web.Application()
    app.router.add_get("/cgi-bin/token", token)
    app.router.add_post("/cgi-bin/message/custom/send", send)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}", counts


async def run(users: int, per_user: int, safe: bool, redis_url: str | None) -> dict[str, object]:
    from bot.channels.mp import MpChannel, MpSettings
    from bot.http_app import make_app
    from bot.metrics import REGISTRY
    from bot.runtime import Runtime
    from bot.server import mount
    from bot.settings import Settings

    api_runner, api_base, counts = await _fake_api()
    overrides: dict[str, object] = {"rate_user_per_min": 10**9}
    if redis_url:
        overrides["redis_url"] = redis_url
    settings = Settings(_env_file=None, data_dir=Path(tempfile.mkdtemp(prefix="fanzha-bench-mp-")), **overrides)  # type: ignore[arg-type]
    runtime = Runtime(settings)
    pipeline = await runtime.start()
    mp = MpChannel(MpSettings(_env_file=None, token=TOKEN, app_id=APP_ID, app_secret=SECRET,
                              aes_key=AES_KEY if safe else None, api_base=api_base, send_interval_user_s=0.2,
                              send_interval_global_s=0.001),
                   pipeline.handle, pipeline.kb, redis=runtime.redis, key_prefix=settings.key_prefix)

    async def ready() -> dict[str, bool]:
        return {"mp": mp.ready}

    app = make_app(pipeline.handle, ready)
    mount(app, [mp])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await mp.start()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=BACKLOG).start()
    url = f"http://127.0.0.1:{port}/wechat/mp"
    crypto = MessageCrypto(AES_KEY, APP_ID)
    run_id = secrets.token_hex(4)
    lat: list[float] = []

    def event(name: str) -> int:
        value = REGISTRY.get_sample_value("fanzha_official_events_total", {"channel": "mp", "event": name})
        return int(value or 0)

    outcomes = {"passive": 0, "success": 0, "other": 0}

    def request(uid: int, i: int) -> tuple[dict[str, str], bytes]:
        ts, nonce = str(int(time.time())), secrets.token_hex(4)
        xml = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[o{run_id}{uid}]]>"
               f"</FromUserName><CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>"
               f"<![CDATA[{CONVERSATION[i % len(CONVERSATION)]}]]></Content><MsgId>{uid}{i:04d}</MsgId></xml>")
        query = {"signature": _sha1(TOKEN, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": "o"}
        if not safe:
            return query, xml.encode()
        enc = crypto.encrypt(xml.encode())
        query |= {"encrypt_type": "aes", "msg_signature": _sha1(TOKEN, ts, nonce, enc)}
        return query, f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>".encode()

    async def user(http: ClientSession, uid: int, record: bool) -> None:
        for i in range(per_user):
            query, body = request(uid, i)
            t = time.perf_counter()
            async with http.post(url, params=query, data=body) as resp:
                text = await resp.text()
            if record:
                lat.append(time.perf_counter() - t)
                key = "success" if text == "success" else "passive" if resp.status == 200 else "other"
                outcomes[key] += 1

    try:
        async with ClientSession(connector=TCPConnector(limit=0)) as http:  # WeChat opens many connections
            await asyncio.gather(*(user(http, 10**6 + u, False) for u in range(min(users, 10))))  # warm-up
            base = {name: event(name) for name in ("passive_timeout", "queued_behind")}
            started = time.perf_counter()
            await asyncio.gather(*(user(http, u, True) for u in range(users)))
            wall = time.perf_counter() - started
        await mp.stop(drain_timeout=30)
    finally:
        await runner.cleanup()
        await runtime.close()
        await api_runner.cleanup()
    out = summarise(lat, wall, f"mp passive ({'safe' if safe else 'plain'} mode, HTTP)")
    out |= {"max_ms": round(max(lat) * 1e3, 3) if lat else 0.0, "users": users, **outcomes,
            "over_budget": event("passive_timeout") - base["passive_timeout"],
            "queued_behind_previous": event("queued_behind") - base["queued_behind"],
            "api_sends": counts["send"], "token_fetches": counts["token"], "budget_ms": 4000}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.bench_mp", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--messages", type=int, default=8, help="messages per user, in sequence")
    parser.add_argument("--plain", action="store_true", help="plain mode instead of safe (AES) mode")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run(args.users, args.messages, not args.plain, args.redis_url))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        for key, value in result.items():
            print(f"{key:>14}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
