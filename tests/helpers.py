"""Small helpers for driving the pipeline like a user would."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from bot.models import IncomingMessage, Outcome
from bot.pipeline import Pipeline
from knowledge import external
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


SHARED_EVAL = external.shared_dir() / "eval"


def shared_file(path: Path) -> Path:
    """A product document outside the repository: skipped without it, a failure in CI."""
    if not path.exists():
        message = (f"{path} not found: put the product's shared/ folder beside the repository "
                   "or set FANZHA_SHARED_DIR")
        if external.required():
            pytest.fail(message + " (required in CI)")
        pytest.skip(message + " (the comparison with it runs when it is there; CI requires it)")
    return path


def shared_eval_file(name: str) -> Path:
    """A file of ../shared/eval (see ``shared_file``)."""
    return shared_file(external.shared_eval(name))


class FakeClock:
    """A wall clock the test moves by hand (``Pipeline(clock=...)``): no waiting, no editing
    stored sessions to pretend time passed."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
