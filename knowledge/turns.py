"""Which follow-up act a message is: a command, a curated question, thanks, fear … or a story.

The scenario matcher (``knowledge.matcher``) answers "which situation is this"; this one
answers "what is the user doing with this message". It is a nearest-phrasing classifier:
every phrasing in ``turns.yaml`` (commands, social acts) and ``qa.yaml`` (questions) is a
TF-IDF vector of character 1–2-grams of the normalised text, and so is every scenario example
(label ``story``: a description of what happened, the negative class). A message takes the
label of its most similar phrasing (cosine), with the score and the best non-story label, so
the dialog can weigh "this is a question" against "this is a new story" in its context.

Why nearest neighbours and not a second logistic regression: the Q&A entries have 4–12
paraphrases each, too few per class for a calibrated softmax over ~80 classes, and a
maintainer who adds a paraphrase sees its effect at once (``explain`` names the phrasing that
won). Scoring is one sparse row gather and a dot product over ~2,500 phrasings (tens of µs).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import add

import numpy as np
from scipy import sparse

from knowledge.clauses import prenormalize as _prenormalize
from knowledge.schema import KnowledgeBase

STORY = "story"
TOP_CANDIDATES = 5
MIN_CLAUSE_CHARS = 3
CLAUSE_WEIGHT = 0.92
MAX_CLAUSES = 4
"""Longer messages are stories; their clauses are not matched one by one."""
CLAUSES_NOT_NEEDED = 0.9
"""A whole message this close to a phrasing needs no clause-by-clause look."""
"""A clause's match counts a little less than the whole message's (it ignores the rest)."""
_CLAUSES = re.compile(r"[\s,，。!！?？;；、~…]+")
UNKNOWN_WEIGHT = 0.5
"""Weight of an n-gram no phrasing has, relative to the rarest known one (query norm only)."""

_DROP = re.compile(r"[^\w]+|_")
_FILLER = re.compile(r"^(?:那|那么|那个|请问|我想问一下|我想问|问一下|想问下|想问一下|哦|噢|嗯|啊|额|呃|好的|好)+")


_PARTICLES = re.compile(r"[吗呢啊呀吧嘛么哈哇啦]+$")


def fold(text: str, synonyms: re.Pattern[str] | None = None, canon: Mapping[str, str] | None = None) -> str:
    """Normalised form for phrase similarity: aliases, no punctuation, leading fillers
    (那/请问/嗯 …) and final particles (吗/呢/啊 …) dropped, synonyms (咋/如何 → 怎么,
    啥 → 什么 …, turns.yaml ``synonyms``) folded, so "那法律依据呢" meets "法律依据" and
    "咋报案" meets "怎么报警". Numbers are kept: "12348是啥" and "95017是啥" differ."""
    s = _DROP.sub("", _prenormalize(text))
    if synonyms is not None and canon is not None:
        s = synonyms.sub(lambda m: canon[m.group(0)], s)
    t = _PARTICLES.sub("", _FILLER.sub("", s))
    return t or s


def _grams(s: str) -> list[str]:
    return list(s) + list(map(add, s, s[1:]))


@dataclass(frozen=True, slots=True)
class TurnMatch:
    label: str
    """Best label overall (``story`` when a scenario example is the nearest phrasing)."""
    score: float
    intent: str | None
    """Best non-story label."""
    intent_score: float
    story_score: float
    phrase: str
    """The phrasing that won ``intent`` (for explain/debugging)."""
    top: list[tuple[str, float]] = field(default_factory=list)
    """The best few non-story labels with their scores, best first (the dialog re-ranks
    them with the session's situation)."""


class _Block:
    """One block of phrasing columns as raw CSR arrays (gram row → phrasing columns)."""

    def __init__(self, m: sparse.csr_matrix) -> None:
        self.indptr = np.asarray(m.indptr, dtype=np.int64)
        self.indices = np.asarray(m.indices, dtype=np.int64)
        self.data = np.asarray(m.data, dtype=np.float64)
        self.n = m.shape[1]

    def dot(self, rows: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Σ over the query's grams of weight × column value, for every column.

        A vectorised gather + bincount: scipy's fancy row indexing cost ~100 µs per call.
        """
        starts = self.indptr[rows]
        lens = self.indptr[rows + 1] - starts
        first = np.cumsum(lens) - lens
        pos = np.repeat(starts - first, lens) + np.arange(int(lens.sum()))
        vals = self.data[pos] * np.repeat(w, lens)
        return np.bincount(self.indices[pos], weights=vals, minlength=self.n)


class TurnMatcher:
    def __init__(self, phrasings: Mapping[str, Sequence[str]],
                 synonyms: Mapping[str, Sequence[str]] | None = None) -> None:
        self._canon = {v: k for k, vs in (synonyms or {}).items() for v in vs}
        self._syn = (re.compile("|".join(sorted(map(re.escape, self._canon), key=len, reverse=True)))
                     if self._canon else None)
        labels: list[str] = []
        texts: list[str] = []
        # intent phrasings first, scenario examples (the story block) after
        ordered = sorted(phrasings.items(), key=lambda kv: kv[0].startswith(STORY))
        for label, lines in ordered:
            for line in lines:
                if self.fold(line):
                    labels.append(label)
                    texts.append(line)
        self.labels = labels
        self.texts = texts
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for i, t in enumerate(texts):
            for g in set(_grams(self.fold(t))):
                rows.append(vocab.setdefault(g, len(vocab)))
                cols.append(i)
        df = np.zeros(len(vocab))
        np.add.at(df, rows, 1)
        n = len(texts)
        idf = np.log((1 + n) / (1 + df)) + 1.0
        mat = sparse.csr_matrix((idf[rows], (rows, cols)), shape=(len(vocab), n))
        norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        m = sparse.csc_matrix(mat.multiply(1.0 / norms[None, :]))
        self._n_intent = sum(1 for lab in labels if not lab.startswith(STORY))
        intents = sparse.csr_matrix(m[:, : self._n_intent])
        # the intent block is small (~700 phrasings): a dense float32 matrix over the grams the
        # phrasings use makes scoring one gather and one dot product (~10 µs)
        used = np.flatnonzero(np.diff(intents.indptr) > 0)
        self._intent_row = np.full(len(vocab), -1, dtype=np.int64)
        self._intent_row[used] = np.arange(used.size)
        self._intent_dense = np.ascontiguousarray(intents[used].toarray(), dtype=np.float32)
        # one story block per group ("story:<scenario>"): the dialog only needs the nearest
        # example of the scenario the matcher already picked, an eighth of the work
        self._stories: dict[str, _Block] = {}
        for group in dict.fromkeys(lab for lab in labels if lab.startswith(STORY)):
            cols = [i for i, lab in enumerate(labels) if lab == group]
            self._stories[group] = _Block(sparse.csr_matrix(m[:, cols]))
        # the story block is only ever asked for its maximum; single characters (我, 了, 的 …)
        # make its posting lists ten times longer without changing which example is nearest
        self._bigram = np.array([len(g) == 2 for g in sorted(vocab, key=vocab.__getitem__)])
        # intent phrasings of one label are contiguous: per-label maxima are one reduceat
        starts = [i for i in range(self._n_intent) if i == 0 or labels[i] != labels[i - 1]]
        self._label_starts = np.array(starts, dtype=np.int64)
        self._label_names = [labels[i] for i in starts]
        self._vocab = vocab
        self._idf = idf
        self._max_idf = float(idf.max()) if idf.size else 1.0
        self.story_needed_from = 0.0
        """Below this intent score the story similarity is not computed (reported as 0): no
        reading of the message as a follow-up can win there, so it would not change the act.
        The dialog sets it from its thresholds (``dialogs.acts``)."""

    def fold(self, text: str) -> str:
        return fold(text, self._syn, self._canon)

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> TurnMatcher:
        phrasings: dict[str, list[str]] = {}
        if kb.words is not None:
            for cmd, lines in kb.words.command_phrases.items():
                phrasings[f"cmd:{cmd}"] = [*lines, *kb.words.commands.get(cmd, [])]
            for act, lines in kb.words.social.items():
                phrasings[f"social:{act}"] = list(lines)
        for q in kb.qa.values():
            phrasings[f"qa:{q.id}"] = list(q.paraphrases)
        for sid, lines in kb.examples.items():
            phrasings[f"{STORY}:{sid}"] = list(lines)
        return cls(phrasings, kb.words.synonyms if kb.words is not None else None)

    def _query(self, text: str) -> tuple[np.ndarray, np.ndarray, float] | None:
        grams = set(_grams(self.fold(text)))
        idx = [self._vocab[g] for g in grams if g in self._vocab]
        if not idx:
            return None
        rows = np.array(idx, dtype=np.int64)
        w = self._idf[rows]
        # unknown grams still count in the query's norm (at half the rarest weight): words no
        # phrasing uses, around a keyword, lower the score
        unknown = len(grams) - len(idx)
        norm = math.sqrt(float(w @ w) + unknown * (UNKNOWN_WEIGHT * self._max_idf) ** 2)
        return rows, w, norm

    def _intent_scores(self, rows: np.ndarray, w: np.ndarray, norm: float) -> np.ndarray:
        r = self._intent_row[rows]
        keep = r >= 0
        if not keep.any():
            return np.zeros(self._n_intent)
        return (w[keep].astype(np.float32) @ self._intent_dense[r[keep]]).astype(np.float64) / norm

    def match(self, text: str, scenario: str | None = None, question: bool = True) -> TurnMatch:
        """The nearest follow-up phrasing of ``text``.

        ``scenario``: the matcher's reading; the story similarity is then taken over that
        scenario's examples only. ``question``: clause-by-clause matching (for "我好害怕 会不会
        抓我") is only done for messages that ask something.
        """
        q = self._query(text)
        if q is None:
            return TurnMatch(label=STORY, score=0.0, intent=None, intent_score=0.0,
                             story_score=0.0, phrase="")
        rows, w, norm = q
        scores = self._intent_scores(rows, w, norm)
        clauses = [c for c in _CLAUSES.split(text) if len(c) >= MIN_CLAUSE_CHARS]
        if question and 1 < len(clauses) <= MAX_CLAUSES and scores.max(initial=0.0) < CLAUSES_NOT_NEEDED:
            for clause in clauses:  # "我好害怕 会不会抓我": each clause may be the question
                cq = self._query(clause)
                if cq is not None:
                    np.maximum(scores, self._intent_scores(*cq) * CLAUSE_WEIGHT, out=scores)
        story_score = 0.0
        if self._stories and scores.max(initial=0.0) >= self.story_needed_from:
            bi = self._bigram[rows]
            group = f"{STORY}:{scenario}"
            blocks = [self._stories[group]] if group in self._stories else list(self._stories.values())
            if bi.any():
                story_score = max(float(b.dot(rows[bi], w[bi]).max()) for b in blocks if b.n) / norm
        top: list[tuple[str, float]] = []
        intent, intent_score, phrase = None, 0.0, ""
        if scores.size:
            ii = int(scores.argmax())
            intent, intent_score, phrase = self.labels[ii], float(scores[ii]), self.texts[ii]
            per_label = np.maximum.reduceat(scores, self._label_starts)
            k = min(per_label.size, TOP_CANDIDATES)
            best = np.argpartition(-per_label, k - 1)[:k]
            names = self._label_names
            top = [(names[j], round(float(per_label[j]), 4)) for j in best[np.argsort(-per_label[best])]]
        label, score = (intent or STORY, intent_score) if intent_score >= story_score else (STORY, story_score)
        return TurnMatch(label=label, score=score, intent=intent, intent_score=intent_score,
                         story_score=story_score, phrase=phrase, top=top)
