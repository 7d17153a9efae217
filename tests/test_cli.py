"""The fixed command line: classify/scan output shape, kb check, settings errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from knowledge.schema import SCENARIO_IDS

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=120)


def test_classify_writes_one_json_object_per_line() -> None:
    lines = ["微信被盗了怎么办", "有人要租我的微信号", "", "今天天气怎么样", "😀"]
    out = run("classify", stdin="\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert [r["text"] for r in rows] == lines
    for r in rows:
        assert set(r) == {"text", "scenario", "confidence"}
        assert r["scenario"] in SCENARIO_IDS
        assert 0.0 <= r["confidence"] <= 1.0
    assert rows[0]["scenario"] == "account_stolen"
    assert rows[1]["scenario"] == "account_rental"


def test_scan_writes_alert_and_pattern() -> None:
    lines = ["高价收购微信号，老号优先，秒结", "明天小区停水，请大家提前储水"]
    out = run("scan", stdin="\n".join(lines) + "\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert [set(r) for r in rows] == [{"text", "alert", "pattern"}] * 2
    assert rows[0]["alert"] is True and rows[0]["pattern"]
    assert rows[1]["alert"] is False and rows[1]["pattern"] is None


def test_kb_check_passes() -> None:
    out = run("kb", "check")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok:")


def test_bad_setting_is_one_line_not_a_traceback() -> None:
    out = run("chat", env={"FANZHA_HTTP_PORT": "not-a-port"})
    assert out.returncode != 0
    assert "FANZHA_HTTP_PORT" in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_chat_walks_a_scenario(tmp_path: Path) -> None:
    out = run("chat", stdin="你好\n1\n下一步\n法律依据\n退出\n", env={"FANZHA_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "冻结" in out.stdout
    assert "第" in out.stdout and "条" in out.stdout


def test_chat_opens_with_the_menu_before_the_user_types(tmp_path: Path) -> None:
    from knowledge.loader import load

    kb = load()
    out = run("chat", stdin="退出\n", env={"FANZHA_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    before_prompt = out.stdout.split("你> ")[0]
    assert all(sc.menu_label in before_prompt for sc in kb.scenarios.values())


def test_a_second_chat_session_is_not_mistaken_for_a_redelivery(tmp_path: Path) -> None:
    env = {"FANZHA_DATA_DIR": str(tmp_path)}
    assert run("chat", stdin="你好\n退出\n", env=env).returncode == 0
    second = run("chat", stdin="钱包里的钱被人转走了\n退出\n", env=env)
    assert "95017" in second.stdout  # the wallet_loss urgent reply, not the first run's menu
