"""Map a user's free text to one of the fixed scenarios, fast and explainably.

How it works
------------
Layout: text folding and clause splitting live in ``knowledge.clauses``, the fallback
decision in ``knowledge.fallback``, the urgency order and the already-paid hand-over in
``knowledge.dialog_rules``; this module scores and puts the pieces together. Their public
names are re-exported here so ``from knowledge.matcher import normalize`` keeps working.

* ``normalize`` folds the ways people write the same thing (full-width ↔ half-width, upper
  case, ``wx``/``vx``/``V信``/``威信`` → 微信, ``扣扣`` → qq, 帐号 → 账号, spaces and
  punctuation) and, for the classifier only, folds every number to ``0`` so that 2000元,
  ¥3,000 and 两千块 all look like "0元" / "0块".
* Training (at start-up, well under a second): scikit-learn's ``TfidfVectorizer`` over
  character 1–2-grams of the normalised text (binary tf × idf, l2-normalised)
  feeding a multinomial ``LogisticRegression``, fitted on ``kb.examples``.
* Inference does **not** call scikit-learn: the learned vocabulary, idf and coefficients
  are exported into a dict n-gram → row index plus one numpy matrix, so scoring a text is
  a dict lookup per n-gram and one gather-and-sum (tens of microseconds for a whole
  ``classify``, clauses included) with exactly sklearn's argmax
  (``Matcher.check_against_sklearn`` verifies it).
* The softmax of the scores is the confidence; the Rasa ``FallbackClassifier`` rule turns
  it into ``ambiguous`` (see ``THRESHOLD`` / ``AMBIGUITY_GAP``).
* Several problems in one message ("号被盗了，零钱也被转走了") are found by classifying the
  message's clauses too; the most urgent situation (``URGENCY``) comes first and the others
  are offered in ``also``.
* ``explain`` lists the n-grams that pushed the message towards its scenario.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from operator import add
from typing import cast

import numpy as np
from pydantic import BaseModel

from knowledge.clauses import (
    CLAUSE_MIN_CHARS,
    NGRAM_RANGE,
    analyzer,
    fold_numbers,
    normalize,
    pieces,
    prenormalize,
)
from knowledge.dialog_rules import (
    PAID_RE,
    PAID_SWITCH_FROM,
    PAID_SWITCH_MIN_PROBABILITY,
    THIRD_PARTY_STOLEN_RE,
    URGENCY,
    own_account_stolen,
    paid_switch,
    urgency_rank,
)
from knowledge.fallback import AMBIGUITY_GAP, MIN_COVERAGE, THRESHOLD, decide
from knowledge.pinyin import PinyinModel, is_pinyin
from knowledge.schema import SCENARIO_IDS, KnowledgeBase

__all__ = [
    "ALSO_MIN_PROBABILITY",
    "AMBIGUITY_GAP",
    "C",
    "CLAUSE_MIN_CHARS",
    "CLAUSE_MIN_CONFIDENCE",
    "MIN_COVERAGE",
    "NGRAM_RANGE",
    "PAID_RE",
    "PAID_SWITCH_FROM",
    "PAID_SWITCH_MIN_PROBABILITY",
    "PROMOTE_MIN_PROBABILITY",
    "THIRD_PARTY_STOLEN_RE",
    "THRESHOLD",
    "URGENCY",
    "Classification",
    "Matcher",
    "analyzer",
    "fold_numbers",
    "normalize",
]

log = logging.getLogger(__name__)

_prenormalize = prenormalize
"""Old private name, still imported by ``dialogs.understand`` and ``knowledge.turns``."""

CLAUSE_MIN_CONFIDENCE = 0.60
"""A clause names a second situation only when the classifier is this sure about it."""

ALSO_MIN_PROBABILITY = 0.25
"""A scenario this probable for the whole message is offered in ``also`` even without a
clause of its own (e.g. "号被盗了零钱也没了" with no punctuation)."""

PROMOTE_MIN_PROBABILITY = 0.25
"""A more urgent situation found in a clause leads when that clause was added explicitly
("而且…", "…也…", "对方又…") or when the whole message gives it at least this probability;
otherwise it is only offered in ``also`` (a back-story such as "骗子用我的号借钱，我朋友被骗了"
is still about the user's stolen account)."""

C = 50.0
"""LogisticRegression inverse regularisation, picked by cross-validation on the examples."""

# --------------------------------------------------------------------------- public models


class Classification(BaseModel):
    scenario: str
    """Best scenario id (the most urgent one when the message names several)."""
    confidence: float
    """Probability of ``scenario`` (0..1); when a more urgent situation named in one clause
    takes the lead, the probability the matcher gives that clause."""
    ranked: list[tuple[str, float]]
    """All scenarios with their probability for the whole message, best first."""
    ambiguous: bool
    """Rasa rule: top < THRESHOLD or top1 − top2 < AMBIGUITY_GAP → ask before acting."""
    also: list[str]
    """Other situations found in the same message, most urgent first."""


class Matcher:
    """Char-n-gram TF-IDF + logistic regression, exported to a numpy dot product."""

    def __init__(
        self,
        classes: Sequence[str],
        vocab: dict[str, int],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
    ) -> None:
        if any(len(gram) > 2 for gram in vocab):
            raise ValueError("the fast scorer only knows 1- and 2-grams (NGRAM_RANGE)")
        self.classes: tuple[str, ...] = tuple(classes)
        self._col = {sid: i for i, sid in enumerate(self.classes)}
        self._vocab = vocab
        self._idf = np.ascontiguousarray(idf, dtype=np.float64)
        self._coef = np.ascontiguousarray(coef, dtype=np.float64)  # (n_features, n_classes)
        self._intercept = np.ascontiguousarray(intercept, dtype=np.float64)
        # binary tf: score = b + Σ idf·w / sqrt(Σ idf²); one gather gives both sums
        self._wn = np.ascontiguousarray(
            np.hstack([self._coef * self._idf[:, None], (self._idf**2)[:, None]])
        )
        self._b: list[float] = self._intercept.tolist()
        self._features = [""] * len(vocab)
        for gram, i in vocab.items():
            self._features[i] = gram
        self._other = tuple(sid != "out_of_scope" for sid in self.classes)
        self._sk: tuple[object, object] | None = None
        self._pinyin: PinyinModel | None = None

    # ------------------------------------------------------------------ training

    @classmethod
    def train(cls, examples: dict[str, list[str]], c: float = C) -> Matcher:
        """Fit on ``{scenario: [phrasings]}`` and export the weights."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        texts: list[str] = []
        labels: list[str] = []
        for sid, lines in examples.items():
            texts.extend(lines)
            labels.extend([sid] * len(lines))
        if len(set(labels)) < 2:
            raise ValueError("the matcher needs examples for at least two scenarios")
        vec = TfidfVectorizer(analyzer=analyzer, binary=True, dtype=np.float64)
        x = vec.fit_transform(texts)
        clf = LogisticRegression(C=c, solver="newton-cg", max_iter=500)
        clf.fit(x, labels)
        classes = [str(k) for k in clf.classes_]
        coef = clf.coef_.T
        intercept = clf.intercept_
        if coef.shape[1] == 1:  # binary case: sklearn keeps one row; make it two-sided
            coef = np.hstack([-coef, coef]) / 2
            intercept = np.array([-intercept[0], intercept[0]]) / 2
        vocab = {str(k): int(v) for k, v in vec.vocabulary_.items()}
        m = cls(classes, vocab, vec.idf_, coef, intercept)
        m._sk = (vec, clf)
        return m

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> Matcher:
        """Train from ``kb.examples`` (knowledge/data/examples/<scenario>.txt)."""
        examples = {sid: kb.examples[sid] for sid in SCENARIO_IDS if kb.examples.get(sid)}
        m = cls.train(examples)
        m._pinyin = PinyinModel(examples)  # the scenario matcher only (the scanner trains Matcher too)
        return m

    # ------------------------------------------------------------------ scoring

    def _lookup(self, folded: str) -> tuple[list[int | None], list[int | None]]:
        """Feature row of every character and of every character pair (None: unknown)."""
        get = self._vocab.get
        return list(map(get, folded)), list(map(get, map(add, folded, folded[1:])))

    def _known(self, folded: str) -> tuple[set[int], float]:
        """Feature rows present in a folded text, and the share of known bigrams."""
        uni, bi = self._lookup(folded)
        return self._present(uni, bi)

    @staticmethod
    def _present(uni: list[int | None], bi: list[int | None]) -> tuple[set[int], float]:
        present = set(uni)
        present.update(bi)
        present.discard(None)
        n_bi = len(bi)
        return cast(set[int], present), ((n_bi - bi.count(None)) / n_bi if n_bi else 0.0)

    def _softmax_of(self, present: set[int]) -> list[float]:
        """Softmax probabilities (class order) for the features present in one text.

        Binary tf × idf, l2-normalised, times the LR weights: one numpy gather-and-sum over
        ``_wn`` (idf-scaled weights with idf² as an extra column, so the same sum gives the
        norm), the rest in plain Python because numpy's per-call overhead would dominate
        for ~40 features × 8 classes. Identical to sklearn up to float rounding.
        """
        if present:
            v = self._wn.take([i for i in present if i is not None], 0).sum(0).tolist()
            inv = 1.0 / math.sqrt(v.pop())
            z = [b + x * inv for b, x in zip(self._b, v, strict=True)]
        else:
            z = self._b
        m = max(z)
        e = [math.exp(x - m) for x in z]
        t = sum(e)
        return [x / t for x in e]

    def _features_of(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(feature rows, l2-normalised tf-idf values) of ``text``, exactly as sklearn."""
        present, _ = self._known(pieces(text)[0])
        if not present:
            return np.empty(0, dtype=np.intp), np.empty(0)
        r = np.fromiter(present, dtype=np.intp, count=len(present))
        vals = self._idf[r]
        vals = vals / math.sqrt(float(vals @ vals))
        return r, vals

    def probabilities(self, text: str) -> np.ndarray:
        """Softmax of the scores (sklearn's ``predict_proba`` for multinomial LR)."""
        return np.array(self._softmax_of(self._known(pieces(text)[0])[0]))

    # ------------------------------------------------------------------ public API

    def classify(self, text: str) -> Classification:
        if self._pinyin is not None and is_pinyin(text):
            return self._classify_pinyin(self._pinyin, text)
        whole, spans = pieces(text)
        uni, bi = self._lookup(whole)
        present, coverage = self._present(uni, bi)
        pl = self._softmax_of(present)
        classes = self.classes
        order = sorted(range(len(pl)), key=pl.__getitem__, reverse=True)
        ranked = [(classes[i], pl[i]) for i in order]
        top, top_p = ranked[0]
        second_p = ranked[1][1] if len(ranked) > 1 else 0.0
        ambiguous, reason = decide(top_p, second_p, coverage)
        log.debug("fallback: %s", reason)

        # Other situations: confident clauses, and runners-up of the whole message.
        found: dict[str, tuple[float, bool]] = {}
        listed = False  # the top situation was itself added as a second problem ("…，而且号也被盗了")
        for start, end, explicit in spans:
            cpresent, cov = self._present(uni[start:end], bi[start : end - 1])
            if cov < MIN_COVERAGE:
                continue
            cp = self._softmax_of(cpresent)
            conf = max(cp)
            i = cp.index(conf)
            sid = classes[i]
            if sid == top and explicit and conf >= CLAUSE_MIN_CONFIDENCE:
                listed = True
            if sid == top or not self._other[i] or conf < CLAUSE_MIN_CONFIDENCE:
                continue
            ev, ex = found.get(sid, (0.0, False))
            found[sid] = (max(ev, conf), ex or explicit)
        for i in order[1:]:
            if pl[i] < ALSO_MIN_PROBABILITY:
                break
            if self._other[i]:
                found.setdefault(classes[i], (0.0, False))

        scenario, confidence, also = top, top_p, []
        if found:
            ordered = sorted({top, *found}, key=urgency_rank)
            lead = ordered[0]
            if lead == "fraud_victim" and top == "account_stolen" and own_account_stolen(text):
                lead = top  # "我的号被盗了 同事转了三千": others paid the thief; the stolen account leads
            if lead != top:
                evidence, explicit = found[lead]
                lead_p = pl[self._col[lead]]
                if evidence >= CLAUSE_MIN_CONFIDENCE and (
                    explicit or listed or lead_p >= PROMOTE_MIN_PROBABILITY
                ):
                    scenario, confidence = lead, max(lead_p, evidence)
            also = [s for s in ordered if s != scenario and s != "out_of_scope"]
        fv = self._col.get("fraud_victim")
        scenario, confidence, also = paid_switch(
            text, scenario, confidence, also, None if fv is None else pl[fv]
        )
        return Classification(
            scenario=scenario,
            confidence=confidence,
            ranked=ranked,
            ambiguous=ambiguous,
            also=also,
        )

    def _classify_pinyin(self, model: PinyinModel, text: str) -> Classification:
        """A full-pinyin message, scored by the syllable model (``knowledge.pinyin``)."""
        probs = model.probabilities(text)
        order = np.argsort(-probs)
        ranked = [(model.classes[i], float(probs[i])) for i in order]
        top, top_p = ranked[0]
        second_p = ranked[1][1] if len(ranked) > 1 else 0.0
        ambiguous, reason = decide(top_p, second_p, model.coverage(text))
        log.debug("fallback (pinyin): %s", reason)
        return Classification(scenario=top, confidence=top_p, ranked=ranked, ambiguous=ambiguous, also=[])

    def explain(
        self, text: str, top: int = 8, scenario: str | None = None
    ) -> list[tuple[str, str, float]]:
        """The n-grams that pushed ``text`` towards its scenario (or ``scenario``).

        Each item is (feature, scenario, contribution to that scenario's score), strongest
        first; only features that pushed towards the scenario are listed.
        """
        sid = scenario or self.classify(text).scenario
        col = self._col[sid]
        rows, vals = self._features_of(text)
        if rows.size == 0:
            return []
        contrib = vals * self._coef[rows, col]
        order = np.argsort(-contrib, kind="stable")[:top]
        return [(self._features[rows[i]], sid, float(contrib[i])) for i in order if contrib[i] > 0]

    # ------------------------------------------------------------------ helpers

    def check_against_sklearn(self, texts: Iterable[str]) -> int:
        """Number of texts where the exported scorer's argmax differs from sklearn's."""
        if self._sk is None:
            raise RuntimeError("check_against_sklearn needs a matcher built by train()")
        vec, clf = self._sk
        texts = list(texts)
        sk = clf.predict(vec.transform(texts))  # type: ignore[attr-defined]
        mine = [self.classes[int(np.argmax(self.probabilities(t)))] for t in texts]
        return sum(1 for a, b in zip(sk, mine, strict=True) if a != b)
