"""Full-pinyin messages ("wo de qian bei pian le zen me ban"): a syllable model beside the
character model.

Some users type toneless pinyin when they have no Chinese input method at hand. The
character n-gram matcher sees only Latin letters there and falls back. Converting pinyin back
to characters needs a dictionary and guesses; going the other way is exact: the scenario
examples are transliterated with pypinyin (installed with the normaliser) and a small TF-IDF +
logistic regression is trained on syllables and syllable pairs (joined too, so "weixin" meets
"wei xin"). Only messages that are mostly Latin letters in at least ``MIN_SYLLABLES`` words go
through it; it costs one sklearn call (~0.3 ms) for those rare messages and nothing for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from pypinyin import lazy_pinyin

MIN_SYLLABLES = 3
LATIN_SHARE = 0.8
_WORD_RE = re.compile(r"[a-z]+")
_LETTER_RE = re.compile(r"[^\W\d_]")


def is_pinyin(text: str) -> bool:
    """Mostly Latin letters, in at least ``MIN_SYLLABLES`` words."""
    low = text.lower()
    letters = _LETTER_RE.findall(low)
    if not letters:
        return False
    latin = sum(1 for ch in letters if "a" <= ch <= "z")
    return latin / len(letters) >= LATIN_SHARE and len(_WORD_RE.findall(low)) >= MIN_SYLLABLES


def syllables(text: str) -> list[str]:
    """Toneless syllables: pypinyin for Chinese characters, Latin words as they are."""
    out: list[str] = []
    for piece in lazy_pinyin(text.lower(), errors="default"):
        out.extend(_WORD_RE.findall(piece))
    return out


def features(text: str) -> list[str]:
    syl = syllables(text)
    pairs = [f"{a} {b}" for a, b in zip(syl, syl[1:], strict=False)]
    joined = [a + b for a, b in zip(syl, syl[1:], strict=False)]
    return syl + pairs + joined


class PinyinModel:
    """Multinomial naive Bayes over syllable features (scikit-learn), scored by hand.

    Naive Bayes, not logistic regression: it fits in milliseconds (LR took ~1 s at start-up
    for a path few messages take) and, scored as a dict lookup plus a sum, costs ~20 µs.
    """

    def __init__(self, examples: Mapping[str, Sequence[str]], alpha: float = 0.3) -> None:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.naive_bayes import MultinomialNB

        texts: list[str] = []
        labels: list[str] = []
        for sid, lines in examples.items():
            texts.extend(lines)
            labels.extend([sid] * len(lines))
        vec = CountVectorizer(analyzer=features, binary=True)
        x = vec.fit_transform(texts)
        clf = MultinomialNB(alpha=alpha)
        clf.fit(x, labels)
        self.classes = [str(k) for k in clf.classes_]
        self._vocab: dict[str, int] = {str(k): int(v) for k, v in vec.vocabulary_.items()}
        self._logp = np.ascontiguousarray(clf.feature_log_prob_.T)  # (n_features, n_classes)
        self._prior = np.asarray(clf.class_log_prior_)

    def coverage(self, text: str) -> float:
        feats = [f for f in features(text) if " " not in f]
        return sum(1 for f in feats if f in self._vocab) / len(feats) if feats else 0.0

    def probabilities(self, text: str) -> np.ndarray:
        rows = sorted({self._vocab[f] for f in features(text) if f in self._vocab})
        z = self._prior + (self._logp[rows].sum(0) if rows else 0.0)
        e = np.exp(z - z.max())
        return np.asarray(e / e.sum())
