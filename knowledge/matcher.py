"""Map a user's free text to one of the fixed scenarios, fast and explainably.

How it works
------------
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

import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from operator import add
from typing import cast

import numpy as np
from pydantic import BaseModel

from knowledge.normalize import fold as fold_obfuscation
from knowledge.pinyin import PinyinModel, is_pinyin
from knowledge.schema import SCENARIO_IDS, KnowledgeBase

THRESHOLD = 0.40
"""Rasa-style fallback: a best guess below this probability is ``ambiguous``.

Eight classes share the probability mass, so a uniform guess is 0.125. On the held-out and
dev phrasings (459 messages) the median confidence is ~0.97 and 90 % are above ~0.78; only
~1 % of correct answers fall under 0.40 (or inside the gap below), while 2 of the 3 wrong
ones do. So 0.40 sends real toss-ups to a clarifying question without nagging users whose
message was clear. Gibberish is caught by ``MIN_COVERAGE``, not by this threshold: a linear
model gives unknown text the class priors, which can look confident."""

AMBIGUITY_GAP = 0.10
"""Rasa's ``ambiguity_threshold``: if the two best scenarios are closer than this, ask.

0.1 is Rasa's default and the value anchors.md §6 recommends; two scenarios within ten
points of each other are a real toss-up (e.g. "卡被冻结了，有人说能帮我解冻"), and a
one-line question ("是钱被转走了，还是账户被冻结了？") costs less than a wrong flow."""

URGENCY: tuple[str, ...] = (
    "scam_check",
    "fraud_victim",
    "wallet_loss",
    "account_stolen",
    "account_frozen",
    "info_leak",
    "account_rental",
    "out_of_scope",
)
"""Most urgent first: stopping a payment that has not happened yet beats reporting one
that has; money leaving the wallet beats an account that can be frozen later."""

CLAUSE_MIN_CONFIDENCE = 0.60
"""A clause names a second situation only when the classifier is this sure about it."""

CLAUSE_MIN_CHARS = 4
"""Clauses shorter than this (after normalisation) carry too little text to classify."""

ALSO_MIN_PROBABILITY = 0.25
"""A scenario this probable for the whole message is offered in ``also`` even without a
clause of its own (e.g. "号被盗了零钱也没了" with no punctuation)."""

PROMOTE_MIN_PROBABILITY = 0.25
"""A more urgent situation found in a clause leads when that clause was added explicitly
("而且…", "…也…", "对方又…") or when the whole message gives it at least this probability;
otherwise it is only offered in ``also`` (a back-story such as "骗子用我的号借钱，我朋友被骗了"
is still about the user's stolen account)."""

MIN_COVERAGE = 0.2
"""Below this share of known character bigrams the message is mostly words the examples
never used (gibberish, emoji, another language): ``ambiguous`` whatever the softmax says,
because a linear model's confidence there only reflects the class priors."""

PAID_RE = re.compile(
    r"(?<![给向])(?:我|已经|已|都|又|先后|陆续|一共|总共|前后)?"
    r"(?:转了|转过去|转过|充了|充进去|付了|付过|交了|打过去|打进去|汇了|汇过去|被扣了|扣了我|被骗走|骗走了|骗了我"
    r"|投了|投进去|垫了|垫付了|垫进去|被划走|划走了|钱就没了|钱都没了|收了我|我交了|我转了|我付了)"
    r"(?!我|一分|几毛|0\.01)"
)
"""The user says money has already left ("充了十几万进去", "转了之后人就消失了"). scenarios.md:
in scam_check, "if the user already paid → fraud_victim" — whose first reply also says to stop
paying — so a scam_check reading with this cue hands over to fraud_victim. "给我转了…" and
"转了我一分钱" (money *to* the user, a classic test transfer) do not count."""

THIRD_PARTY_STOLEN_RE = re.compile(
    r"(?:他|她|对方|朋友|同学|同事|亲戚|领导|老板|熟人|[姨舅姑叔伯姐哥弟妹爸妈]|闺蜜)(?:的)?(?:微信|号|帐号|账号|qq)?"
    r"(?:号)?(?:被盗|被人盗|被黑|被人登|被人控制)"
)
"""Someone *else's* account was stolen ("朋友的号被盗了"): when the user then paid, the user is
a fraud victim, not the owner of a stolen account (issue 10 §5, who did what to whom)."""

PAID_SWITCH_FROM = frozenset({"scam_check", "account_frozen"})
"""Readings the already-paid cue hands over to fraud_victim (account_stolen needs the third-party cue)."""

PAID_SWITCH_MIN_PROBABILITY = 0.01
"""fraud_victim must be at least a plausible reading for the paid cue to switch to it."""

NGRAM_RANGE = (1, 2)
"""Character unigrams and bigrams (best in cross-validation on the examples). The fast
scorer (``Matcher._lookup``) looks up exactly these two sizes."""
C = 50.0
"""LogisticRegression inverse regularisation, picked by cross-validation on the examples."""

# --------------------------------------------------------------------------- normalisation

_LATIN_ALIASES: tuple[tuple[str, str], ...] = (
    (r"wx信|微x", "微信"),
    (r"(?<![a-z])(?:wechat|weixin|wei\s*xin|w\s*x|v\s*x)(?![a-z])", "微信"),
    (r"(?<![a-z])v(?:信|心)", "微信"),
    (r"(?<![a-z0-9])v(?![a-z0-9])", "微信"),
    (r"(?<![a-z])zfb(?![a-z])", "支付宝"),
    (r"(?<![a-z])yhk(?![a-z])", "银行卡"),
    (r"(?<![a-z])sfz(?![a-z])", "身份证"),
    (r"(?<![a-z])yzm(?![a-z])", "验证码"),
    (r"(?<![a-z])q(?=号)", "qq"),
)
"""Spellings with Latin letters: WeChat's nicknames and pinyin initials."""

_CJK_ALIASES: dict[str, str] = {
    "威信": "微信",
    "薇信": "微信",
    "维信": "微信",
    "徽信": "微信",
    "微心": "微信",
    "扣扣": "qq",
    "企鹅号": "qq",
    "帐号": "账号",
    "帐户": "账户",
    "转帐": "转账",
    "肿么办": "怎么办",
    "怎么半": "怎么办",
    "咋办": "怎么办",
    "咋整": "怎么办",
    "咋弄": "怎么办",
    "怎么弄": "怎么办",
    "冻洁": "冻结",
    "骗紫": "骗子",
}
"""Homophones, the older 帐 spelling and common typos, folded to one form."""

_LATIN_RE = re.compile(r"[a-z]")
_LATIN_ALIAS_RE = re.compile("|".join(f"({rx})" for rx, _ in _LATIN_ALIASES))
_LATIN_ALIAS_OUT = tuple(out for _, out in _LATIN_ALIASES)
_CJK_ALIAS_RE = re.compile("|".join(sorted(_CJK_ALIASES, key=len, reverse=True)))
_DROP_RE = re.compile(r"[^\w.%]+|_|(?<!\d)\.|\.(?!\d)")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_CN_AMOUNT_RE = re.compile(r"[零一二两三四五六七八九十百千万几]+(?=[块元])")


def _latin_alias(m: re.Match[str]) -> str:
    return _LATIN_ALIAS_OUT[(m.lastindex or 1) - 1]


def _cjk_alias(m: re.Match[str]) -> str:
    return _CJK_ALIASES[m.group(0)]


@lru_cache(maxsize=4096)
def _prenormalize(text: str) -> str:
    """Obfuscation folded (``knowledge.normalize.fold``: NFKC, lower case, homoglyphs,
    traditional → simplified, pinyin of known terms, 薇信/V❤ …), then the matcher's own
    aliases and typos; punctuation still in place."""
    s = fold_obfuscation(text)
    if _LATIN_RE.search(s) is not None:
        s = _LATIN_ALIAS_RE.sub(_latin_alias, s)
    return _CJK_ALIAS_RE.sub(_cjk_alias, s)


def normalize(text: str) -> str:
    """Canonical form shared by the matcher and the group scanner (numbers kept).

    Full-width → half-width, lower case, wx/vx/V信/威信 → 微信 (and the other
    ``_LATIN_ALIASES`` / ``_CJK_ALIASES`` spellings), then every space and punctuation
    mark removed, except a decimal point between digits and ``%``.
    """
    return _DROP_RE.sub("", _prenormalize(text))


def fold_numbers(text: str) -> str:
    """2000元 / 3,000 / 1.5万 / 两千块 → 0元 / 0 / 0万 / 0块 (classifier features only)."""
    if _HAS_NUMBER_RE.search(text) is None:
        return text
    s = _NUMBER_RE.sub("0", text)
    s = _CN_AMOUNT_RE.sub("0", s)
    return s.replace("%", "")


_HAS_NUMBER_RE = re.compile(r"[\d%块元]")


def _grams(s: str, lo: int = NGRAM_RANGE[0], hi: int = NGRAM_RANGE[1]) -> list[str]:
    """Character n-grams of a folded string."""
    n_s = len(s)
    out: list[str] = []
    for n in range(lo, hi + 1):
        out.extend(s[i : i + n] for i in range(n_s - n + 1))
    return out


def analyzer(text: str) -> list[str]:
    """The feature extractor used for training and inference alike."""
    return _grams(_pieces(text)[0])


_SPLIT_BEFORE = r"而且|并且|另外|此外|以及|顺便问|再问一下|现在又"
_ADDITIVE = rf"{_SPLIT_BEFORE}|还有|同时|加上|然后"
_CLAUSE_MARK_RE = re.compile(
    rf"[,，。！!？?；;：:、\n\r|]+|(?<!\d)\.|\.(?!\d)|\s{{2,}}|(?=(?:{_SPLIT_BEFORE}))"
)
"""Clause boundaries: punctuation, a run of spaces, or just before an unambiguous additive
connector (not 还有/同时, which also mean "still has"/"at the same time" inside a clause)."""
_PLAIN_RE = re.compile(r"[^\W_]*")
_CONNECTOR_RE = re.compile(_SPLIT_BEFORE)
_DROP_KEEP_MARK_RE = re.compile(r"[^\w.%|]+|_|(?<!\d)\.|\.(?!\d)")
_ADDITIVE_RE = re.compile(rf"(?:{_ADDITIVE})|.{{0,4}}[也又]")
"""A clause that adds something ("而且…", "零钱也…", "对方又…"): the user is listing a
second problem, not telling the back-story of the first."""


def _pieces(text: str) -> tuple[str, list[tuple[int, int, bool]]]:
    """(folded whole message, [(start, end, introduced as an addition)] of its clauses).

    The whole message is what the model is trained on: ``normalize`` with numbers folded.
    Clause spans index into it; they are only returned when there are at least two.
    """
    pre = fold_numbers(_prenormalize(text))
    if _PLAIN_RE.fullmatch(pre) is not None and _CONNECTOR_RE.search(pre) is None:
        return pre, []  # letters and digits only, one clause: nothing to clean or split
    marked = _DROP_KEEP_MARK_RE.sub("", _CLAUSE_MARK_RE.sub("|", pre))
    if "|" not in marked:
        return marked, []
    parts = [p for p in marked.split("|") if p]
    spans: list[tuple[int, int, bool]] = []
    pos = 0
    for n, part in enumerate(parts):
        size = len(part)
        if size >= CLAUSE_MIN_CHARS:
            spans.append((pos, pos + size, n > 0 and _ADDITIVE_RE.match(part) is not None))
        pos += size
    return "".join(parts), (spans if len(spans) > 1 else [])


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
        self._rank = {sid: i for i, sid in enumerate(URGENCY)}
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
        present, _ = self._known(_pieces(text)[0])
        if not present:
            return np.empty(0, dtype=np.intp), np.empty(0)
        r = np.fromiter(present, dtype=np.intp, count=len(present))
        vals = self._idf[r]
        vals = vals / math.sqrt(float(vals @ vals))
        return r, vals

    def probabilities(self, text: str) -> np.ndarray:
        """Softmax of the scores (sklearn's ``predict_proba`` for multinomial LR)."""
        return np.array(self._softmax_of(self._known(_pieces(text)[0])[0]))

    # ------------------------------------------------------------------ public API

    def classify(self, text: str) -> Classification:
        if self._pinyin is not None and is_pinyin(text):
            return self._classify_pinyin(self._pinyin, text)
        whole, spans = _pieces(text)
        uni, bi = self._lookup(whole)
        present, coverage = self._present(uni, bi)
        pl = self._softmax_of(present)
        classes = self.classes
        order = sorted(range(len(pl)), key=pl.__getitem__, reverse=True)
        ranked = [(classes[i], pl[i]) for i in order]
        top, top_p = ranked[0]
        second_p = ranked[1][1] if len(ranked) > 1 else 0.0
        ambiguous = (
            top_p < THRESHOLD or (top_p - second_p) < AMBIGUITY_GAP or coverage < MIN_COVERAGE
        )

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
            ordered = sorted({top, *found}, key=self._urgency)
            lead = ordered[0]
            if lead != top:
                evidence, explicit = found[lead]
                lead_p = pl[self._col[lead]]
                if evidence >= CLAUSE_MIN_CONFIDENCE and (
                    explicit or listed or lead_p >= PROMOTE_MIN_PROBABILITY
                ):
                    scenario, confidence = lead, max(lead_p, evidence)
            also = [s for s in ordered if s != scenario and s != "out_of_scope"]
        prev = scenario
        if ("fraud_victim" in self._col and pl[self._col["fraud_victim"]] >= PAID_SWITCH_MIN_PROBABILITY
                and (scenario in PAID_SWITCH_FROM
                     or (scenario == "account_stolen" and THIRD_PARTY_STOLEN_RE.search(text)))
                and PAID_RE.search(text)):
            scenario = "fraud_victim"
            confidence = max(confidence, pl[self._col["fraud_victim"]])
            also = [prev, *[x for x in also if x not in (prev, "fraud_victim")]]
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
        ambiguous = (top_p < THRESHOLD or (top_p - second_p) < AMBIGUITY_GAP
                     or model.coverage(text) < MIN_COVERAGE)
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

    def _urgency(self, sid: str) -> int:
        return self._rank.get(sid, len(self._rank))

    def check_against_sklearn(self, texts: Iterable[str]) -> int:
        """Number of texts where the exported scorer's argmax differs from sklearn's."""
        if self._sk is None:
            raise RuntimeError("check_against_sklearn needs a matcher built by train()")
        vec, clf = self._sk
        texts = list(texts)
        sk = clf.predict(vec.transform(texts))  # type: ignore[attr-defined]
        mine = [self.classes[int(np.argmax(self.probabilities(t)))] for t in texts]
        return sum(1 for a, b in zip(sk, mine, strict=True) if a != b)
