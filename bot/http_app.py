"""The aiohttp side: JSON API (fixed contract), health probes, metrics and the web chat page.

Bad input is the client's problem and gets a 4xx with ``{"error": ...}``; it is never a 500.
The body size is capped by aiohttp (``client_max_size``) before any parsing happens.

Hostile clients are bounded too: a connection that has not sent its request headers within
``HEADER_TIMEOUT_S`` is closed (``RUNNER_OPTIONS``, aiohttp's keep-alive timer, which also
runs before the first request), a body must arrive within ``BODY_TIMEOUT_S``, only
``application/json`` is read, undecodable compressed bodies and absurd numbers are a 400.
Every response carries security headers; the page's inline script and style are allowed by
their hashes, computed from the file at start-up (no ``unsafe-inline``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.metrics import REGISTRY
from bot.models import IncomingMessage, Outcome

MAX_BODY_BYTES = 64 * 1024
MAX_TEXT_CHARS = 20_000
WEB_DIR = Path(__file__).resolve().parent / "web"
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 0.9
REPLAY_HEADER = "Idempotent-Replayed"
"""Set to ``true`` on the answer to a repeated ``msg_id`` (the first delivery's answer)."""

RUNNER_OPTIONS: dict[str, Any] = {"keepalive_timeout": HEADER_TIMEOUT_S, "lingering_time": 1.0}
"""Pass to ``web.AppRunner``: idle and header-less connections are closed after
``HEADER_TIMEOUT_S``; after an answer to an unread body (401, 408, 415) the rest of the body
is drained for at most a second, not aiohttp's default ten."""

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


def _inline_hashes(html: str, tag: str) -> list[str]:
    bodies = re.findall(rf"<{tag}(?:\s[^>]*)?>(.*?)</{tag}>", html, flags=re.S | re.I)
    return [f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in bodies if b]


def content_security_policy(page: Path) -> str:
    """A strict CSP for the web page: only its own inline script/style (by hash) and same-origin
    requests; nobody may frame it."""
    html = page.read_text(encoding="utf-8") if page.exists() else ""
    scripts = " ".join(["'self'", *_inline_hashes(html, "script")])
    styles = " ".join(["'self'", *_inline_hashes(html, "style")])
    return (f"default-src 'none'; script-src {scripts}; style-src {styles}; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def is_loopback(remote: str | None) -> bool:
    """Is the peer this machine? (``/metrics`` without a token is served only to it.)"""
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class _ClientFaultFilter(logging.Filter):
    """aiohttp logs a traceback at ERROR when the request parser rejects a request (e.g. a
    ``Content-Encoding: br`` it cannot decode, answered 400 by aiohttp itself). That is the
    client's fault, not ours: keep one WARNING line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError | RequestPayloadError):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg, record.args = f"bad request rejected by the HTTP parser: {type(exc).__name__}", None
            record.exc_info, record.exc_text = None, None
        return True


_PARSER_LOG = logging.getLogger("aiohttp.server")
if not any(isinstance(f, _ClientFaultFilter) for f in _PARSER_LOG.filters):
    _PARSER_LOG.addFilter(_ClientFaultFilter())


def _json_content_type(request: web.Request) -> bool:
    ctype = request.content_type.lower()
    return ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))


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

    def authorized(request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return api_token is not None and secrets.compare_digest(given.encode(), f"Bearer {api_token}".encode())

    async def post_message(request: web.Request) -> web.Response:
        if api_token and not authorized(request):
            return _error(401, "missing or wrong bearer token")
        if not _json_content_type(request):
            return _error(415, "Content-Type must be application/json")
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
        except TimeoutError:
            slow = _error(408, f"body not received within {BODY_TIMEOUT_S:.0f} s")
            slow.force_close()  # and do not wait for the rest of it
            return slow
        except (RequestPayloadError, HttpProcessingError, ValueError):  # gzip/deflate that is not
            bad = _error(400, "body could not be decoded (Content-Encoding does not match the data)")
            bad.force_close()  # the rest of the stream cannot be parsed: do not try to drain it
            return bad
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # incl. ints beyond Python's digit limit
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
            headers={REPLAY_HEADER: "true"} if outcome.duplicate else None,
        )

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                checks = await ready()
        except TimeoutError:
            checks = {"answered_in_time": False}
        ok = all(checks.values())
        return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)

    async def metrics(request: web.Request) -> web.Response:
        # Same rule as the API: with a token, the token; without one, this machine only.
        if api_token:
            if not authorized(request):
                return _error(401, "missing or wrong bearer token")
        elif not is_loopback(request.remote):
            return _error(403, "metrics are served to loopback only (set FANZHA_API_TOKEN)")
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

    csp = content_security_policy(WEB_DIR / "index.html")

    async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")

    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[web.middleware(too_large)])
    app.on_response_prepare.append(security_headers)
    app.router.add_post("/api/v1/messages", post_message)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    app.router.add_get(r"/web/{name:app\.(?:js|css)}", asset)
    return app
