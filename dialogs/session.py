"""The per-conversation session: small, versioned, and the only state the bot keeps.

Kept well under 1 KB of JSON: positions and flags, never message text. ``schema_v`` lets a
future release read (or reset gracefully) sessions written by an older one (aiogram_dialog
#246: renamed states broke live sessions).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1
State = Literal["start", "menu", "clarify", "scenario", "resume", "group"]
MAX_BACK = 8


class Position(BaseModel):
    """Where the user was, for 上一步."""

    model_config = ConfigDict(frozen=True)

    state: State
    scenario: str | None = None
    step: int = 0


class Session(BaseModel):
    """Dialog position, progress flags and the few facts the dialog needs."""

    schema_v: int = SCHEMA_VERSION
    state: State = "start"
    scenario: str | None = None
    step: int = 0
    back: list[Position] = Field(default_factory=list)
    done: list[str] = Field(default_factory=list)
    offered: list[str] = Field(default_factory=list)
    amount: int | None = None
    last_active: float = 0.0
    turns: int = 0
    offered_qa: list[str] = Field(default_factory=list)
    """Q&A ids offered as numbered options after an unclear question (a number picks one)."""
    last_move: str | None = None
    """The live-scam move the bot last answered (so "关了" means "I stopped it")."""
    moves_answered: list[str] = Field(default_factory=list)
    """Live-scam moves already answered (a message naming one again and a new one gets the new one)."""

    @classmethod
    def from_raw(cls, raw: str | None) -> Session:
        """Parse stored JSON; a missing, foreign or corrupt session starts fresh."""
        if not raw:
            return cls()
        try:
            session = cls.model_validate_json(raw)
        except (ValidationError, ValueError):
            return cls()
        if session.schema_v != SCHEMA_VERSION:
            return cls()
        return session

    def position(self) -> Position:
        return Position(state=self.state, scenario=self.scenario, step=self.step)

    def mark_done(self, flags: list[str]) -> list[str]:
        """Record reported progress ("已报警"); the flags not recorded before, in order."""
        new = [f for f in flags if f not in self.done]
        self.done.extend(new)
        return new

    def push(self) -> None:
        """Remember the current position before moving (bounded, for 上一步)."""
        if self.state in ("scenario", "menu", "clarify"):
            self.back.append(self.position())
            del self.back[:-MAX_BACK]
