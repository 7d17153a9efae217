"""Spot scam ads and illegal solicitations in group messages.

The patterns live in ``knowledge/data/patterns.yaml`` (one ``ScamPattern`` each): a rule is a
list of regexes that must all match the message after ``knowledge.matcher.normalize`` (lower
case, half-width, wx/vx/V信 → 微信, no spaces or punctuation); a pattern matches when any of
its rules does. Everything is compiled once in ``Scanner.from_kb``.

A group alert is only raised for a message that *is* the scam, not one that *talks about*
it. Before alerting, ``scan`` drops messages that

* warn others ("大家注意", "小心", "提醒大家", "别信", "冒充", "是骗子", "防骗", …),
* ask for help ("怎么办", "怎么处理", "求助", "有人知道吗", "靠谱吗", "是真的吗", …),
* tell what happened to the writer ("对方说…", "有人让我…", "接到电话…", "我还没交") or a
  victim's story ("被骗了", "我被骗", "上当了", …) — victim words do not clear the patterns
  whose ads are aimed at victims (``recovery_scam``: "被骗了？专业团队帮你追回"),
* quote the bot (its name appears in the text).

Ads sometimes pre-empt the suspicion ("不是骗子", "骗子勿扰", "非诈骗"); those phrases are
removed before the warning check so they cannot switch the scanner off.

``match_patterns`` skips these checks: the scam_check dialog uses it to name the pattern a
user describes ("对方让我先交保证金").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel

from knowledge.matcher import normalize
from knowledge.schema import KnowledgeBase

BOT_NAMES: tuple[str, ...] = ("反诈助手",)
"""Text containing the bot's name quotes or addresses the bot: never an ad."""

_NOT_A_WARNING_RE = re.compile(
    r"(?:不是|绝不是|绝对不是|并非|非)(?:骗子|骗局|诈骗|骗人)|"
    r"骗子勿扰|拒绝骗子|骗子绕道|不骗人|绝不骗|诚信不骗"
)
"""Ad phrases that mention scams only to deny being one."""

_WARNING_RE = re.compile(
    r"(?:大家|各位|们|家人|群友|朋友|亲们)(?:也|都|要|一定要|务必|千万)?注意|注意防范|注意防骗|"
    r"小心|当心|提醒(?:大家|各位|一下|家人|群友|广大)|友情提醒|温馨提醒.{0,12}(?:骗|诈)|"
    r"别信|不要信|不要相信|别相信|不能信|"
    r"千万(?:别|不要)(?:信|相信|转|上当|点|扫|借|租|卖|出租|出售|给|把)|千万不能|不能帮|"
    r"冒充|假冒|是骗子|都是骗子|是骗局|都是骗局|是诈骗|都是诈骗|防骗|防诈|谨防|警惕|"
    r"反诈(?:宣传|知识|提醒|小课堂)|诈骗(?:手法|套路|新套路|案例|分子)|"
    r"骗子(?:的)?(?:套路|新招|手段|又来)|上当受骗|不要上当|别上当|揭秘|曝光|举报|报警|96110|"
    r"拉黑|屏蔽|一律|这种|这类|那种|碰不得|不能碰|会被(?:封|抓|判|拘|罚|冻)|被判|判刑|坐牢|被抓|"
    r"引以为戒|长点心|陷阱|钓鱼(?:网站|链接)|远离|"
    r"(?:别|不要|千万别|千万不要)(?:点|碰|做|干|去|参与|理|回|加|搭理)|"
    r"违法的|犯法的|是违法|属于违法|帮信罪"
)
"""Someone warning the group about a scam."""

_HELP_RE = re.compile(
    r"怎么办|怎么处理|怎么弄|怎么回事|怎么解决|咋办|求助|求救|请问|咨询一下|求解|"
    r"有人知道|有没有人知道|谁知道|有谁知道|有人(?:收|接|遇|碰)到?过|帮忙看看|帮我看看|"
    r"靠谱吗|靠不靠谱|是真的吗|是不是真的|真的假的|是不是骗|是骗子吗|是骗局吗|是诈骗吗|"
    r"可信吗|能信吗|正常吗|能不能做|可以做吗|能做吗|会不会被|犯法吗|违法吗|合法吗|"
    r"会怎样|会怎么样|是什么|什么意思|这种(?:短信|电话|消息|广告|套路)"
)
"""Someone asking about a situation."""

