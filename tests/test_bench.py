"""The benchmark's modes run end to end (tiny numbers: this checks that they work, not speed)."""

from __future__ import annotations

import json

import pytest

from bot.cli import main


@pytest.fixture(autouse=True)
def _on_the_test_server(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    """The bench on the tests' Redis-protocol server: no embedded server of its own to start."""
    monkeypatch.setenv("FANZHA_REDIS_URL", redis_url)


def test_bench_over_http_drives_a_real_bot_process(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--http", "--users", "2", "--messages", "3", "--json", "--classify-seconds", "0.05"])
    out = capsys.readouterr().out
    assert code == 0
    figures = json.loads(out.strip().splitlines()[-1])
    assert figures["mode"] == "http"
    assert figures["messages"] == 6  # every POST answered 200 (a failed one stops the bench)
    assert figures["msgs_per_s"] > 0 and figures["p99_ms"] >= figures["p50_ms"] > 0


def test_bench_in_process_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "--users", "2", "--messages", "2", "--classify-seconds", "0.05"])
    out = capsys.readouterr().out
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    assert rows["in-process"][1] == "4"
