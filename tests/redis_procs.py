"""Real ``redis-server`` processes for fault tests: standalone, a 3-master cluster, Sentinel.

Everything runs on 127.0.0.1 with ports from ``FANZHA_TEST_PORT_RANGE`` (default 17000-17099;
a cluster node also uses its port + 10000 for the cluster bus) and data dirs under the test's
tmp dir. Every process is started by a fixture or a fault script that kills it at the end, and
every wait here is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")


def port_range() -> range:
    lo, _, hi = os.environ.get("FANZHA_TEST_PORT_RANGE", "17000-17099").partition("-")
    return range(int(lo), int(hi) + 1)


_taken: set[int] = set()


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(bus: bool = False) -> int:
    """A port of the allowed range that is free now (and its bus port, for cluster nodes)."""
    for port in port_range():
        if port in _taken or not _bindable(port) or (bus and not _bindable(port + 10000)):
            continue
        _taken.add(port)
        return port
    raise RuntimeError(f"no free port in {port_range()}")


def ping(port: int, timeout: float = 0.5) -> bytes:
    """One raw RESP PING; returns the first reply line (b'' on any failure)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64)
    except OSError:
        return b""


@dataclass
class RedisProc:
    """One redis-server (or sentinel) process; ``kill`` is SIGKILL, ``pause`` is SIGSTOP."""

    port: int
    dir: Path
    args: list[str] = field(default_factory=list)
    sentinel: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, wait_s: float = 10.0) -> RedisProc:
        assert REDIS_SERVER, "redis-server not installed"
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [REDIS_SERVER]
        if self.sentinel:
            conf = self.dir / "sentinel.conf"
            if not conf.exists():
                conf.write_text("\n".join(self.args) + "\n")
            cmd += [str(conf), "--sentinel"]
            extra: list[str] = []
        else:
            extra = self.args
        cmd += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--save", "", "--protected-mode", "no", *extra]
        log = open(self.dir / "server.log", "ab")  # handed to the child, closed here
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        deadline = time.monotonic() + wait_s
        while not ping(self.port).startswith(b"+PONG"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not start: "
                                   + (self.dir / "server.log").read_text(errors="replace")[-2000:])
            time.sleep(0.05)
        return self

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def stop(self) -> None:
        """Graceful stop (SIGTERM: AOF flushed), bounded; SIGKILL if it hangs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None


def cli(port: int, *args: str, timeout: float = 20.0) -> str:
    assert REDIS_CLI, "redis-cli not installed"
    out = subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
                         capture_output=True, text=True, timeout=timeout, check=False)
    return out.stdout + out.stderr


def standalone(base: Path, *args: str) -> RedisProc:
    port = free_port()
    return RedisProc(port, base / f"redis-{port}", list(args)).start()


def cluster(base: Path, masters: int = 3, node_timeout_ms: int = 1000) -> list[RedisProc]:
    """``masters`` cluster-enabled nodes joined with ``redis-cli --cluster create``."""
    nodes: list[RedisProc] = []
    try:
        for _ in range(masters):
            port = free_port(bus=True)
            nodes.append(RedisProc(port, base / f"cluster-{port}", [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", str(node_timeout_ms), "--appendonly", "no",
            ]).start())
        out = cli(nodes[0].port, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
                  "--cluster-yes", timeout=30)
        deadline = time.monotonic() + 20
        while not all("cluster_state:ok" in cli(n.port, "cluster", "info") for n in nodes):
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster did not become ok: {out}")
            time.sleep(0.1)
        return nodes
    except BaseException:
        for n in nodes:
            n.kill()
        raise


@dataclass
class SentinelSetup:
    master: RedisProc
    replica: RedisProc
    sentinels: list[RedisProc]
    name: str = "fanzha"

    @property
    def env(self) -> str:
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def all(self) -> list[RedisProc]:
        return [self.master, self.replica, *self.sentinels]

    def kill(self) -> None:
        for p in self.all():
            p.kill()


def sentinel_setup(base: Path, sentinels: int = 1, down_after_ms: int = 1000) -> SentinelSetup:
    """A master, one replica and ``sentinels`` sentinels (quorum 1) watching them."""
    master = standalone(base, "--appendonly", "no")
    procs = [master]
    try:
        rport = free_port()
        replica = RedisProc(rport, base / f"replica-{rport}",
                            ["--replicaof", "127.0.0.1", str(master.port), "--appendonly", "no"]).start()
        procs.append(replica)
        sents: list[RedisProc] = []
        for _ in range(sentinels):
            sport = free_port()
            conf = [
                f"sentinel monitor fanzha 127.0.0.1 {master.port} 1",
                f"sentinel down-after-milliseconds fanzha {down_after_ms}",
                "sentinel failover-timeout fanzha 5000",
                "sentinel parallel-syncs fanzha 1",
            ]
            s = RedisProc(sport, base / f"sentinel-{sport}", conf, sentinel=True).start()
            sents.append(s)
            procs.append(s)
        setup = SentinelSetup(master, replica, sents)
        deadline = time.monotonic() + 20
        while "master_link_status:up" not in cli(rport, "info", "replication"):
            if time.monotonic() > deadline:
                raise RuntimeError("replica did not sync")
            time.sleep(0.1)
        return setup
    except BaseException:
        for p in procs:
            p.kill()
        raise