_STORY_RE = re.compile(
    r"(?:对方|他|她|他们|有人|有个人|一个人|那人|陌生人|网友|客服|骗子|朋友|同学|中介|平台|人家|别人)"
    r"(?:说(?!明)|让我|叫我|要我|问我|给我|跟我说|告诉我|加我|找我|发来|打电话|打来|发了|推荐我|"
    r"带我|转了我)|"
    r"自称.{0,8}(?:说|让我|叫我|要我|给我)|"
    r"(?:接到|收到)(?:一个|一条|个|条|了)?.{0,8}(?:电话|短信|视频|消息|通知)|"
    r"我(?:还没|要不要|该不该|该怎么)|(?:让|叫)我(?!们|带|帮你|来)|(?<!需)要我(?!们)"
)
"""Someone telling what happened to them ("对方说…我还没交"): a report, not an ad.
Ads talk to "你"; the advertiser's own "加我" has no third-person subject before it."""

_QUESTION_END_RE = re.compile(r"(?:[?？]|[吗么呢]\W*)$")
"""A message that ends as a question asks about something; an ad ends with its offer."""

_VICTIM_RE = re.compile(
    r"被骗了|我被骗|被骗的人|被骗后|受骗了|上当了|被诈骗了|被人骗了|被骗走|骗了|"
    r"联系不上|拉黑了我|把我拉黑|跑路了|人跑了|提不出来|提现不了|没返"
)
"""A victim's story."""

VICTIM_AD_PATTERNS: frozenset[str] = frozenset({"recovery_scam"})
"""Patterns whose ads address victims, so victim words do not make them harmless."""


class ScanResult(BaseModel):
    alert: bool
    pattern: str | None
    reason: str
    """Which rule and regex matched (or why nothing was raised), for maintainers."""


@dataclass(frozen=True)
class _Rule:
    pattern: str
    index: int
    regexes: tuple[re.Pattern[str], ...]

    def search(self, text: str) -> list[str] | None:
        hits: list[str] = []
        for rx in self.regexes:
            m = rx.search(text)
            if m is None:
                return None
            hits.append(m.group(0))
        return hits


class Scanner:
    """Compiled scam patterns with the warning/help suppressor."""

    def __init__(self, rules: list[_Rule], alertable: frozenset[str]) -> None:
        self._rules = rules
        self._alertable = alertable

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> Scanner:
        rules: list[_Rule] = []
        alertable: set[str] = set()
        for pattern in kb.patterns.values():
            if pattern.group_alert:
                alertable.add(pattern.id)
            for i, rule in enumerate(pattern.rules):
                if rule:
                    rules.append(_Rule(pattern.id, i, tuple(re.compile(rx) for rx in rule)))
        return cls(rules, frozenset(alertable))

    # ------------------------------------------------------------------ matching

    def _matches(self, norm: str) -> list[tuple[_Rule, list[str]]]:
        out: list[tuple[_Rule, list[str]]] = []
        seen: set[str] = set()
        for rule in self._rules:
            if rule.pattern in seen:
                continue
            hits = rule.search(norm)
            if hits is not None:
                seen.add(rule.pattern)
                out.append((rule, hits))
        return out

    def match_patterns(self, text: str) -> list[str]:
        """Every pattern id the text matches (patterns.yaml order), ignoring suppressors."""
        return [rule.pattern for rule, _ in self._matches(normalize(text))]

    @staticmethod
    def suppressed(text: str, norm: str | None = None) -> str | None:
        """Why a message is not an ad (warning, help request, story, bot quote), or None."""
        if any(name in text for name in BOT_NAMES):
            return "quotes or addresses the bot"
        norm = normalize(text) if norm is None else norm
        cleaned = _NOT_A_WARNING_RE.sub("", norm)
        if m := _WARNING_RE.search(cleaned):
            return f"warns others ({m.group(0)})"
        if m := _HELP_RE.search(cleaned):
            return f"asks for help ({m.group(0)})"
        if _QUESTION_END_RE.search(text.strip()):
            return "asks a question"
        if m := _STORY_RE.search(cleaned):
            return f"tells what happened ({m.group(0)})"
        if m := _VICTIM_RE.search(cleaned):
            return f"victim:{m.group(0)}"
        return None

    def scan(self, text: str) -> ScanResult:
        """Should the bot warn the group about this message, and which pattern is it?"""
        norm = normalize(text)
        matches = [(r, h) for r, h in self._matches(norm) if r.pattern in self._alertable]
        if not matches:
            return ScanResult(alert=False, pattern=None, reason="no pattern matched")
        why = self.suppressed(text, norm)
        if why is not None:
            if why.startswith("victim:"):
                matches = [(r, h) for r, h in matches if r.pattern in VICTIM_AD_PATTERNS]
                if not matches:
                    return ScanResult(
                        alert=False, pattern=None, reason=f"tells a victim's story ({why[7:]})"
                    )
            else:
                return ScanResult(alert=False, pattern=None, reason=why)
        rule, hits = matches[0]
        return ScanResult(
            alert=True,
            pattern=rule.pattern,
            reason=f"{rule.pattern} rule {rule.index + 1}: " + " + ".join(hits),
        )
