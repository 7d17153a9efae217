"""Hot-path shortcuts give exactly what the general code gives.

``dialogs.understand.understood`` stands in for ``Understood.model_construct`` (and for the
validating constructor on command, choice and empty messages); ``bot.metrics.child`` for
``labels``.
"""

from __future__ import annotations

from bot import metrics
from dialogs.understand import Command, Understood, understood


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
