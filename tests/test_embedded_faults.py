"""The embedded Valkey under real process faults: ``kill -9`` of the bot, ``chat`` beside ``run``.

One data dir must never have two servers (two writers of one AOF lose live sessions). Real
``python -m bot run`` / ``chat`` processes, real signals, bounded waits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def servers_on(data_dir: Path) -> list[int]:
    """Pids of valkey/redis servers whose working directory is ``data_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) != data_dir:
                continue
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"valkey-server" in cmd or b"redis-server" in cmd:
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
            if state != "Z":
                found.append(int(entry.name))
    return found


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANZHA_")}
    env.update({"FANZHA_DATA_DIR": str(data_dir), "FANZHA_HTTP_PORT": str(port), "FANZHA_LOG_LEVEL": "WARNING"})
    return env


def _start_run(data_dir: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=_env(data_dir, port),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if json.load(r)["ready"]:
                    return proc
        except OSError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"bot exited: {proc.stderr.read() if proc.stderr else ''}")
        assert time.monotonic() < deadline, "bot did not become ready"
        time.sleep(0.2)


def _post(port: int, text: str, user: str = "alive") -> dict[str, object]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/messages",
        data=json.dumps({"user_id": user, "text": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)  # type: ignore[no-any-return]


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for pid in servers_on((tmp_path / "valkey").resolve()):  # whatever the test left behind
        os.kill(pid, signal.SIGKILL)


def test_kill_9_then_restart_and_chat_use_one_server_and_keep_the_session(data_dir: Path) -> None:
    valkey_dir = (data_dir / "valkey").resolve()
    port = _free_port()
    first = _start_run(data_dir, port)
    started = _post(port, "我被骗了两千块，刷单的")
    assert started["state"] != "degraded" and started["scenario"] == "fraud_victim"
    assert len(servers_on(valkey_dir)) == 1

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    orphans = servers_on(valkey_dir)
    assert len(orphans) == 1  # the server outlives a kill -9 of the bot (its data is intact)

    second = _start_run(data_dir, port)
    try:
        assert servers_on(valkey_dir) == orphans  # reused, not a second server on the same AOF
        resumed = _post(port, "下一步")
        assert resumed["scenario"] == "fraud_victim" and resumed["state"] != "degraded"

        chat = subprocess.run([sys.executable, "-m", "bot", "chat"], cwd=ROOT, env=_env(data_dir, port),
                              input="你好\n", capture_output=True, text=True, timeout=60)
        assert chat.returncode == 0, chat.stderr
        assert "助手>" in chat.stdout and "系统暂时出了点问题" not in chat.stdout
        assert servers_on(valkey_dir) == orphans  # chat talked to the running server
        after_chat = _post(port, "证据")  # chat leaving did not take the server away from run
        assert after_chat["scenario"] == "fraud_victim" and after_chat["state"] != "degraded"
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    while servers_on(valkey_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert servers_on(valkey_dir) == []  # the last bot out stopped it

    third = _start_run(data_dir, port)  # and the session survived all of it
    try:
        again = _post(port, "下一步")
        assert again["scenario"] == "fraud_victim" and again["state"] != "degraded"
    finally:
        third.send_signal(signal.SIGTERM)
        third.wait(timeout=30)
