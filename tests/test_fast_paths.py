"""Hot-path shortcuts give exactly what the general code gives.

``dialogs.understand.understood`` (``dialogs.construct``) stands in for ``Understood.model_construct`` (and for the
validating constructor on command, choice and empty messages); ``bot.metrics.child`` for
``labels``; ``knowledge.render``'s expanded-template cache for expanding every time.
"""

from __future__ import annotations

import pytest

from bot import metrics
from dialogs.understand import Command, Understood, understood
from knowledge.render import RenderError, render
from knowledge.schema import KnowledgeBase


def _state(u: Understood) -> tuple[list[tuple[str, object]], set[str], object, object]:
    return (list(u.__dict__.items()), u.__pydantic_fields_set__, u.__pydantic_extra__, u.__pydantic_private__)


def test_understood_has_nothing_model_construct_would_handle_differently() -> None:
    assert all(f.alias is None and f.validation_alias is None for f in Understood.model_fields.values())
    assert not Understood.__private_attributes__
    assert not Understood.__pydantic_post_init__
    assert Understood.model_config.get("extra") in (None, "ignore")


def test_understood_equals_model_construct() -> None:
    cases: list[dict[str, object]] = [
        {},
        {"command": Command.next, "secrets": [], "personal": [], "truncated": False},
        {"choice": 2, "secrets": ["code"], "personal": [], "truncated": True},
        {"empty": True, "secrets": [], "personal": ["phone"], "truncated": False},
        {"scenario": "fraud_victim", "confidence": 0.7, "candidates": ["fraud_victim", "scam_check"],
         "also": [], "amount": 2000, "number": None, "flags": [], "patterns": ["brushing_rebate"],
         "intent": "qa:law", "intent_score": 0.41, "alternatives": [("qa:law", 0.41)], "story_score": 0.3,
         "moves": [], "emotion": False, "question": True, "chars": 14, "closing": False, "stopped": False,
         "did": False, "secrets": [], "personal": [], "truncated": False},
    ]
    for values in cases:
        fast, slow = understood(**values), Understood.model_construct(**values)
        assert _state(fast) == _state(slow)
        assert fast == slow and fast.model_dump() == slow.model_dump()
        assert fast == Understood(**values)  # the validating constructor agrees too


def test_understood_defaults_are_fresh() -> None:
    a, b = understood(), understood()
    a.flags.append("x")
    assert b.flags == [] and Understood().flags == []


def test_metric_child_is_the_labels_child() -> None:
    c = metrics.child(metrics.REPLIES_OUT, "test-child")
    assert c is metrics.REPLIES_OUT.labels("test-child")
    assert metrics.child(metrics.REPLIES_OUT, "test-child") is c


def test_render_cache_follows_the_knowledge_base(kb: KnowledgeBase) -> None:
    template = "打{hotline:12348}，{x}"
    first = render(kb, template, {"x": 1})
    assert render(kb, template, {"x": 2}) == first[:-1] + "2"  # variables are never cached
    line = kb.hotlines["12348"]
    other = kb.model_copy(update={"hotlines": {**kb.hotlines, "12348": line.model_copy(update={"number": "000"})}})
    assert render(other, template, {"x": 1}) == first.replace(line.number, "000")
    assert render(kb, template, {"x": 1}) == first  # back to the first knowledge base
    for _ in range(2):  # an unknown id fails every time, not only the first
        with pytest.raises(RenderError):
            render(kb, "{hotline:nope}")


def test_fast_constructor_refuses_what_model_construct_handles_differently() -> None:
    from pydantic import BaseModel, Field

    from dialogs.construct import fast_constructor

    class Aliased(BaseModel):
        x: int = Field(default=0, alias="y")

    with pytest.raises(TypeError):
        fast_constructor(Aliased)
