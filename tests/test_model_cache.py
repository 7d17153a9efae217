"""The trained-model cache: a hit only for unchanged inputs, never a wrong or broken model."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.model_cache import SUFFIX, load_or_build
from bot.runtime import trained_models
from knowledge.schema import KnowledgeBase


class Model:
    """Stands in for a trained model: an answer, plus a part only training needs."""

    def __init__(self, weight: int, helper: object = None) -> None:
        self.weight = weight
        self.helper = helper

    def answer(self, x: int) -> int:
        return self.weight * x


def probe(m: Model) -> list[int]:
    return [m.answer(x) for x in (1, 2, 3)]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "knowledge"
    (root / "data").mkdir(parents=True)
    (root / "data" / "examples.txt").write_text("a\nb\n", encoding="utf-8")
    (root / "model.py").write_text("WEIGHT = 3\n", encoding="utf-8")
    return root


def counting_build(calls: list[int], weight: int = 3, helper: object = None):  # type: ignore[no-untyped-def]
    def build() -> Model:
        calls.append(1)
        return Model(weight, helper)
    return build


def test_second_start_loads_instead_of_training(tmp_path: Path, tree: Path) -> None:
    calls: list[int] = []
    first, cached = load_or_build(tmp_path / "models", counting_build(calls), probe, root=tree)
    assert not cached and calls == [1]
    second, cached = load_or_build(tmp_path / "models", counting_build(calls), probe, root=tree)
    assert cached and calls == [1] and probe(second) == probe(first)
    assert len(list((tmp_path / "models").glob("*" + SUFFIX))) == 1


@pytest.mark.parametrize("change", ["data", "code", "new file"])
def test_any_change_to_data_or_model_code_retrains(tmp_path: Path, tree: Path, change: str) -> None:
    calls: list[int] = []
    load_or_build(tmp_path / "models", counting_build(calls), probe, root=tree)
    if change == "data":
        (tree / "data" / "examples.txt").write_text("a\nb\nc\n", encoding="utf-8")
    elif change == "code":
        (tree / "model.py").write_text("WEIGHT = 4\n", encoding="utf-8")
    else:
        (tree / "data" / "more.yaml").write_text("x: 1\n", encoding="utf-8")
    model, cached = load_or_build(tmp_path / "models", counting_build(calls, weight=4), probe, root=tree)
    assert not cached and calls == [1, 1] and model.weight == 4
    # the stale file is gone; the next start hits the new one
    assert len(list((tmp_path / "models").glob("*" + SUFFIX))) == 1
    assert load_or_build(tmp_path / "models", counting_build(calls), probe, root=tree)[1]


def test_corrupt_or_truncated_cache_is_retrained_and_replaced(tmp_path: Path, tree: Path) -> None:
    calls: list[int] = []
    load_or_build(tmp_path / "models", counting_build(calls), probe, root=tree)
    (path,) = (tmp_path / "models").glob("*" + SUFFIX)
    path.write_bytes(path.read_bytes()[:50])
    model, cached = load_or_build(tmp_path / "models", counting_build(calls), probe, root=tree)
    assert not cached and calls == [1, 1] and probe(model) == [3, 6, 9]
    assert load_or_build(tmp_path / "models", counting_build(calls), probe, root=tree)[1]


def test_a_cache_whose_answers_differ_is_not_used(tmp_path: Path, tree: Path) -> None:
    calls: list[int] = []
    load_or_build(tmp_path / "models", counting_build(calls), probe, root=tree)
    drifting = iter([0, 100])  # the same file, but the probe now answers differently

    def other_probe(m: Model) -> list[int]:
        return [*probe(m), next(drifting, 200)]

    _, cached = load_or_build(tmp_path / "models", counting_build(calls), other_probe, root=tree)
    assert not cached and calls == [1, 1]


def test_training_library_objects_are_dropped_and_a_model_needing_them_is_not_cached(tmp_path: Path, tree: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    calls: list[int] = []
    model, cached = load_or_build(tmp_path / "models", counting_build(calls, helper=LogisticRegression()),
                                  probe, root=tree)
    assert isinstance(model.helper, LogisticRegression)  # the fresh model keeps it
    loaded, cached = load_or_build(tmp_path / "models", counting_build(calls), probe, root=tree)
    assert cached and loaded.helper is None  # the cached copy does not drag scikit-learn in

    def needs_helper(m: Model) -> list[int]:
        return [*probe(m), len(type(m.helper).__name__) if m.helper is not None else -1]

    other = tmp_path / "other"
    _, cached = load_or_build(other, counting_build(calls, helper=LogisticRegression()),
                              lambda m: needs_helper(m) if m.helper is not None else 1 / 0, root=tree)
    assert not cached and not list(other.glob("*" + SUFFIX))  # would break when loaded: not written


def test_unwritable_path_only_costs_the_cache(tmp_path: Path, tree: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    calls: list[int] = []
    model, cached = load_or_build(blocker / "models", counting_build(calls), probe, root=tree)
    assert not cached and probe(model) == [3, 6, 9]


def test_real_models_from_the_cache_answer_like_freshly_trained_ones(
    tmp_path: Path, kb: KnowledgeBase, _matcher_scanner, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    matcher, scanner = _matcher_scanner
    with caplog.at_level(logging.INFO, logger="bot.runtime"):
        trained_models(kb, tmp_path)  # trains and writes
        cached_matcher, cached_scanner = trained_models(kb, tmp_path)
    assert [r.cached for r in caplog.records if r.msg == "models ready"] == [False, True]
    texts = [lines[-1] for lines in kb.examples.values()] + ["你好", "收购微信号，一个200", "我被骗了两千"]
    for text in texts:
        assert cached_matcher.classify(text) == matcher.classify(text)
        assert cached_scanner.scan(text) == scanner.scan(text)
