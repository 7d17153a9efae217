"""Turn one (already redacted) user message into what the dialog step needs.

Pure and I/O-free, so the pipeline runs it *before* taking the conversation lock: the
critical section then holds only the state machine. Global commands (菜单, 上一步, 法律依据
...) are recognised here; free text goes to the knowledge matcher.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum

from pydantic import BaseModel, Field

from knowledge.amounts import extract_amount
from knowledge.matcher import Matcher
from knowledge.scanner import Scanner
from knowledge.schema import KnowledgeBase


class Command(str, Enum):
    menu = "menu"
    back = "back"
    next = "next"
    law = "law"
    hotlines = "hotlines"
    evidence = "evidence"
    traps = "traps"
    human = "human"


# Whole-message forms only: "我想报警，打什么电话" is free text, "电话" alone is a command.
COMMAND_WORDS: dict[Command, tuple[str, ...]] = {
    Command.menu: ("菜单", "重新开始", "主菜单", "开始", "返回菜单", "目录", "帮助", "help", "menu",
                   "你好", "您好", "在吗", "在不在", "hi", "hello", "嗨", "哈喽", "有人吗"),
    Command.back: ("上一步", "返回", "上一条", "后退", "back"),
    Command.next: ("下一步", "继续", "然后呢", "接下来呢", "接着说", "好的", "好", "嗯", "知道了",
                   "明白了", "收到", "ok", "next", "下一个",
                   "要", "要的", "是", "是的", "对", "对的", "可以", "行", "继续吧"),
    Command.law: ("法律依据", "法律", "依据", "法条", "哪条法律", "法律规定", "什么法律"),
    Command.hotlines: ("热线", "电话", "打什么电话", "热线电话", "号码", "联系电话", "打哪个电话"),
    Command.evidence: ("证据", "证据清单", "要什么证据", "保存什么证据", "留什么证据"),
    Command.traps: ("陷阱", "注意什么", "要注意什么", "常见陷阱"),
    Command.human: ("人工", "人工客服", "转人工", "真人", "客服", "找人工"),
}
_COMMAND_INDEX = {w: c for c, words in COMMAND_WORDS.items() for w in words}
_STRIP = re.compile(r"[\s\W_]+", re.UNICODE)
_EMOJI_OR_SYMBOL = {"So", "Sk", "Cs", "Co", "Cn", "Zs", "Cc", "Cf", "Mn"}
_NUMBER_WORDS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8}


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


def squash(text: str) -> str:
    """NFKC, lower-case, no spaces or punctuation: the form commands are compared in."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", text)).lower()


def is_meaningless(text: str) -> bool:
    """Empty, whitespace, emoji, symbols or control characters only."""
    return all(unicodedata.category(ch) in _EMOJI_OR_SYMBOL or not ch.isprintable() or
               unicodedata.category(ch).startswith("P") for ch in text)


def parse_command(text: str) -> Command | None:
    return _COMMAND_INDEX.get(squash(text))


def parse_choice(text: str) -> int | None:
    """A menu choice: '2', '２', '2.', '第二个', '选3'."""
    s = squash(text)
    s = re.sub(r"^(?:第|选|选择|我选|回复)", "", s)
    s = re.sub(r"(?:个|项|号|条)$", "", s)
    if s.isdigit() and 1 <= int(s) <= 9:
        return int(s)
    return _NUMBER_WORDS.get(s)


class Understander:
    """Everything message-level that does not depend on the session."""

    def __init__(self, kb: KnowledgeBase, matcher: Matcher, scanner: Scanner | None = None) -> None:
        self.kb = kb
        self.matcher = matcher
        self.scanner = scanner
        self._flags = [(f.id, [re.compile(p) for p in f.phrases]) for f in kb.flags.values()]

    def _patterns(self, text: str, scenario: str) -> list[str]:
        """Scam patterns named in the text, only for scenarios that talk about patterns."""
        if self.scanner is None or not self.kb.scenarios[scenario].patterns:
            return []
        return self.scanner.match_patterns(text)

    def progress_flags(self, text: str) -> list[str]:
        return [fid for fid, pats in self._flags if any(p.search(text) for p in pats)]

    def understand(
        self, text: str, *, secrets: set[str] = frozenset(), personal: set[str] = frozenset(),  # type: ignore[assignment]
        truncated: bool = False,
    ) -> Understood:
        """Classify one redacted message; ``secrets``/``personal`` come from redaction."""
        base = {"secrets": sorted(secrets), "personal": sorted(personal), "truncated": truncated}
        if is_meaningless(text):
            return Understood(empty=not (secrets or personal), **base)
        command = parse_command(text)
        if command is not None:
            return Understood(command=command, **base)
        choice = parse_choice(text)
        if choice is not None:
            return Understood(choice=choice, **base)
        digits = squash(text)
        number = int(digits) if digits.isdigit() and len(digits) <= 9 else None
        result = self.matcher.classify(text)
        candidates = [sid for sid, _ in result.ranked[:3]]
        return Understood(
            scenario=None if result.ambiguous else result.scenario,
            confidence=result.confidence,
            candidates=candidates,
            also=[s for s in result.also if s != result.scenario],
            amount=extract_amount(text),
            number=number,
            flags=self.progress_flags(text),
            patterns=self._patterns(text, result.scenario),
            **base,
        )
