"""Turn one (already redacted) user message into what the dialog step needs.

Pure and I/O-free, so the pipeline runs it *before* taking the conversation lock: the
critical section then holds only the state machine. Everything here is session-independent;
the engine decides, with the session's situation and position, which *act* the message is
(``dialogs.acts``). What this module extracts:

* an exact command word (菜单, 上一步, 法律依据 …; the lists live in ``knowledge/data/turns.yaml``),
  or a menu choice;
* the scenario reading of the matcher (``knowledge.matcher``);
* the nearest follow-up phrasing (``knowledge.turns``): a command in natural words, a curated
  question (``qa.yaml``), thanks, goodbye, a greeting, fear — with its similarity score;
* live-scam moves (``moves.yaml``): what a scammer is asking the user to do right now;
* progress flags (已报警, 已冻结 …), except where negated ("还没报警") or reported speech
  ("骗子说视频做笔录" is a scam sign, not a police report);
* emotion and question cues, amounts, redaction results.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from typing import TypedDict

from pydantic import BaseModel, Field

from dialogs.construct import fast_constructor
from knowledge.amounts import extract_amount
from knowledge.clauses import prenormalize as _prenormalize
from knowledge.matcher import Matcher
from knowledge.scanner import Scanner
from knowledge.schema import KnowledgeBase
from knowledge.turns import TurnMatcher


class Command(StrEnum):
    menu = "menu"
    back = "back"
    next = "next"
    law = "law"
    verbatim = "verbatim"
    hotlines = "hotlines"
    evidence = "evidence"
    traps = "traps"
    human = "human"
    first = "first"


_STRIP = re.compile(r"[\s\W_]+", re.UNICODE)
_EMOJI_OR_SYMBOL = {"So", "Sk", "Cs", "Co", "Cn", "Zs", "Cc", "Cf", "Mn"}
_NUMBER_WORDS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8}
_STOPPED_RE = re.compile(
    r"^(?:我)?(?:已经?|刚刚?)?(?:把.{0,6}|[^，,。\s没未不别要]{1,5}?(?:已经?|刚刚?|也|都)?)?"
    r"(?:关|删|卸|挂|退出|断开|停|关闭|卸载|删除|挂断|退)(?:了|掉了|掉|好了|完了)"
    r"(?!就?(?:马上|立刻|会|要|来抓|抓|冻结|起诉|坐牢))")  # "(他说)我挂了就马上来抓我": a threat, not a report
"""A report that the user stopped what the scammer asked ("关了", "软件删了", "屏幕已经关了")."""
_DID_RE = re.compile(
    r"^(?:我|可是|但是|但)?(?:已经?|刚刚?|早就?|都)?(?:已经?)?(?:开|给|装|下载?|输|填|转|点|扫|发|告诉|说|打开|安装)(?:了|过了|好了|完了|进去了|过去了|出去了)(?:啊|呀|怎么办|咋办|咋整|怎么弄)?$")
"""A short report that the user already did what the scammer asked ("已经开了", "给了")."""
DID_MAX_CHARS = 10
PAID_CONFIDENCE = 0.80
"""Confidence given to the fraud_victim reading of a message that says money already went out."""
CLOSING_MAX_CHARS = 14
"""Longer messages that say 谢谢 usually go on to say something that needs an answer …"""
CLOSING_PLAN_MAX_CHARS = 28
"""… unless they ask nothing and carry no number ("懂了 回去就跟他说 谢谢你啊小同志")."""
_HAS_DIGIT = re.compile(r"\d")
_THIRD_PERSON = re.compile(r"^(?:现在|刚才|刚刚|已经|昨天|今天)?(?:他|她|对方|骗子|那人|那个人|人家)(?!们?说)")
"""A clause whose subject is someone else: what it reports was not done by the user."""
_LAW_OR_LINES = re.compile(
    r"(?:有没有|有什么|有啥|是什么|是啥|给我看看?|发我看看?|看下|看看)?"
    r"(?:法律依据|法律上|法律规定|法律条文|法条|哪条法律?|什么法律?|法律|依据|热线电话|热线|电话)"
    r"(?:是什么|是啥|是哪条|怎么说的?|咋说的?|怎么规定的?|给我看看?|发我看看?|看下|可以打|能打|要打|有没有|有吗|呢|吗)?")
_BACK_REFERENCE = re.compile(r"这种情况|这个情况|这种事|这件事|这事|这种|这样|这个|那个|我这|这|那|的|有|吗|呢|啊|了")
"""What a rest like "这种情况" is made of: it points back at the current situation, no new topic."""
_STILL_ASKS_NUMBER = re.compile(r"打|电话|热线|号码")
"""… but a hotline request whose rest still asks which number to dial is the hotline list."""
"""A law or hotline request inside a longer question ("泄露我信息的人能抓吗 法律依据"): what is
left once it is cut out says which topic the law or the number is wanted for."""
TOPIC_MIN_CHARS = 2
TOPIC_WHOLE_MAX = 0.95
"""A message this close to a law or hotline phrasing as a whole is that request, nothing else."""

_THANKS_AT_END = re.compile(r"(?:谢谢|多谢|感谢|谢了|谢啦)(?:你|您|啦|了|啊|呀|哈)*$")
_QMARK = re.compile(r"[？?](?=[\u4e00-\u9fff\s，,]|$)")
"""A question mark ("我现在打110?他说不准挂") asks; the plan cues must not read it as a sign-off."""
_BYE_AT_END = re.compile(r"(?:拜拜|再见|拜了|回头聊|下次聊)(?:啦|了|啊|呀|哈)*$")
"""Goodbye said last ("有不懂的再来问你 拜拜"): whatever came before, the user is leaving."""
_THANKS_AT_START = re.compile(r"^(?:好的?|嗯+|ok|行|哦)?(?:谢谢|多谢|感谢|谢啦|谢了)")
"""Thanks said first ("谢谢 你比那些客服靠谱多了"): with no question after it, a close."""
_ASKS = re.compile(r"[吗嘛？?]|(?<![这那])么|怎么|咋|啥|什么|哪|谁|多少|多久|多长时间|能不能|会不会|是不是|要不要|该不该|可不可以|有没有|还是")
"""A real question after thanks (the question cues also count 靠谱/有用, which praise can use)."""
_NEW_TOPIC = re.compile(r"^(?:算了|好吧|哦|嗯)?[\s,，。!！]*(?:(?:对了|另外|顺便问一?下|还有(?:个|一个|件|一件)?(?:事|事情|问题)?)"
                        r"[\s,，。：:!！]+)+")
"""A topic-change opener ("算了 还有个事 …", "对了 …"): the phrasing match reads what follows, so
"还有个事" is not the command "还有呢"."""
_THEN_ASKS = re.compile(r"^(?:那|那么)?(?:然后呢|然后|接下来呢|接下来|下一步呢|还有呢)[\s,，。!！?？]+(?=\S{3})")
"""A "go on" opener before a question ("然后呢 号怎么拿回来"): the question is what is asked."""
_DETAIL = re.compile(r"\d|[一二两三四五六七八九十百千万几]+(?:笔|次|回|天|号|点|块|元|万|个月|月|年|多)"
                     r"|昨天|前天|今天|早上|晚上|半夜|凌晨|上午|下午|中午|礼拜|星期|周[一二三四五六日末]")
"""A time, a count or an amount ("前天半夜两点多", "一共4笔"): a fact worth writing down."""
_DONE_WORD = re.compile(r"(?:都|已经|我)?(?:弄|搞|办|做|整)?(?:好|完|定|妥)了?(?:啊|呀|哈)?|搞定了?|好的?|嗯+")
"""A bare "弄好了 / 搞定了" beside a report adds nothing to ask about: not part of the rest."""
_GENERIC_ASKS = frozenset({"cmd:first", "cmd:next", "social:emotion"})
"""What "我该干嘛 / 怎么办" after a go-on opener matches: the opener's own reading then stands."""
_GOES_ON = re.compile(r"^(?:又|还|并且|而且|然后|再)?(?:说|讲|要|让|叫|要求|逼|催|让我|叫我|要我)")
"""A clause that carries on someone else's words after a quote ("…说我涉嫌洗钱 要视频做笔录")."""
_BORROWED = re.compile(r"(?:找|向|问|管|跟)我借")
"""Someone (a friend's account, as it turns out) asked the user for money."""
_CLAUSE_RE = re.compile(r"[,，。！!？?；;、\n]+|\s+")


