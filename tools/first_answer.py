#!/usr/bin/env python3
"""Time from launching a command that starts the bot to its first answer over HTTP.

    python3 tools/first_answer.py [--repeat N] -- python3 dev.py run

Picks a free port and a fresh data dir (unless FANZHA_DATA_DIR is set), launches the command
with FANZHA_HTTP_PORT set, polls ``POST /api/v1/messages`` until it answers, prints the
seconds, then stops the command with SIGINT. Standard library only, so it can time a run on
a machine where nothing is installed yet. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ask(port: int) -> bool:
    body = json.dumps({"user_id": "timer", "text": "你好", "room_id": None, "mentioned": False,
                       "msg_id": None}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/messages", data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status == 200 and bool(json.load(r)["replies"])
    except (urllib.error.URLError, OSError, ValueError):
        return False


def cpu_seconds(pid: int) -> float | None:
    """CPU time the process (and its reaped children) used so far: steadier than wall time on a
    busy machine. Linux only; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def once(command: list[str], timeout_s: float, data_dir: str) -> tuple[float, float | None]:
    port = free_port()
    env = {**os.environ, "FANZHA_HTTP_PORT": str(port), "FANZHA_DATA_DIR": data_dir}
    started = time.perf_counter()
    errors = tempfile.TemporaryFile()
    # its own process group, stopped as a whole: like Ctrl+C in a terminal, nothing left behind
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True)
    try:
        while time.perf_counter() - started < timeout_s:
            if proc.poll() is not None:
                errors.seek(0)
                tail = errors.read().decode(errors="replace")[-2000:]
                raise SystemExit(f"command exited with {proc.returncode} before answering:\n{tail}")
            if ask(port):
                return time.perf_counter() - started, cpu_seconds(proc.pid)
            time.sleep(0.05)
        raise SystemExit(f"no answer within {timeout_s} s")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    data_dir = os.environ.get("FANZHA_DATA_DIR") or tempfile.mkdtemp(prefix="fanzha-timer-")
    for i in range(args.repeat):
        wall, cpu = once(command, args.timeout, data_dir)
        used = f" (bot process CPU {cpu:.2f} s)" if cpu is not None else ""
        print(f"run {i + 1}: first answer after {wall:.2f} s{used}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
