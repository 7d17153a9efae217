"""The data that crosses the boundary between channel adapters and the pipeline.

Adapters know their wire protocol and turn it into an ``IncomingMessage``; the pipeline
answers with an ``Outcome``. Nothing else is shared, so a new channel never touches dialogs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MessageKind = Literal["text", "non_text", "join"]
"""``join``: the bot itself was added to ``room_id``; ``non_text``: voice, image, file..."""


class IncomingMessage(BaseModel):
    """One thing a user (or a room) said to the bot, already decoded by its channel."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(default="http", max_length=32)
    user_id: str = Field(min_length=1, max_length=128)
    text: str = ""
    room_id: str | None = Field(default=None, max_length=128)
    mentioned: bool = False
    msg_id: str | None = Field(default=None, max_length=128)
    kind: MessageKind = "text"
    user_name: str | None = Field(default=None, max_length=64)
    is_admin: bool = Field(default=False, description="Room owner/admin, as the channel reports")

    @property
    def in_room(self) -> bool:
        return self.room_id is not None


class Reply(BaseModel):
    """One message to send back; in a room, ``mention`` lists the user ids to @."""

    model_config = ConfigDict(frozen=True)

    text: str
    mention: list[str] = Field(default_factory=list)


class Outcome(BaseModel):
    """What the pipeline decided for one incoming message."""

    replies: list[Reply] = Field(default_factory=list)
    scenario: str | None = None
    state: str = "start"
    duplicate: bool = False
    handoff: bool = Field(
        default=False,
        description="The user asked for a human (人工). Replies already say honestly that there is "
        "none; a channel that can reach a human servicer may hand the conversation over instead.",
    )
