"""A fake Wechaty puppet-service gateway (gRPC over plain h2c) for the WeChat channel's tests.

grpclib serves a ``__mapping__`` of ``/wechaty.Puppet/<Name>`` paths to handlers built on the
wechaty-grpc message classes; any RPC not listed answers UNIMPLEMENTED (grpclib does that for
unknown paths). ``Event`` is unary-stream: on open it sends HEARTBEAT, then LOGIN and READY when
the account is logged in, then whatever the test emits. Like the TypeScript server, it wants
the token as the HTTP/2 ``:authority`` (UNAUTHENTICATED otherwise), ends the running event
stream on ``Stop``, and answers ``Ding`` with a DONG event. Timestamps are milliseconds and
message types use the TypeScript numbering (Text = 7), as a real gateway sends them.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import json
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from grpclib.const import Cardinality, Status
from grpclib.const import Handler as RpcHandler
from grpclib.exceptions import GRPCError
from grpclib.protocol import H2Protocol
from grpclib.server import Handler, Server, Stream
from wechaty_grpc.wechaty import puppet as pb

EventType = pb.EventType
TEXT, IMAGE, AUDIO, RECALLED, URL = 7, 6, 2, 13, 14

_authority: contextvars.ContextVar[str | None] = contextvars.ContextVar("authority", default=None)


class _AuthorityHandler(Handler):
    """Makes each request's ``:authority`` visible to the RPC handler (via a contextvar)."""

    def accept(self, stream: Any, headers: Any, release_stream: Any) -> None:
        value = dict(headers).get(":authority")
        if isinstance(value, bytes):
            value = value.decode()
        token = _authority.set(value)
        try:
            super().accept(stream, headers, release_stream)  # the task copies the context
        finally:
            _authority.reset(token)


class _TrackingProtocol(H2Protocol):
    """Remembers its transport, so that stop() can drop client connections like a real exit."""

    def __init__(self, *args: Any, transports: set[Any]) -> None:
        super().__init__(*args)
        self._transports = transports

    def connection_made(self, transport: Any) -> None:
        self._transports.add(transport)
        super().connection_made(transport)


class _Server(Server):
    def __init__(self, handlers: list[Any]) -> None:
        super().__init__(handlers)
        self.transports: set[Any] = set()

    def _protocol_factory(self):  # type: ignore[no-untyped-def]
        self.__gc_step__()
        handler = _AuthorityHandler(self._mapping, self._codec, self._status_details_codec, self.__dispatch__)
        self._handlers.add(handler)
        return _TrackingProtocol(handler, self._config, self._h2_config, transports=self.transports)

    def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()

    def drop_connections(self) -> None:
        for transport in list(self.transports):
            transport.close()
        self.transports.clear()


@dataclass
class SentText:
    conversation_id: str
    text: str
    mention_ids: list[str]