class Understood(BaseModel):
    """The parts of a message a dialog step can act on."""

    empty: bool = False
    command: Command | None = None
    choice: int | None = None
    scenario: str | None = None
    confidence: float = 0.0
    candidates: list[str] = Field(default_factory=list)
    also: list[str] = Field(default_factory=list)
    amount: int | None = None
    number: int | None = Field(default=None, description="The whole message is this number (≥ 10)")
    flags: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    secrets: list[str] = Field(default_factory=list)
    personal: list[str] = Field(default_factory=list)
    truncated: bool = False
    intent: str | None = Field(default=None, description="Nearest follow-up phrasing's label: cmd:*, qa:*, social:*")
    intent_score: float = 0.0
    alternatives: list[tuple[str, float]] = Field(default_factory=list)
    """The best few follow-up labels and scores, for re-ranking in the session's context."""
    story_score: float = Field(default=0.0, description="Similarity to the nearest scenario example")
    moves: list[str] = Field(default_factory=list, description="Live-scam moves named, most specific first")
    emotion: bool = False
    self_blame: bool = False
    """The user blames themself ("我是不是很蠢"): comfort comes before any answer."""
    asked: str | None = None
    """With progress in the same message ("报警了 钱多久能回来"): the nearest follow-up phrasing
    of the rest of it, so the report does not drown the question."""
    asked_score: float = 0.0
    below_line: bool = False
    """The amount is an upper bound ("不到三千"): the user means less than it."""
    question: bool = False
    closing: bool = False
    police_visit: bool = False
    """A sign-off that says the user is going to the police now: the close says what to bring and keep."""
    """A short thank-you or sign-off ("谢谢 我这就去", "懂了 不租了"), whatever else it says."""
    stopped: bool = False
    """The message starts by saying the user stopped something (关了, 删了, 挂了)."""
    did: bool = False
    """The whole (short) message says the user already did it ("已经开了", "给了")."""
    detail: bool = False
    """The message states a fact the police will want (a time, a count, an amount, a date):
    "是前天半夜两点多", "一共4笔 每笔499"."""
    chars: int = 0
    """Length of the message after normalisation (short messages are follow-ups, not stories)."""

    @property
    def stated_amount(self) -> int | None:
        """The amount the user gave: one named as money, else a bare number as the whole message
        ("3万", or "30000" in answer to "被骗了多少")."""
        return self.amount if self.amount is not None else self.number


