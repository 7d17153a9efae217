"""A local fake of the 公众号 and 企业微信 APIs on 127.0.0.1, recording every call.

It speaks the wire format the real platforms document (query-string ``access_token``, JSON
bodies, ``errcode``/``errmsg`` answers) and enforces what matters to the channels: tokens are
issued by the token endpoints and can be revoked (→ 42001), bodies must be UTF-8 JSON with
the Chinese unescaped (the platforms show ``\\uXXXX`` literally), ``kf/sync_msg`` pages a
per-account message log by cursor, and failures can be scripted per path.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

APP_ID, APP_SECRET = "wx4f4bc4dec97d474b", "app-secret-for-tests"
CORP_ID, CORP_SECRET = "ww1234567890abcdef", "corp-secret-for-tests"


@dataclass
class Call:
    path: str
    query: dict[str, str]
    body: dict[str, Any] | None
    at: float = field(default_factory=time.monotonic)


class FakeWeChatApi:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.valid_tokens: set[str] = set()
        self.issued = 0
        self.failures: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.kf_log: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.all_log: list[dict[str, Any]] = []  # every account's messages, for pulls naming none
        self.sync_tokens: list[str] = []
        # 微信客服 session states (kf/service_state): 3 = with a human servicer, where the
        # platform refuses API sends with 95018 "send msg session status invalid".
        self.kf_state: dict[tuple[str, str], int] = {}
        self.delivered: list[Call] = []  # sends the platform accepted (errcode 0)
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- control -------------------------------------------------------------------------
    def fail(self, path: str, *answers: dict[str, Any]) -> None:
        """The next calls to ``path`` get these answers (in order) instead of success."""
        self.failures[path].extend(answers)

    def revoke_tokens(self) -> None:
        self.valid_tokens.clear()

    def of(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    def customer_message(self, kfid: str, user: str, text: str, msgid: str | None = None,
                         send_time: int | None = None) -> str:
        msgid = msgid or f"msg{len(self.kf_log[kfid]) + 1:04d}"
        self._log(kfid, {
            "msgid": msgid, "open_kfid": kfid, "external_userid": user, "origin": 3,
            "send_time": send_time or int(time.time()), "msgtype": "text", "text": {"content": text},
        })
        return msgid

    def customer_image(self, kfid: str, user: str) -> None:
        self._log(kfid, {
            "msgid": f"img{len(self.kf_log[kfid]) + 1:04d}", "open_kfid": kfid, "external_userid": user,
            "origin": 3, "send_time": int(time.time()), "msgtype": "image", "image": {"media_id": "MEDIA"},
        })

    def kf_event(self, kfid: str, event: dict[str, Any]) -> None:
        if event.get("event_type") == "session_status_change" and event.get("change_type") == 3:
            self.kf_state[(kfid, str(event.get("external_userid", "")))] = 4  # the servicer ended it
        self._log(kfid, {
            "msgid": f"evt{len(self.kf_log[kfid]) + 1:04d}", "origin": 4, "send_time": int(time.time()),
            "msgtype": "event", "event": {"open_kfid": kfid, **event},
        })

    def _log(self, kfid: str, item: dict[str, Any]) -> None:
        self.kf_log[kfid].append(item)
        self.all_log.append(item)

    # -- server --------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._mp_token)
        app.router.add_get("/cgi-bin/gettoken", self._kf_token)
        app.router.add_post("/cgi-bin/{tail:.*}", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _issue(self) -> dict[str, Any]:
        self.issued += 1
        token = f"TOKEN{self.issued:03d}"
        self.valid_tokens.add(token)
        return {"access_token": token, "expires_in": 7200}

    async def _mp_token(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.calls.append(Call("/cgi-bin/token", q, None))
        if q.get("grant_type") != "client_credential" or q.get("appid") != APP_ID:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        if q.get("secret") != APP_SECRET:
            return web.json_response({"errcode": 40125, "errmsg": "invalid appsecret"})
        return web.json_response(self._issue())

    async def _kf_token(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.calls.append(Call("/cgi-bin/gettoken", q, None))
        if q.get("corpid") != CORP_ID or q.get("corpsecret") != CORP_SECRET:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        return web.json_response({"errcode": 0, "errmsg": "ok", **self._issue()})

    async def _post(self, request: web.Request) -> web.Response:
        path = request.path
        q = dict(request.query)
        raw = await request.read()
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            self.calls.append(Call(path, q, None))
            return web.json_response({"errcode": 47001, "errmsg": "data format error"})
        self.calls.append(Call(path, q, body))
        if b"\\u" in raw:
            return web.json_response({"errcode": 47001, "errmsg": "escaped unicode would show literally"})
        if q.get("access_token") not in self.valid_tokens:
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if self.failures[path]:
            return web.json_response(self.failures[path].pop(0))
        if path == "/cgi-bin/kf/sync_msg":
            return web.json_response(self._sync(body))
        if path == "/cgi-bin/kf/service_state/trans":
            self.kf_state[(str(body.get("open_kfid")), str(body.get("external_userid")))] = int(body["service_state"])
        if path == "/cgi-bin/kf/send_msg" and self.kf_state.get((str(body.get("open_kfid")), str(body.get("touser")))) == 3:
            return web.json_response({"errcode": 95018, "errmsg": "send msg session status invalid"})
        if path.endswith(("/send_msg", "/send_msg_on_event", "/message/custom/send")):
            self.delivered.append(self.calls[-1])
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    def _sync(self, body: dict[str, Any]) -> dict[str, Any]:
        kfid = body.get("open_kfid", "")
        self.sync_tokens.append(str(body.get("token", "")))
        log = self.kf_log[kfid] if kfid else self.all_log
        start = int(body.get("cursor") or 0)
        limit = int(body.get("limit", 1000))
        page = log[start:start + limit]
        end = start + len(page)
        return {"errcode": 0, "errmsg": "ok", "next_cursor": str(end), "has_more": int(end < len(log)),
                "msg_list": page}
