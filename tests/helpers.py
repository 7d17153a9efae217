"""Small helpers for driving the pipeline like a user would."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.models import IncomingMessage, Outcome
from bot.pipeline import Pipeline
from knowledge.render import render
from knowledge.schema import KnowledgeBase

_ids = itertools.count(1)


async def say(pipeline: Pipeline, text: str, user: str = "u1", **fields: object) -> Outcome:
    """Send one message with a fresh msg_id and return the outcome."""
    fields.setdefault("msg_id", f"m{next(_ids)}")
    return await pipeline.handle(IncomingMessage(user_id=user, text=text, **fields))  # type: ignore[arg-type]


def joined(outcome: Outcome) -> str:
    return "\n".join(r.text for r in outcome.replies)


def number(kb: KnowledgeBase, hotline_id: str) -> str:
    return kb.hotlines[hotline_id].number


def text_of(kb: KnowledgeBase, key: str, **variables: object) -> str:
    return render(kb, kb.texts[key], variables)


SHARED_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"


def shared_eval_file(name: str) -> Path:
    """A file of ../shared/eval; missing is a failure (CI clones the repo beside shared/)."""
    path = SHARED_EVAL / name
    if not path.exists():
        pytest.fail(
            f"shared eval set missing: {path} — clone the repository beside shared/ "
            "(CI does) so that shared/eval/ is found"
        )
    return path


class FakeClock:
    """A wall clock the test moves by hand (``Pipeline(clock=...)``): no waiting, no editing
    stored sessions to pretend time passed."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
