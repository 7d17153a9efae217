#!/usr/bin/env python3
"""Fault injection against a real bot: prints ``fault → what users got → recovery time``.

    .venv/bin/python bench/faults.py                    # this checkout
    .venv/bin/python bench/faults.py --repo /tmp/old    # another checkout (e.g. an older commit)
    .venv/bin/python bench/faults.py --only stall,restart

Everything is driven from outside, as an operator would see it: ``python -m bot run``
processes (started with this Python, in ``--repo``), real ``redis-server`` processes (a
standalone server, a 3-master cluster, a master/replica/Sentinel set) on 127.0.0.1 with ports
from ``FANZHA_TEST_PORT_RANGE`` (default 17000-17099), HTTP requests to the API, ``kill -9``
and ``SIGSTOP``. Every process it starts is killed at the end; every wait is bounded.
Needs redis-server and redis-cli on PATH. Asserts nothing: it reports.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
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
from collections import Counter
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE / "tests"))
import redis_procs as rp  # noqa: E402 - after the path is set

STATIC = "系统暂时出了点问题"
Row = tuple[str, str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bot:
    """One ``python -m bot run`` of the checkout under test."""

    def __init__(self, repo: Path, env: dict[str, str], data_dir: Path) -> None:
        self.port = free_port()
        full = {k: v for k, v in os.environ.items() if not k.startswith("FANZHA_")}
        full.update({"FANZHA_HTTP_PORT": str(self.port), "FANZHA_DATA_DIR": str(data_dir),
                     "FANZHA_LOG_LEVEL": "ERROR", "FANZHA_RATE_USER_PER_MIN": "1000", **env})
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=repo, env=full,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_listening(self, limit: float = 60) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def ready(self, timeout: float = 5.0) -> tuple[int, float]:
        """(status, seconds) of GET /readyz; status 0 = no answer within ``timeout``."""
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(self.base + "/readyz", timeout=timeout) as r:
                return r.status, time.monotonic() - t0
        except urllib.error.HTTPError as e:
            return e.code, time.monotonic() - t0
        except OSError:
            return 0, time.monotonic() - t0

    def wait_ready(self, limit: float = 60) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.ready(2)[0] == 200:
                return True
            time.sleep(0.1)
        return False

    def post(self, user: str, text: str, msg_id: str | None = None, timeout: float = 30,
             headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, dict, dict]:
        body = raw if raw is not None else json.dumps({"user_id": user, "text": text, "msg_id": msg_id}).encode()
        req = urllib.request.Request(self.base + "/api/v1/messages", data=body,
                                     headers=headers or {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read()), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, {}, dict(e.headers)
        except (OSError, ValueError):
            return 0, {}, {}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def kind(resp: tuple[int, dict, dict]) -> str:
    """What a user got: real answer, static fallback, busy, an HTTP error, nothing."""
    status, body, _ = resp
    if status != 200:
        return f"HTTP {status}" if status else "no answer"
    text = "".join(r["text"] for r in body.get("replies", []))
    if STATIC in text or body.get("state") == "degraded":
        return "static"
    if body.get("state") == "busy":
        return "busy"
    if body.get("state") == "error":
        return "error"
    return "real"


def summary(kinds: list[str]) -> str:
    return ", ".join(f"{n} {k}" for k, n in Counter(kinds).most_common())


def burst(bot: Bot, users: list[str], text: str, tag: str, timeout: float = 30) -> list[tuple[str, float]]:
    def one(u: str) -> tuple[str, float]:
        t0 = time.monotonic()
        r = bot.post(u, text, f"{u}-{tag}", timeout=timeout)
        return kind(r), time.monotonic() - t0

    with cf.ThreadPoolExecutor(len(users)) as ex:
        return list(ex.map(one, users))


def until_all_real(bot: Bot, users: list[str], limit: float = 30) -> float | None:
    """Seconds until every user gets a real answer (each retries until it does)."""
    t0 = time.monotonic()
    pending = list(users)
    n = 0
    while pending and time.monotonic() - t0 < limit:
        n += 1
        results = burst(bot, pending, "你好", f"rec{n}", timeout=10)
        pending = [u for u, (k, _) in zip(pending, results, strict=True) if k != "real"]
        if pending:
            time.sleep(0.1)
    return None if pending else time.monotonic() - t0


def secs(x: float | None) -> str:
    return "never (within the limit)" if x is None else f"{x:.1f} s"


# -- the faults ------------------------------------------------------------------------------------
def f_cluster(repo: Path, tmp: Path) -> list[Row]:
    nodes = rp.cluster(tmp / "cluster")
    bot = Bot(repo, {"FANZHA_REDIS_URL": nodes[0].url.removesuffix("/0"), "FANZHA_REDIS_CLUSTER": "true"}, tmp)
    try:
        if not bot.wait_listening():
            err = (bot.proc.stderr.read() if bot.proc.stderr else "").strip().splitlines()[-1:]
            return [("Redis Cluster (3 masters)", f"bot did not start: {err}", "-")]
        status, _ = bot.ready()
        users = [f"c{i}" for i in range(30)]
        got = [k for k, _ in burst(bot, users, "我被骗了两千块，刷单的", "1")]
        rows = [("Redis Cluster, 3 masters, FANZHA_REDIS_CLUSTER=true",
                 f"{summary(got)} of 30 users; /readyz {status}", "-")]
        nodes[1].kill()
        st, took = bot.ready()
        got2 = [k for k, _ in burst(bot, users, "下一步", "2", timeout=15)]
        rows.append(("cluster: one master killed (no replica)",
                     f"/readyz {st or 'no answer'} in {took:.1f} s; users: {summary(got2)}", "until the master is back"))
        return rows
    finally:
        bot.stop()
        for n in nodes:
            n.kill()


def f_sentinel(repo: Path, tmp: Path) -> list[Row]:
    if "redis_sentinels" not in (repo / "bot" / "settings.py").read_text():
        return [("Sentinel failover", "not supported (FANZHA_REDIS_SENTINELS unknown: the bot would run "
                 "on an embedded Valkey instead)", "-")]
    setup = rp.sentinel_setup(tmp / "sentinel")
    bot = Bot(repo, {"FANZHA_REDIS_SENTINELS": setup.env, "FANZHA_REDIS_SENTINEL_MASTER": setup.name}, tmp)
    try:
        if not bot.wait_ready():
            return [("Sentinel failover", "bot never ready", "-")]
        users = [f"s{i}" for i in range(10)]
        burst(bot, [*users, "keeper"], "我被骗了两千块，刷单的", "1")
        rp.cli(setup.master.port, "wait", "1", "2000")
        setup.master.kill()
        t0 = time.monotonic()
        during = [k for k, _ in burst(bot, users, "下一步", "2", timeout=15)]
        rec = until_all_real(bot, users, limit=40)
        total = None if rec is None else time.monotonic() - t0
        kept = bot.post("keeper", "下一步", "keeper-2")[1].get("scenario")
        return [("Sentinel: master killed (kill -9), replica promoted",
                 f"during failover: {summary(during)}; session after: {kept or 'lost'}", secs(total))]
    finally:
        bot.stop()
        setup.kill()


def _servers_in(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == path and b"server" in (entry / "cmdline").read_bytes():
                    if (entry / "stat").read_text().split(")")[-1].split()[0] != "Z":
                        found.append(int(entry.name))
            except OSError:
                pass
    return found


def f_kill9(repo: Path, tmp: Path) -> list[Row]:
    data = tmp / "embedded"
    vdir = (data / "valkey").resolve()
    bot = Bot(repo, {}, data)
    bots = [bot]
    try:
        bot.wait_ready()
        bot.post("k9", "我被骗了两千块，刷单的", "k9-1")
        bot.proc.send_signal(signal.SIGKILL)
        bot.proc.wait(timeout=10)
        t0 = time.monotonic()
        bot2 = Bot(repo, {}, data)
        bots.append(bot2)
        bot2.wait_ready()
        rec = time.monotonic() - t0
        servers_after_restart = len(_servers_in(vdir))
        chat_env = {k: v for k, v in os.environ.items() if not k.startswith("FANZHA_")}
        chat_env["FANZHA_DATA_DIR"] = str(data)
        chat = subprocess.Popen([sys.executable, "-m", "bot", "chat"], cwd=repo, env=chat_env, stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
        assert chat.stdin is not None
        chat.stdin.write("你好\n")
        chat.stdin.flush()
        time.sleep(4)
        servers_with_chat = len(_servers_in(vdir))
        chat.stdin.close()
        chat.wait(timeout=20)
        k = bot2.post("k9", "下一步", "k9-2")
        bot2.stop()
        bot3 = Bot(repo, {}, data)
        bots.append(bot3)
        bot3.wait_ready()
        k3 = bot3.post("k9", "下一步", "k9-3")
        scen = k3[1].get("scenario")
        return [("bot killed with kill -9 (embedded Valkey), restarted, then `chat` beside `run`",
                 f"servers on one data dir: {servers_after_restart} after restart, {servers_with_chat} with chat; "
                 f"after restart: {kind(k)}; session after next restart: {scen or 'lost'}",
                 f"{rec:.1f} s to ready")]
    finally:
        for b in bots:
            b.stop()
        for pid in _servers_in(vdir):
            os.kill(pid, signal.SIGKILL)


def _redis_bot(repo: Path, tmp: Path, *server_args: str) -> tuple[rp.RedisProc, Bot]:
    server = rp.standalone(tmp, *server_args)
    bot = Bot(repo, {"FANZHA_REDIS_URL": server.url}, tmp)
    bot.wait_ready()
    return server, bot


def f_stall(repo: Path, tmp: Path) -> list[Row]:
    server, bot = _redis_bot(repo, tmp)
    users = [f"st{i}" for i in range(20)]
    try:
        burst(bot, users, "你好", "0")
        server.pause()
        with cf.ThreadPoolExecutor(1) as ex:
            ready_f = ex.submit(bot.ready, 5.0)
            during = burst(bot, users, "我被骗了两千块，刷单的", "1", timeout=30)
            st, took = ready_f.result()
        time.sleep(max(0.0, 3.0 - max(t for _, t in during)))
        server.resume()
        t0 = time.monotonic()
        after = burst(bot, users, "1", "2", timeout=30)
        blocked = sum(1 for k, t in after if k != "real" or t > 1.0)
        rec = until_all_real(bot, users)
        return [("Redis stalled 3 s (SIGSTOP), 20 users",
                 f"during: {summary([k for k, _ in during])}, slowest {max(t for _, t in during):.1f} s; "
                 f"/readyz: {st or 'no answer'} after {took:.1f} s; right after SIGCONT: "
                 f"{blocked} of 20 blocked or static ({summary([k for k, _ in after])}, "
                 f"slowest {max(t for _, t in after):.1f} s)",
                 secs(None if rec is None else time.monotonic() - t0))]
    finally:
        server.kill()
        bot.stop()


def f_restart(repo: Path, tmp: Path) -> list[Row]:
    server, bot = _redis_bot(repo, tmp, "--appendonly", "yes")
    users = [f"rs{i}" for i in range(8)]
    try:
        burst(bot, users, "我的微信号被盗了", "1")
        server.stop()
        down = [k for k, _ in burst(bot, users[:3], "下一步", "d")]
        server.start()
        t0 = time.monotonic()
        while bot.ready(2)[0] != 200 and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        green = time.monotonic() - t0
        after = [kind(bot.post(u, "下一步", f"{u}-2")) for u in users]
        rec = until_all_real(bot, users)
        rows = [("Redis restarted (SIGTERM, start again)",
                 f"while down: {summary(down)}; after /readyz green ({green:.1f} s): {summary(after)}",
                 secs(None if rec is None else time.monotonic() - t0))]
        server.stop()  # a quick restart (down ~0.2 s) while 8 users are writing
        with cf.ThreadPoolExecutor(1) as ex:
            back = ex.submit(lambda: (time.sleep(0.15), server.start()))
            blip = [k for k, _ in burst(bot, users, "证据", "blip")]
            back.result()
        rows.append(("Redis restart blip (down ~0.2 s), 8 users writing", summary(blip), "-"))
        return rows
    finally:
        server.kill()
        bot.stop()


def f_dead_holder(repo: Path, tmp: Path) -> list[Row]:
    """A bot process died holding a conversation's lock: the lock key it leaves behind."""
    server, bot = _redis_bot(repo, tmp)
    try:
        conv = json.dumps(["http", None, "dh"], ensure_ascii=False)
        tag = hashlib.blake2b(conv.encode(), digest_size=10).hexdigest()
        settings_py = (repo / "bot" / "settings.py").read_text()
        ttl = "3_000" if "default=3_000" in settings_py else "10_000"
        rp.cli(server.port, "set", f"fanzha:{{{tag}}}:lock", "crashed-holder", "px", ttl.replace("_", ""))
        t0 = time.monotonic()
        r = bot.post("dh", "我被骗了两千块，刷单的", "dh-1")
        took = time.monotonic() - t0
        rec = None if kind(r) == "real" else until_all_real(bot, ["dh"])
        first_real = took if rec is None else took + rec
        return [(f"a holder died holding the lock (its {ttl.replace('_', ',')} ms lease left)",
                 f"the waiting message: {kind(r)} after {took:.1f} s", secs(first_real))]
    finally:
        server.kill()
        bot.stop()