class _Base(TypedDict):
    secrets: list[str]
    personal: list[str]
    truncated: bool


understood: Callable[..., Understood] = fast_constructor(Understood)
"""``Understood.model_construct`` without its per-field loop (``dialogs.construct``): every
message builds one, with values already of the declared types."""


def squash(text: str) -> str:
    """NFKC, lower-case, no spaces or punctuation: the form commands are compared in."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", text)).lower()


def is_meaningless(text: str) -> bool:
    """Empty, whitespace, emoji, symbols or control characters only."""
    return all(unicodedata.category(ch) in _EMOJI_OR_SYMBOL or not ch.isprintable() or
               unicodedata.category(ch).startswith("P") for ch in text)


def command_index(kb: KnowledgeBase) -> dict[str, Command]:
    """Whole-message command words (turns.yaml ``commands``) → command."""
    if kb.words is None:
        return {}
    return {squash(w): Command(c) for c, words in kb.words.commands.items() for w in words}


def parse_command(text: str, index: dict[str, Command]) -> Command | None:
    return index.get(squash(text))


def parse_choice(text: str) -> int | None:
    """A menu choice: '2', '２', '2.', '第二个', '选3'."""
    s = squash(text)
    s = re.sub(r"^(?:第|选|选择|我选|回复)", "", s)
    s = re.sub(r"(?:个|项|号|条)$", "", s)
    if s.isdigit() and 1 <= int(s) <= 9:
        return int(s)
    return _NUMBER_WORDS.get(s)


def _any(patterns: list[re.Pattern[str]], text: str) -> bool:
    return any(p.search(text) for p in patterns)


class Understander:
    """Everything message-level that does not depend on the session."""

    def __init__(self, kb: KnowledgeBase, matcher: Matcher, scanner: Scanner | None = None,
                 turns: TurnMatcher | None = None) -> None:
        self.kb = kb
        self.matcher = matcher
        self.scanner = scanner
        self.turns = turns or TurnMatcher.from_kb(kb)
        from dialogs.acts import INTENT_MIN, QUESTION_BONUS

        self.turns.story_needed_from = INTENT_MIN - QUESTION_BONUS
        self._commands = command_index(kb)
        self._flags = [(f.id, [re.compile(p) for p in f.phrases]) for f in kb.flags.values()]
        self._moves = [(m.id, [re.compile(p) for p in m.triggers]) for m in kb.moves.values()]
        # one alternation each, to skip the per-item loops for the many messages that name none
        self._any_flag = re.compile("|".join(f"(?:{p})" for f in kb.flags.values() for p in f.phrases) or "(?!)")
        self._any_move = re.compile("|".join(f"(?:{p})" for m in kb.moves.values() for p in m.triggers) or "(?!)")
        w = kb.words
        self._emotion = [re.compile(p) for p in (w.emotion_cues if w else [])]
        self._question = [re.compile(p) for p in (w.question_cues if w else [])]
        self._self_blame = [re.compile(p) for p in (w.self_blame_cues if w else [])]
        self._below = [re.compile(p) for p in (w.below_line_cues if w else [])]
        self._quote = [re.compile(p) for p in (w.quote_cues if w else [])]
        self._closing = [re.compile(p) for p in (w.closing_cues if w else [])]
        self._police_visit = [re.compile(p) for p in (w.police_visit_cues if w else [])]
        self._paid = [re.compile(p) for p in (w.paid_cues if w else [])]
        self._loss = [re.compile(p) for p in (w.loss_cues if w else [])]
        self._lost_account = [re.compile(p) for p in (w.lost_account_cues if w else [])]
        self._negation = re.compile("(?:" + "|".join(w.negation_cues) + ")") if w and w.negation_cues else None

    def _patterns(self, text: str, scenario: str) -> list[str]:
        """Scam patterns named in the text, only for scenarios that talk about patterns."""
        if self.scanner is None or not self.kb.scenarios[scenario].patterns:
            return []
        return self.scanner.match_patterns(text)

    def _own_words(self, text: str) -> str:
        """The text with reported speech removed: in each clause, whatever follows
        "他说 / 让我 / 客服要 …" is what someone else said or asked, not what the user did."""
        kept: list[str] = []
        quoting = False
        for clause in _CLAUSE_RE.split(text):
            if quoting and _GOES_ON.match(clause):  # "有人说是公安 说我涉嫌洗钱 要视频做笔录"
                continue
            cut = len(clause)
            for p in self._quote:
                m = p.search(clause)
                if m is not None:
                    cut = min(cut, m.start())
            quoting = quoting or cut < len(clause)
            kept.append(clause[:cut])
        return "，".join(k for k in kept if k)

    def progress_flags(self, text: str) -> list[str]:
        """Flags the user reports as done, in their own words and not negated or asked."""
        if self._any_flag.search(text) is None:
            return []
        own = self._own_words(text)
        found: list[str] = []
        for clause in _CLAUSE_RE.split(own):
            if not clause:
                continue
            asked = re.search(r"[吗么]$|要不要|该不该|能不能|是不是|怎么", clause) is not None
            asked = asked or _THIRD_PERSON.match(clause) is not None  # "她把我拉黑了": not the user's doing
            for fid, pats in self._flags:
                if fid in found or asked:
                    continue
                for p in pats:
                    m = p.search(clause)
                    if m is None:
                        continue
                    before = clause[max(0, m.start() - 4):m.start()]
                    if self._negation is not None and self._negation.search(before):
                        continue
                    found.append(fid)
                    break
        return found

    def _said(self, text: str, cues: list[re.Pattern[str]]) -> bool:
        """The user says it in their own words (reported speech removed), not negated:
        money already went out (``paid_cues``), the account is already lost (``lost_account_cues``)."""
        if not cues:
            return False
        for clause in _CLAUSE_RE.split(self._own_words(text)):
            if _THIRD_PERSON.match(clause):  # "他又转了我两百": money coming in, someone else's doing
                continue
            for p in cues:
                m = p.search(clause)
                if m is None:
                    continue
                before = clause[max(0, m.start() - 4):m.start()]
                if self._negation is None or not self._negation.search(before):
                    return True
        return False

    def live_moves(self, text: str) -> list[str]:
        norm = _prenormalize(text)
        if self._any_move.search(norm) is None:
            return []
        return [mid for mid, pats in self._moves if _any(pats, norm)]

    def understand(
        self, text: str, *, secrets: set[str] | frozenset[str] = frozenset(),
        personal: set[str] | frozenset[str] = frozenset(), truncated: bool = False,
    ) -> Understood:
        """Classify one redacted message; ``secrets``/``personal`` come from redaction."""
        base: _Base = {"secrets": sorted(secrets), "personal": sorted(personal), "truncated": truncated}
        if is_meaningless(text):
            return understood(empty=not (secrets or personal), **base)
        command = parse_command(text, self._commands)
        if command is not None:
            return understood(command=command, **base)
        choice = parse_choice(text)
        if choice is not None:
            return understood(choice=choice, **base)
        digits = squash(text)
        number = int(digits) if digits.isdigit() and len(digits) <= 9 else None
        result = self.matcher.classify(text)
        candidates = [sid for sid, _ in result.ranked[:3]]
        question = _any(self._question, text)
        topic = _NEW_TOPIC.sub("", text, count=1) or text
        after_then = _THEN_ASKS.sub("", topic, count=1) if question else topic
        turn = self.turns.match(after_then or topic, result.scenario, question or _any(self._emotion, text))
        if after_then != topic and turn.intent in _GENERIC_ASKS:  # "接下来呢 我该干嘛" is still "go on"
            turn = self.turns.match(topic, result.scenario, True)
        # "谢谢，那钱还能追回吗" thanks and then asks: the question is the act
        closing = _QMARK.search(text) is None and (len(digits) <= CLOSING_MAX_CHARS or (
            len(digits) <= CLOSING_PLAN_MAX_CHARS and _ASKS.search(digits) is None
            and not _HAS_DIGIT.search(digits))) and _any(self._closing, digits) and not (
            question and re.search(r"谢|thank|thx|3q", digits) and not re.search(r"谢谢?[你您]?[啊呀哈]?$", digits))
        # "领导打电话说没这事 好险 谢谢": a longer story that ends in thanks and asks nothing is a close
        closing = closing or (not question and _THANKS_AT_END.search(digits) is not None) or (
            _THANKS_AT_START.search(digits) is not None and _ASKS.search(digits) is None) or (
            _BYE_AT_END.search(digits) is not None)
        if closing:
            turn = replace(turn, intent="social:thanks" if re.search(r"谢|thank|thx|3q", digits) else "social:bye")
        # the reported-speech cut costs more than the cues: only for text that has a cue at all
        self_blame = _any(self._self_blame, text) and _any(self._self_blame, self._own_words(text))
        flags = self.progress_flags(text)
        asked, asked_score = None, 0.0
        if flags:
            clauses = _CLAUSE_RE.split(text)
            rest = "，".join(c for c in clauses
                            if c and self._any_flag.search(c) is None and not _DONE_WORD.fullmatch(c))
            if rest and len(rest) < len(text):
                # "冻好了 然后呢 我朋友会不会找我赔钱": the question after the go-on opener is asked
                rest_asked = _THEN_ASKS.sub("", rest, count=1)
                rest_turn = self.turns.match(rest_asked or rest, result.scenario, True)
                if rest_asked != rest and rest_turn.intent in _GENERIC_ASKS:
                    rest_turn = self.turns.match(rest, result.scenario, True)
                elif rest_asked != rest and turn.intent in _GENERIC_ASKS and not closing:
                    # ... and the whole message is no "go on" either: the report and that question
                    turn = replace(turn, intent=rest_turn.intent, intent_score=rest_turn.intent_score)
                asked, asked_score = rest_turn.intent, round(rest_turn.intent_score, 4)
            if (turn.intent or "").startswith("qa:") and turn.intent_score > asked_score and any(
                    self._any_flag.search(c) and _any(self._question, c) for c in clauses if c):
                # "冻结了俺自己还能用不": the report's own clause asks; the whole message is the question
                asked, asked_score = turn.intent, round(turn.intent_score, 4)
        if not asked and (turn.intent or "") in ("cmd:law", "cmd:hotlines") and turn.intent_score < TOPIC_WHOLE_MAX:
            rest = _LAW_OR_LINES.sub("，", text)
            if len(squash(_BACK_REFERENCE.sub("", rest))) >= TOPIC_MIN_CHARS and rest != text and not (
                    turn.intent == "cmd:hotlines" and _STILL_ASKS_NUMBER.search(rest)):
                rest_turn = self.turns.match(rest, result.scenario, True)
                nearest = next(((k, v) for k, v in rest_turn.top if k.startswith("qa:")), None)
                if nearest is not None:
                    asked, asked_score = nearest[0], round(nearest[1], 4)
        scenario = None if result.ambiguous else result.scenario
        confidence = result.confidence
        amount = extract_amount(text)
        moves = self.live_moves(text)
        live = result.scenario == "scam_check"
        if amount is not None and (live or (scenario is None and "fraud_victim" in candidates)) and (
                self._said(text, self._paid) or (self._any_move.search(_prenormalize(text)) is not None
                                                 and self._said(text, self._loss))):
            # "让我转到安全账户 我转了4万5": the scam already took money, whatever it looked like
            scenario, confidence = "fraud_victim", max(confidence, PAID_CONFIDENCE)
        elif (amount is not None and scenario in (None, "account_stolen", "scam_check") and _BORROWED.search(text)
              and self._said(text, self._paid)):
            # "同学找我借钱 我转了2k 结果他号被盗了": the user paid whoever had the friend's account
            scenario, confidence = "fraud_victim", max(confidence, PAID_CONFIDENCE)
        elif (live or (scenario is None and "account_stolen" in candidates) or (
                scenario == "account_rental" and ("验证码" in text or "code_asked" in moves))) and self._said(text, self._lost_account):
            # "验证码发给他了 现在微信退出登录了": the account is already taken (also when a "friend"
            # asked for the code, which reads like helping someone verify an account)
            scenario, confidence = "account_stolen", max(confidence, PAID_CONFIDENCE)
        # every field is built right here with its declared type, and this is the hot path
        # (validation cost more than the classification): see ``understood``
        return understood(
            scenario=scenario,
            confidence=confidence,
            candidates=candidates,
            also=[s for s in result.also if s != result.scenario],
            amount=amount,
            number=number,
            flags=flags,
            asked=asked,
            asked_score=asked_score,
            patterns=self._patterns(text, result.scenario),
            intent=turn.intent,
            intent_score=round(turn.intent_score, 4),
            alternatives=turn.top,
            story_score=round(turn.story_score, 4),
            moves=moves,
            emotion=self_blame or _any(self._emotion, text),
            self_blame=self_blame,
            below_line=amount is not None and _any(self._below, text),
            question=question,
            chars=len(digits),
            detail=not question and _DETAIL.search(text) is not None,
            closing=closing,
            police_visit=closing and _any(self._police_visit, digits),
            stopped=_STOPPED_RE.search(digits) is not None and _THIRD_PERSON.match(digits) is None,
            did=len(digits) <= DID_MAX_CHARS and _DID_RE.search(digits) is not None,
            **base,
        )
