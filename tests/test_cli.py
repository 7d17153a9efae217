"""The fixed command line: classify/scan output shape, kb check, settings errors, chat.

Most commands run in this process through ``bot.cli.main`` (stdin/stdout swapped): a child
process per test would only add interpreter start-up and model training. The one test that
is about the process boundary itself (exit code and a one-line stderr instead of a traceback)
still spawns ``python -m bot``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis as SyncRedis

from bot.cli import main
from knowledge.schema import SCENARIO_IDS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """``main`` sets up logging for a whole process; give the root logger back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str,
        stdin: str = "") -> tuple[int, str, str]:
    """Run ``python -m bot <args>`` in process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_classify_writes_one_json_object_per_line(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["微信被盗了怎么办", "有人要租我的微信号", "", "今天天气怎么样", "😀"]
    code, out, err = cli(monkeypatch, capsys, "classify", stdin="\n".join(lines) + "\n")
    assert code == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["text"] for r in rows] == lines
    for r in rows:
        assert set(r) == {"text", "scenario", "confidence"}
        assert r["scenario"] in SCENARIO_IDS
        assert 0.0 <= r["confidence"] <= 1.0
    assert rows[0]["scenario"] == "account_stolen"
    assert rows[1]["scenario"] == "account_rental"


def test_scan_writes_alert_and_pattern(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["高价收购微信号，老号优先，秒结", "明天小区停水，请大家提前储水"]
    code, out, err = cli(monkeypatch, capsys, "scan", stdin="\n".join(lines) + "\n")
    assert code == 0, err
    rows = [json.loads(x) for x in out.splitlines()]
    assert [set(r) for r in rows] == [{"text", "alert", "pattern"}] * 2
    assert rows[0]["alert"] is True and rows[0]["pattern"]
    assert rows[1]["alert"] is False and rows[1]["pattern"] is None


def test_kb_check_passes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(monkeypatch, capsys, "kb", "check")
    assert code == 0, out + err
    assert out.startswith("ok:")


def test_bad_setting_is_one_line_not_a_traceback() -> None:
    """A real process: what an operator sees is its exit code and stderr."""
    out = subprocess.run([sys.executable, "-m", "bot", "chat"], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "FANZHA_HTTP_PORT": "not-a-port"}, timeout=120)
    assert out.returncode != 0
    assert "FANZHA_HTTP_PORT" in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_bad_setting_in_process_returns_an_error_code(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FANZHA_RESUME_AFTER_S", "soon")
    code, out, err = cli(monkeypatch, capsys, "chat")
    assert code == 2 and out == ""
    assert err.startswith("error: FANZHA_RESUME_AFTER_S") and len(err.strip().splitlines()) == 1


def chat(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path,
         stdin: str, redis_url: str) -> tuple[int, str, str]:
    """``chat`` on the tests' server (which outlives each run, as the embedded one's AOF does;
    the embedded server's own persistence is tested in test_store.py)."""
    monkeypatch.setenv("FANZHA_DATA_DIR", str(data_dir))
    monkeypatch.setenv("FANZHA_REDIS_URL", redis_url)
    return cli(monkeypatch, capsys, "chat", stdin=stdin)


@pytest.fixture
def fresh_redis(redis_url: str) -> str:
    """The tests' server, emptied (the ``redis`` fixture is async; ``chat`` runs its own loop)."""
    client = SyncRedis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url


def test_chat_walks_a_scenario(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                               tmp_path: Path, fresh_redis: str) -> None:
    code, out, err = chat(monkeypatch, capsys, tmp_path, "你好\n1\n下一步\n法律依据\n退出\n", fresh_redis)
    assert code == 0, err
    assert "冻结" in out
    assert "第" in out and "条" in out


def test_a_second_chat_session_is_not_mistaken_for_a_redelivery(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        fresh_redis: str) -> None:
    assert chat(monkeypatch, capsys, tmp_path, "你好\n退出\n", fresh_redis)[0] == 0
    code, second, _ = chat(monkeypatch, capsys, tmp_path, "钱包里的钱被人转走了\n退出\n", fresh_redis)
    assert code == 0
    assert "95017" in second  # the wallet_loss urgent reply, not the first run's menu


def test_chat_opens_with_the_menu_before_the_user_types(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        fresh_redis: str) -> None:
    from knowledge.loader import load

    kb = load()
    code, out, err = chat(monkeypatch, capsys, tmp_path, "退出\n", fresh_redis)
    assert code == 0, err
    before_prompt = out.split("你> ")[0]
    assert all(sc.menu_label in before_prompt for sc in kb.scenarios.values())