def f_http(repo: Path, tmp: Path) -> list[Row]:
    server, bot = _redis_bot(repo, tmp)
    try:
        j = {"Content-Type": "application/json"}
        cases = {
            "4,301-digit int": (b'{"user_id":"u","text":"x","mentioned":' + b"9" * 4301 + b"}", j),
            "bad gzip": (b"not gzip", {**j, "Content-Encoding": "gzip"}),
            "bad deflate": (b"not deflate", {**j, "Content-Encoding": "deflate"}),
            "br": (b"not br", {**j, "Content-Encoding": "br"}),
            "text/plain JSON": (b'{"user_id":"u","text":"x"}', {"Content-Type": "text/plain"}),
        }
        got = [f"{name}: {bot.post('h', '', raw=body, headers=hd)[0]}" for name, (body, hd) in cases.items()]
        a = bot.post("idem", "我被骗了两千块，刷单的", "same-id")
        b = bot.post("idem", "我被骗了两千块，刷单的", "same-id")
        replay = "same JSON" if a[1] == b[1] else f"different JSON (second: scenario={b[1].get('scenario')}, " \
                                                  f"state={b[1].get('state')})"
        header = b[2].get("Idempotent-Replayed", "none")
        page = urllib.request.urlopen(bot.base + "/", timeout=5)
        sec = [h for h in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy") if page.headers.get(h)]
        code = bot.post("pii", "收到短信384920，说是验证码", "pii-1")
        warned = "warned, code redacted" if "请不要把" in json.dumps(code[1], ensure_ascii=False) else "no warning"
        return [("hostile HTTP bodies", "; ".join(got), "-"),
                ("same msg_id sent twice", f"{replay}; replay header: {header}", "-"),
                ("web page security headers", ", ".join(sec) or "none", "-"),
                ("'收到短信384920，说是验证码'", warned, "-")]
    finally:
        server.kill()
        bot.stop()


def _slow(port: int, first: bytes, drip: bytes, limit: float) -> float:
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(first)
        while time.monotonic() - t0 < limit:
            try:
                if not s.recv(4096):
                    break
                continue
            except TimeoutError:
                pass
            except OSError:
                break
            try:
                s.sendall(drip)
            except OSError:
                break
    return time.monotonic() - t0


def f_slowloris(repo: Path, tmp: Path) -> list[Row]:
    server, bot = _redis_bot(repo, tmp)
    try:
        with cf.ThreadPoolExecutor(2) as ex:
            h = ex.submit(_slow, bot.port, b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\n", b"X: y\r\n", 30)
            b = ex.submit(_slow, bot.port, b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: "
                          b"application/json\r\nContent-Length: 900\r\n\r\n{", b" ", 30)
            ht, bt = h.result(), b.result()
        fmt = lambda t: f"{t:.0f} s" if t < 29 else "≥ 30 s (still open)"  # noqa: E731
        return [("slowloris: headers / body one byte per second", f"connection held {fmt(ht)} / {fmt(bt)}", "-")]
    finally:
        server.kill()
        bot.stop()


def f_startup(repo: Path, tmp: Path) -> list[Row]:
    rows = []
    for label, env in (("FANZHA_API_TOKEN='' on 0.0.0.0", {"FANZHA_HTTP_HOST": "0.0.0.0", "FANZHA_API_TOKEN": ""}),
                       ("comma-separated FANZHA_REDIS_URL", {"FANZHA_REDIS_URL": "redis://127.0.0.1:1,redis://127.0.0.1:2"})):
        bot = Bot(repo, env, tmp / "startup")
        try:
            try:
                bot.proc.wait(timeout=15)
                err = bot.proc.stderr.read() if bot.proc.stderr else ""
                lines = err.strip().splitlines()
                what = "traceback" if "Traceback" in err else f"refused: {lines[-1][:90] if lines else ''}"
            except subprocess.TimeoutExpired:
                st, _, _ = bot.post("x", "你好")
                what = f"started; unauthenticated POST → {st}"
        finally:
            bot.stop()
        rows.append((label, what, "-"))
    return rows


def f_flood(repo: Path, tmp: Path) -> list[Row]:
    server = rp.standalone(tmp)
    bots = [Bot(repo, {"FANZHA_REDIS_URL": server.url}, tmp) for _ in range(2)]
    try:
        for b in bots:
            b.wait_ready()
        user = f"flood{time.time()}"

        def one(i: int) -> str:
            return kind(bots[i % 2].post(user, ["你好", "1", "下一步", "证据"][i % 4], f"fl{i}"))

        with cf.ThreadPoolExecutor(20) as ex:
            got = list(ex.map(one, range(20)))
        return [("same-user flood: 20 at once over 2 processes", summary(got), "-")]
    finally:
        for b in bots:
            b.stop()
        server.kill()


FAULTS: dict[str, Callable[[Path, Path], list[Row]]] = {
    "cluster": f_cluster, "sentinel": f_sentinel, "kill9": f_kill9, "stall": f_stall, "restart": f_restart,
    "holder": f_dead_holder, "http": f_http, "slowloris": f_slowloris, "startup": f_startup, "flood": f_flood,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=HERE, help="checkout whose bot to run (default: this one)")
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(FAULTS))
    args = ap.parse_args()
    if rp.REDIS_SERVER is None or rp.REDIS_CLI is None:
        print("needs redis-server and redis-cli on PATH", file=sys.stderr)
        return 2
    chosen = [n for n in (args.only.split(",") if args.only else FAULTS) if n]
    rows: list[Row] = []
    for name in chosen:
        with tempfile.TemporaryDirectory(prefix=f"fanzha-fault-{name}-") as tmp:
            t0 = time.monotonic()
            try:
                rows += FAULTS[name](args.repo.resolve(), Path(tmp))
            except Exception as exc:  # report and go on with the next fault
                rows.append((name, f"fault script failed: {type(exc).__name__}: {exc}", "-"))
            print(f"# {name}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    print(f"\nrepo: {args.repo.resolve()}  commit: " + subprocess.run(
        ["git", "-C", str(args.repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip())
    print("\n| fault | what users got | recovery time |\n| --- | --- | --- |")
    for fault, got, rec in rows:
        print(f"| {fault} | {got} | {rec} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
