"""The web chat in a real headless Chromium: Debian's ``chromium`` driven by Playwright's Python
client (``pip install '.[browser]'``; no browser download), against ``python -m bot run``
started as a user would, on the tests' Redis.

Without the browser or the client the suite is skipped with the reason; in CI (``CI`` set,
where ``dev.py test`` installs chromium) it fails instead, so CI always runs it.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path(os.environ.get("FANZHA_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
TOKEN = "browser-test-token"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(f"{reason} (CI installs it: CI=true python3 dev.py test)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BotServer:
    """``python -m bot run`` in a subprocess on a free loopback port."""

    def __init__(self, redis_url: str, data_dir: Path, token: str | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FANZHA_", "WECHATY_"))}
        env.update(FANZHA_HTTP_PORT=str(self.port), FANZHA_REDIS_URL=redis_url, FANZHA_DATA_DIR=str(data_dir),
                   FANZHA_RATE_USER_PER_MIN="1000", FANZHA_LOG_LEVEL="WARNING")
        if token:
            env["FANZHA_API_TOKEN"] = token
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Ready means: *this* process says it listens on the port (another process could have
        # taken the free port meanwhile and would answer /readyz in its place), and /readyz agrees.
        listening = threading.Event()
        self.log: collections.deque[str] = collections.deque(maxlen=100)  # drained: a full pipe would block the bot
        threading.Thread(target=self._watch, args=(listening,), daemon=True).start()
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr), daemon=True).start()  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError(f"bot run exited {self.proc.returncode}: {''.join(self.log)[-2000:]}")
            if listening.is_set():
                try:
                    with urllib.request.urlopen(self.url + "readyz", timeout=1) as r:
                        if json.load(r)["ready"]:
                            return
                except OSError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("bot run did not become ready within 60 s")

    def _watch(self, listening: threading.Event) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            if f"127.0.0.1:{self.port}/" in line:
                listening.set()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright's Python client is not installed (pip install '.[browser]')")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir for every server, so the trained models are cached after the first."""
    return tmp_path_factory.mktemp("bot-data")


@pytest.fixture(scope="module")
def server(redis_url: str, models_dir: Path) -> Iterator[BotServer]:
    s = BotServer(redis_url, models_dir)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def token_server(redis_url: str, models_dir: Path) -> Iterator[BotServer]:
    s = BotServer(redis_url, models_dir, token=TOKEN)
    yield s
    s.stop()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Factory: a page in a fresh context (its own localStorage, so its own user id)."""
    contexts: list[Any] = []

    def make(width: int = 390, height: int = 760, **options: Any) -> Any:
        ctx = browser.new_context(viewport={"width": width, "height": height}, is_mobile=True,
                                  has_touch=True, device_scale_factor=2, locale="zh-CN", **options)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(10_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        return page

    yield make
    for ctx in contexts:
        ctx.close()