@dataclass
class Room:
    id: str
    topic: str = "反诈测试群"
    owner_id: str = ""
    admin_ids: list[str] = field(default_factory=list)
    member_ids: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakePuppetServer:
    """The fake gateway. ``await start()``, drive it, ``await stop()``; restart keeps the port."""

    def __init__(self, token: str = "test-token", self_id: str = "bot-id", self_name: str = "反诈助手") -> None:
        self.token = token
        self.self_id = self_id
        self.port = free_port()
        self.logged_in = True
        self.answer_ding = True
        self.echo_sends = True
        self.fail_sends = 0
        self.slow_sends = 0.0
        """Seconds to sit on a send *after* recording it (a gateway that sent but answered late)."""
        self.payload_delay = 0.0
        self.contacts: dict[str, str] = {self_id: self_name}
        self.official: set[str] = set()
        self.rooms: dict[str, Room] = {}
        self.messages: dict[str, pb.MessagePayloadResponse] = {}
        self.sent: list[SentText] = []
        self.calls: list[str] = []
        self.auth_failures = 0
        self.event_streams = 0
        self._queues: set[asyncio.Queue[pb.EventResponse | None]] = set()
        self._server: _Server | None = None
        self._ids = itertools.count(1)
        self._stream_open = asyncio.Event()
        self._sent_changed = asyncio.Event()

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = _Server([self])
        await self._server.start("127.0.0.1", self.port)

    async def stop(self) -> None:
        """Like a gateway that exits: stop listening, end every event stream with trailers,
        then drop the connections (on Python >= 3.12 ``wait_closed()`` waits for them)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stop_listening()
        self.end_streams()
        await asyncio.sleep(0.05)
        server.close()
        server.drop_connections()
        await server.wait_closed()

    async def restart(self, down_for: float = 0.0) -> None:
        await self.stop()
        if down_for:
            await asyncio.sleep(down_for)
        await self.start()

    def end_streams(self) -> None:
        for q in list(self._queues):
            q.put_nowait(None)

    # -- driving --------------------------------------------------------------------------
    def add_contact(self, contact_id: str, name: str, official: bool = False) -> None:
        self.contacts[contact_id] = name
        if official:
            self.official.add(contact_id)

    def add_room(self, room_id: str, *, owner: str = "", admins: Iterable[str] = (),
                 members: Iterable[str] = (), aliases: dict[str, str] | None = None) -> Room:
        room = Room(id=room_id, owner_id=owner, admin_ids=list(admins), member_ids=list(members),
                    aliases=dict(aliases or {}))
        self.rooms[room_id] = room
        return room

    def emit(self, event_type: int, payload: dict[str, Any]) -> None:
        ev = pb.EventResponse(type=event_type, payload=json.dumps(payload))
        for q in list(self._queues):
            q.put_nowait(ev)

    def say(self, talker: str, text: str = "", *, room: str | None = None, mention: Iterable[str] = (),
            type_: int = TEXT, ts_ms: int | None = None, msg_id: str | None = None, emit: bool = True) -> str:
        """Store a message payload (as the gateway would) and emit its MESSAGE event."""
        msg_id = msg_id or f"msg-{next(self._ids)}"
        self.messages[msg_id] = pb.MessagePayloadResponse(
            id=msg_id, text=text, timestamp=ts_ms if ts_ms is not None else int(time.time() * 1000),
            type=type_, from_id=talker, room_id=room or "", to_id="" if room else self.self_id,
            mention_ids=list(mention),
        )
        if emit:
            self.deliver(msg_id)
        return msg_id

    def deliver(self, msg_id: str) -> None:
        self.emit(EventType.EVENT_TYPE_MESSAGE, {"messageId": msg_id})

    def add_bot_to_room(self, room_id: str, inviter: str, ts_ms: int | None = None) -> None:
        room = self.rooms[room_id]
        if self.self_id not in room.member_ids:
            room.member_ids.append(self.self_id)
        self.emit(EventType.EVENT_TYPE_ROOM_JOIN, {
            "inviteeIdList": [self.self_id], "inviterId": inviter, "roomId": room_id,
            "timestamp": ts_ms if ts_ms is not None else int(time.time() * 1000),
        })

    async def wait_stream(self, timeout: float = 10.0) -> None:
        """Until an event stream is open (login already sent when logged in)."""
        await asyncio.wait_for(self._stream_open.wait(), timeout)

    async def wait_sent(self, n: int, timeout: float = 10.0) -> list[SentText]:
        async def until() -> None:
            while len(self.sent) < n:
                self._sent_changed.clear()
                await self._sent_changed.wait()

        await asyncio.wait_for(until(), timeout)
        return self.sent

    # -- the gRPC service -----------------------------------------------------------------
    def _check(self, name: str) -> None:
        self.calls.append(name)
        if _authority.get() != self.token:
            self.auth_failures += 1
            raise GRPCError(Status.UNAUTHENTICATED, "bad token")

    async def _unary(self, stream: Stream, name: str) -> Any:
        request = await stream.recv_message()
        self._check(name)
        return request

    async def Start(self, stream: Stream) -> None:
        await self._unary(stream, "Start")
        await stream.send_message(pb.StartResponse())

    async def Stop(self, stream: Stream) -> None:
        await self._unary(stream, "Stop")
        self.end_streams()
        await stream.send_message(pb.StopResponse())

    async def Ding(self, stream: Stream) -> None:
        req = await self._unary(stream, "Ding")
        await stream.send_message(pb.DingResponse())
        if self.answer_ding:
            self.emit(EventType.EVENT_TYPE_DONG, {"data": req.data})

    async def Event(self, stream: Stream) -> None:
        await self._unary(stream, "Event")
        self.event_streams += 1
        q: asyncio.Queue[pb.EventResponse | None] = asyncio.Queue()
        self._queues.add(q)
        try:
            await stream.send_message(pb.EventResponse(
                type=EventType.EVENT_TYPE_HEARTBEAT, payload=json.dumps({"data": "connected"})))
            if self.logged_in:
                await stream.send_message(pb.EventResponse(
                    type=EventType.EVENT_TYPE_LOGIN, payload=json.dumps({"contactId": self.self_id})))
                await stream.send_message(pb.EventResponse(
                    type=EventType.EVENT_TYPE_READY, payload=json.dumps({"data": "ready"})))
            self._stream_open.set()
            while True:
                ev = await q.get()
                if ev is None:
                    break
                await stream.send_message(ev)
            await stream.send_trailing_metadata()
        finally:
            self._queues.discard(q)
            if not self._queues:
                self._stream_open.clear()

    async def MessagePayload(self, stream: Stream) -> None:
        req = await self._unary(stream, "MessagePayload")
        if self.payload_delay:
            await asyncio.sleep(self.payload_delay)
        msg = self.messages.get(req.id)
        if msg is None:
            raise GRPCError(Status.NOT_FOUND, "no such message")
        await stream.send_message(msg)

    async def ContactPayload(self, stream: Stream) -> None:
        req = await self._unary(stream, "ContactPayload")
        if req.id not in self.contacts:
            raise GRPCError(Status.NOT_FOUND, "no such contact")
        await stream.send_message(pb.ContactPayloadResponse(
            id=req.id, name=self.contacts[req.id], friend=True,
            type=pb.ContactType.CONTACT_TYPE_OFFICIAL if req.id in self.official
            else pb.ContactType.CONTACT_TYPE_PERSONAL))

    async def RoomPayload(self, stream: Stream) -> None:
        req = await self._unary(stream, "RoomPayload")
        room = self.rooms.get(req.id)
        if room is None:
            raise GRPCError(Status.NOT_FOUND, "no such room")
        await stream.send_message(pb.RoomPayloadResponse(
            id=room.id, topic=room.topic, owner_id=room.owner_id, admin_ids=list(room.admin_ids),
            member_ids=list(room.member_ids)))

    async def RoomMemberPayload(self, stream: Stream) -> None:
        req = await self._unary(stream, "RoomMemberPayload")
        room = self.rooms.get(req.id)
        if room is None or req.member_id not in room.member_ids:
            raise GRPCError(Status.NOT_FOUND, "no such member")
        await stream.send_message(pb.RoomMemberPayloadResponse(
            id=req.member_id, room_alias=room.aliases.get(req.member_id, ""),
            name=self.contacts.get(req.member_id, "")))

    async def MessageSendText(self, stream: Stream) -> None:
        req = await self._unary(stream, "MessageSendText")
        if self.fail_sends > 0:
            self.fail_sends -= 1
            raise GRPCError(Status.UNAVAILABLE, "simulated send failure")
        self.sent.append(SentText(req.conversation_id, req.text, list(req.mentonal_ids)))
        self._sent_changed.set()
        msg_id = f"sent-{next(self._ids)}"
        if self.slow_sends:
            await asyncio.sleep(self.slow_sends)
        await stream.send_message(pb.MessageSendTextResponse(id=msg_id))
        if self.echo_sends:  # a real account sees its own messages come back as events
            room = req.conversation_id if req.conversation_id in self.rooms else None
            self.say(self.self_id, req.text, room=room, msg_id=msg_id)

    def __mapping__(self) -> dict[str, RpcHandler]:
        def unary(fn: Any, req: type, rep: type) -> RpcHandler:
            return RpcHandler(fn, Cardinality.UNARY_UNARY, req, rep)

        return {
            "/wechaty.Puppet/Start": unary(self.Start, pb.StartRequest, pb.StartResponse),
            "/wechaty.Puppet/Stop": unary(self.Stop, pb.StopRequest, pb.StopResponse),
            "/wechaty.Puppet/Ding": unary(self.Ding, pb.DingRequest, pb.DingResponse),
            "/wechaty.Puppet/Event": RpcHandler(self.Event, Cardinality.UNARY_STREAM,
                                                pb.EventRequest, pb.EventResponse),
            "/wechaty.Puppet/MessagePayload": unary(self.MessagePayload, pb.MessagePayloadRequest,
                                                    pb.MessagePayloadResponse),
            "/wechaty.Puppet/ContactPayload": unary(self.ContactPayload, pb.ContactPayloadRequest,
                                                    pb.ContactPayloadResponse),
            "/wechaty.Puppet/RoomPayload": unary(self.RoomPayload, pb.RoomPayloadRequest, pb.RoomPayloadResponse),
            "/wechaty.Puppet/RoomMemberPayload": unary(self.RoomMemberPayload, pb.RoomMemberPayloadRequest,
                                                       pb.RoomMemberPayloadResponse),
            "/wechaty.Puppet/MessageSendText": unary(self.MessageSendText, pb.MessageSendTextRequest,
                                                     pb.MessageSendTextResponse),
        }
