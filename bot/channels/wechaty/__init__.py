"""WeChat through a Wechaty puppet-service gateway (gRPC), as a thin adapter around the pipeline.

The gateway (a puppet-service server that someone runs next to a WeChat account) streams
events; for each text message this adapter builds an ``IncomingMessage``, awaits the pipeline
and sends the ``Outcome``'s replies back to the same conversation.

Only ``_PuppetLink`` touches the Python protocol client (``wechaty-puppet-service``, which is
unmaintained since 2022/23): if its pins ever break, a client generated from ``puppet.proto``
replaces that one class. The python ``wechaty`` package itself is never imported (it does not
import on Python >= 3.11). What the adapter adds on top of the bare client:

* a reconnect loop with exponential backoff, and a watchdog (``ding`` keepalives; no event for
  N minutes -> reconnect), because the client has neither and a silent TCP drop hangs it;
* ordering: payloads are fetched in arrival order, then each conversation (room, or talker in
  1:1) is handled strictly in order, different conversations concurrently (bounded);
* filters: the bot's own echoes, history replayed after a (re)connect, and a message id that is
  already being processed; non-text in rooms is dropped, non-text in 1:1 becomes ``non_text``;
* mention detection by id list *or* by ``@<bot name>`` / ``@<bot alias in the room>`` text;
* sending: a per-conversation outbox drained by its own task (so pacing and retry backoff
  never hold up the next message), long replies split at natural boundaries, paced per
  conversation and globally, each send retried with backoff and, when it still fails, logged
  as an error (never silent).

Logs carry message ids, hashed contact/room ids and lengths; never message text or the token.

Layout (one job per module): ``settings`` (env -> ``WechatySettings``), ``text`` (pure
helpers), ``pacing`` (send pacing, TTL caches), ``link`` (the only code that touches the
protocol client), ``connection`` (connect, reconnect, watchdog, history cutoff), ``inbound``
(filters, per-conversation order, the handler call), ``outbound`` (the per-conversation
outbox: split, paced, retried sends), ``directory`` (cached names and room admins),
``runstate`` (counters, tasks, the stop flag they share) and ``channel`` (``WechatyChannel``,
which wires them and starts/stops them in order). This package re-exports the names the rest
of the bot and the tests import.
"""

from __future__ import annotations

from .channel import CHANNEL, EVENTS, Handler, WechatyChannel
from .link import INSTALL_HINT, TYPE_TEXT, TYPES_NON_TEXT, WireContact, WireMessage, WireRoom
from .pacing import SendPacer
from .settings import WechatySettings, wechaty_settings_from_env
from .text import mentions_name, split_text, tag, to_seconds

__all__ = [
    "CHANNEL",
    "EVENTS",
    "INSTALL_HINT",
    "TYPES_NON_TEXT",
    "TYPE_TEXT",
    "Handler",
    "SendPacer",
    "WechatyChannel",
    "WechatySettings",
    "WireContact",
    "WireMessage",
    "WireRoom",
    "mentions_name",
    "split_text",
    "tag",
    "to_seconds",
    "wechaty_settings_from_env",
]
