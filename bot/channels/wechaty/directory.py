"""Who is who, from the gateway: contact names, room owners/admins, the bot's alias per room.

Each answer is cached for a while (names rarely change; a room's admins more often), and a
gateway failure degrades to "unknown" — logged, not cached, never failing the message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from .link import WireContact, WireRoom, _describe, _PuppetLink
from .pacing import _TTLCache
from .runstate import CHANNEL, RunState, log
from .text import tag

P = TypeVar("P")
"""A gateway payload type (``WireContact``, ``WireRoom``) kept in a ``_TTLCache``."""

LinkGetter = Callable[[], _PuppetLink | None]
"""The current connection's link (None while disconnected)."""


class Directory:
    """Cached gateway lookups over whatever link is current (``None`` while disconnected)."""

    def __init__(self, link: LinkGetter, run: RunState) -> None:
        self._link = link
        self._run = run
        self._names: _TTLCache[str, WireContact] = _TTLCache(ttl=3600.0)
        self._rooms: _TTLCache[str, WireRoom] = _TTLCache(ttl=60.0)
        self._aliases: _TTLCache[str, str] = _TTLCache(ttl=600.0)

    async def _cached(self, cache: _TTLCache[str, P], kind: str, key: str,
                      fetch: Callable[[_PuppetLink], Awaitable[P]]) -> P | None:
        cached = cache.get(key)
        if cached is not None:
            return cached
        link = self._link()
        if link is None:
            return None
        try:
            payload = await fetch(link)
        except Exception as exc:  # an unknown name must not fail the message
            self._run.reraise_if_cancelled(exc)
            # ``kind`` goes into the template (not the args) so each record's ``msg`` stays
            # the fixed "wechaty contact|room %s: ..." string that log grouping keys on.
            log.info(f"wechaty {kind} %s: payload unavailable (%s)", tag(key), _describe(exc),
                     extra={"channel": CHANNEL})
            return None
        cache.put(key, payload)
        return payload

    async def contact(self, contact_id: str) -> WireContact | None:
        return await self._cached(self._names, "contact", contact_id, lambda link: link.contact(contact_id))

    async def contact_name(self, contact_id: str) -> str | None:
        contact = await self.contact(contact_id)
        return (contact.name or None) if contact else None

    async def room(self, room_id: str) -> WireRoom | None:
        return await self._cached(self._rooms, "room", room_id, lambda link: link.room(room_id))

    async def is_admin(self, room_id: str, contact_id: str) -> bool:
        """Owner or admin of the room, as the gateway reports it (unknown room: no)."""
        room = await self.room(room_id)
        return bool(room and contact_id and (contact_id == room.owner_id or contact_id in room.admin_ids))

    async def self_alias(self, room_id: str, self_id: str) -> str | None:
        """The bot's own alias in a room ('' cached when the gateway has none or fails)."""
        cached = self._aliases.get(room_id)
        if cached is not None:
            return cached or None
        link = self._link()
        if link is None:
            return None
        try:
            alias = await link.room_alias(room_id, self_id)
        except Exception as exc:  # many gateways do not implement it
            self._run.reraise_if_cancelled(exc)
            alias = ""
        self._aliases.put(room_id, alias)
        return alias or None
