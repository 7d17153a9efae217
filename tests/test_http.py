"""The HTTP contract of architecture.md, over a real socket on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.http_app import MAX_BODY_BYTES, make_app
from bot.pipeline import Pipeline


async def _ready() -> dict[str, bool]:
    return {"redis": True, "knowledge": True}


async def _not_ready() -> dict[str, bool]:
    return {"redis": False, "knowledge": True}


@pytest.fixture
async def client_for(pipeline: Pipeline) -> AsyncIterator[Callable[..., object]]:
    clients: list[TestClient] = []

    async def make(**kwargs: object) -> TestClient:
        ready = kwargs.pop("ready", _ready)
        app = make_app(pipeline.handle, ready, **kwargs)  # type: ignore[arg-type]
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for c in clients:
        await c.close()


async def post(client: TestClient, body: object, **kw: object):  # type: ignore[no-untyped-def]
    data = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", **kw.pop("headers", {})}  # type: ignore[dict-item]
    return await client.post("/api/v1/messages", data=data, headers=headers, **kw)


async def test_message_contract(client_for) -> None:  # type: ignore[no-untyped-def]
    client = await client_for()
    resp = await post(client, {"user_id": "h1", "text": "我的微信被盗了", "room_id": None,
                               "mentioned": False, "msg_id": "x1"})
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"replies", "scenario", "state"}
    assert body["scenario"] == "account_stolen"
    assert isinstance(body["state"], str)
    assert body["replies"] and all(set(r) == {"text"} and r["text"] for r in body["replies"])
    again = await (await post(client, {"user_id": "h1", "text": "我的微信被盗了", "msg_id": "x1"})).json()
    assert again["replies"] == body["replies"]


async def test_minimal_body_is_enough(client_for) -> None:  # type: ignore[no-untyped-def]
    client = await client_for()
    resp = await post(client, {"user_id": "h2", "text": "你好"})
    assert resp.status == 200
    assert (await resp.json())["state"] == "menu"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00binary",
        b"[1, 2, 3]",
        b"null",
        json.dumps({"text": "hi"}),
        json.dumps({"user_id": "", "text": "hi"}),
        json.dumps({"user_id": 5, "text": "hi"}),
        json.dumps({"user_id": "a", "text": None}),
        json.dumps({"user_id": "a", "text": "hi", "mentioned": "yes"}),
        json.dumps({"user_id": "a", "text": "hi", "unknown": 1}),
        json.dumps({"user_id": "a" * 500, "text": "hi"}),
        b"[" * 100_00 + b"]" * 100_00,
    ],
)
async def test_bad_input_is_a_400_with_an_error(client_for, body: bytes | str) -> None:  # type: ignore[no-untyped-def]
    client = await client_for()
    resp = await post(client, body)
    assert resp.status == 400
    assert "error" in await resp.json()


async def test_huge_body_is_refused_before_parsing(client_for) -> None:  # type: ignore[no-untyped-def]
    client = await client_for()
    resp = await post(client, json.dumps({"user_id": "a", "text": "骗" * MAX_BODY_BYTES}))
    assert resp.status == 413
    assert "error" in await resp.json()


async def test_long_text_under_the_body_limit_gets_a_reply(client_for) -> None:  # type: ignore[no-untyped-def]
    client = await client_for()
    resp = await post(client, {"user_id": "long", "text": "我被骗了" * 4000})
    assert resp.status == 200
    assert (await resp.json())["replies"]


async def test_bearer_token(client_for) -> None:  # type: ignore[no-untyped-def]
    client = await client_for(api_token="s3cret")
    body = {"user_id": "t", "text": "你好"}
    assert (await post(client, body)).status == 401
    assert (await post(client, body, headers={"Authorization": "Bearer wrong",
                                              "Content-Type": "application/json"})).status == 401
    ok = await post(client, body, headers={"Authorization": "Bearer s3cret", "Content-Type": "application/json"})
    assert ok.status == 200


async def test_probes_metrics_and_page(client_for) -> None:  # type: ignore[no-untyped-def]
    client = await client_for()
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["ready"] is True
    await post(client, {"user_id": "m", "text": "你好"})
    metrics = await (await client.get("/metrics")).text()
    assert "fanzha_messages_in_total" in metrics and "fanzha_pipeline_seconds_bucket" in metrics
    page = await client.get("/")
    assert page.status == 200 and "/web/app.js" in await page.text()
    script = await client.get("/web/app.js")
    assert script.status == 200 and "/api/v1/messages" in await script.text()
    down = await client_for(ready=_not_ready)
    resp = await down.get("/readyz")
    assert resp.status == 503 and (await resp.json())["checks"]["redis"] is False
