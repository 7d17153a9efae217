"""The aiohttp side: JSON API (fixed contract), health probes, metrics and the web chat page.

Bad input is the client's problem and gets a 4xx with ``{"error": ...}``; it is never a 500.
The body size is capped by aiohttp (``client_max_size``) before any parsing happens.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.metrics import REGISTRY
from bot.models import IncomingMessage, Outcome

MAX_BODY_BYTES = 64 * 1024
MAX_TEXT_CHARS = 20_000
WEB_DIR = Path(__file__).resolve().parent / "web"

Handler = Callable[[IncomingMessage], Awaitable[Outcome]]
ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


class ApiMessage(BaseModel):
    """``POST /api/v1/messages`` body, exactly as architecture.md fixes it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: str = Field(min_length=1, max_length=128)
    text: str = Field(max_length=MAX_TEXT_CHARS)
    room_id: str | None = Field(default=None, min_length=1, max_length=128)
    mentioned: bool = False
    msg_id: str | None = Field(default=None, min_length=1, max_length=128)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _describe(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg']}"


def make_app(
    handle: Handler,
    ready: ReadyCheck,
    *,
    api_token: str | None = None,
    channel: str = "http",
    page: bytes | None = None,
) -> web.Application:
    """Build the aiohttp application around a pipeline handler and a readiness check.

    ``page`` is the web chat's index.html with its knowledge filled in (``bot.webchat``);
    without it the page is served bare (UI labels only).
    """
    from bot.webchat import render_index

    index_html = page if page is not None else render_index(None)

    async def post_message(request: web.Request) -> web.Response:
        if api_token is not None:
            given = request.headers.get("Authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {api_token}".encode()):
                return _error(401, "missing or wrong bearer token")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return _error(400, "body is not valid UTF-8 JSON")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        try:
            api = ApiMessage.model_validate(body)
        except ValidationError as exc:
            return _error(400, _describe(exc))
        msg = IncomingMessage(
            channel=channel,
            user_id=api.user_id,
            text=api.text,
            room_id=api.room_id,
            mentioned=api.mentioned,
            msg_id=api.msg_id,
        )
        outcome = await handle(msg)
        return web.json_response(
            {
                "replies": [{"text": r.text} for r in outcome.replies],
                "scenario": outcome.scenario,
                "state": outcome.state,
            },
            dumps=lambda o: json.dumps(o, ensure_ascii=False),
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        checks = await ready()
        ok = all(checks.values())
        return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=index_html, content_type="text/html", charset="utf-8")

    async def asset(request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / request.match_info["name"])

    async def too_large(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[web.middleware(too_large)])
    app.router.add_post("/api/v1/messages", post_message)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    app.router.add_get(r"/web/{name:app\.(?:js|css)}", asset)
    return app
