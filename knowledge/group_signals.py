"""What a group message says besides its topic: an ad's signals, a warning, a question, a story.

The scanner's rules and model find messages *about* a scam; this module decides whether the
message *is* the scam ad or someone warning, asking or telling what happened. The phrase lists
are knowledge, in ``knowledge/data/scanner.yaml`` (its header explains the policy); this module
only compiles them and applies the policy:

* an **accusation** (calls it a scam, a fake, illegal; tells people not to) or a **story** (what
  happened to the writer or someone they know) spares a message even when it quotes the ad's
  price; only the poster's own **contact** call (加我, 私聊, +vx…) can outweigh it, and for an
  accusation only together with an **offer** and nothing that reports someone else's post; a
  story that pays the reader ("我号被封了 谁帮我辅助 给20红包", ``pay_you``) is an ad unless the
  payment is someone else's ("他说给我…");
* a **check question** ("靠谱吗", "违法吗") spares it unless the poster asks to be contacted;
* **attention** words (大家注意, 小心) count when they report that someone else does it
  ("有人在群里收…") and the poster gives no contact of their own;
* weak words — **attention** about a kind of post ("这种…"), help words (怎么办), a question
  mark at the end — spare it only when the message
  carries no ad signal at all. So "大家注意！高价收微信号 一个300" and "缺钱怎么办？我这日结"
  stay ads.

Offers and contacts inside quotation marks are someone else's words being reported and do not
count as the poster's. Also here: the WeChat quote-reply split (only the writer's own words are
scanned), ``harmless_notice`` (a carrier/bank-style text asking for nothing risky, on which the
model alone must not alert) and the ``pattern_fit`` check that lets the model's pattern name
stand only when it fits the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, field_validator

from knowledge.loader import DATA_DIR
from knowledge.normalize import normalize

SIGNALS_PATH = DATA_DIR / "scanner.yaml"


class SignalTables(BaseModel):
    """``knowledge/data/scanner.yaml`` as read."""

    bot_names: list[str] = Field(min_length=1)
    quote: str
    denials: list[str]
    contact: list[str]
    offer: list[str]
    notice: list[str]
    notice_raw: str
    risky_action: list[str]
    accusation: list[str]
    attention: list[str]
    report: list[str]
    report_other: list[str]
    check_question: list[str]
    own_case: list[str]
    own_subject: list[str]
    pay_you: list[str]
    attribution: list[str]
    story: list[str]
    kin: list[str]
    outcome: list[str]
    victim: list[str]
    victim_ad_patterns: list[str]
    solicit_question: list[str]
    pattern_fit: dict[str, list[str]]

    @field_validator("quote")
    @classmethod
    def _quote_compiles(cls, v: str) -> str:
        re.compile(v)
        return v


def _one(alternatives: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


_QUESTION_END_RE = re.compile(
    r"(?:[?？]|[吗么呢]\W*|(?:正常|靠谱|可以|可信|真的|合法|违法|安全|能做|能信|行)不\W*)$"
)
"""A message that ends as a question (on the raw text: normalising drops the '?')."""

_QUOTED_RE = re.compile(r"[“\"「『‘《][^”\"」』’》]{2,120}[”\"」』’》]")
"""A quoted span: the words of someone else's ad, reported."""


@dataclass(frozen=True)
class Signals:
    """The compiled tables and the suppressor policy."""

    bot_names: tuple[str, ...]
    quote: re.Pattern[str]
    denials: re.Pattern[str]
    contact: re.Pattern[str]
    offer: re.Pattern[str]
    notice: re.Pattern[str]
    notice_raw: re.Pattern[str]
    risky_action: re.Pattern[str]
    accusation: re.Pattern[str]
    attention: re.Pattern[str]
    report: re.Pattern[str]
    report_other: re.Pattern[str]
    check_question: re.Pattern[str]
    own_case: re.Pattern[str]
    own_subject: re.Pattern[str]
    pay_you: re.Pattern[str]
    attribution: re.Pattern[str]
    story: re.Pattern[str]
    kin: re.Pattern[str]
    outcome: re.Pattern[str]
    victim: re.Pattern[str]
    victim_ad_patterns: frozenset[str]
    solicit_question: re.Pattern[str]
    pattern_fit: dict[str, tuple[re.Pattern[str], ...]]

    @classmethod
    def from_tables(cls, t: SignalTables) -> Signals:
        return cls(
            bot_names=tuple(t.bot_names),
            quote=re.compile(t.quote),
            denials=_one(t.denials),
            contact=_one(t.contact),
            offer=_one(t.offer),
            notice=_one(t.notice),
            notice_raw=re.compile(t.notice_raw),
            risky_action=_one(t.risky_action),
            accusation=_one(t.accusation),
            attention=_one(t.attention),
            report=_one(t.report),
            report_other=_one(t.report_other),
            check_question=_one(t.check_question),
            own_case=_one(t.own_case),
            own_subject=_one(t.own_subject),
            pay_you=_one(t.pay_you),
            attribution=_one(t.attribution),
            story=_one(t.story),
            kin=_one(t.kin),
            outcome=_one(t.outcome),
            victim=_one(t.victim),
            victim_ad_patterns=frozenset(t.victim_ad_patterns),
            solicit_question=_one(t.solicit_question),
            pattern_fit={p: tuple(re.compile(rx) for rx in rxs) for p, rxs in t.pattern_fit.items()},
        )

    # ------------------------------------------------------------------ the message's parts

    def own_words(self, text: str) -> tuple[str, str | None]:
        """(the writer's own words, the quoted name or None) of a WeChat quote-reply."""
        m = self.quote.match(text)
        if m is None:
            return text, None
        return text[m.end():], m.group("name").strip()

    @staticmethod
    def addresses(text: str, names: tuple[str, ...]) -> bool:
        """An "@name" mention of the bot; the bare name in a message does not count."""
        return any(f"@{n}" in text for n in names)

    def _unquoted(self, raw: str, norm: str) -> str:
        """The normalised message without denials and without quoted spans (someone else's
        words, reported: "有人在群里发“刷单返利 佣金日结”")."""
        if _QUOTED_RE.search(raw):
            norm = normalize(_QUOTED_RE.sub("，", raw))
        return self.denials.sub("", norm)

    def ad_signal(self, raw: str, norm: str) -> str | None:
        """The poster's own contact call or offer, if the message has one."""
        own = self._unquoted(raw, norm)
        m = self.contact.search(own) or self.offer.search(own)
        return m.group(0) if m else None

    def harmless_notice(self, raw: str, norm: str) -> str | None:
        """A carrier/bank/delivery-style notice that asks for nothing risky (no link, QR
        code, download, transfer or contact): the model alone must not alert on it."""
        m = self.notice_raw.search(raw) or self.notice.search(norm)
        if m is None:
            return None
        own = self._unquoted(raw, norm)
        if self.risky_action.search(own) or self.contact.search(own):
            return None
        return m.group(0).strip()

    def fits(self, pattern: str, norm: str) -> bool:
        """Does the message talk about the pattern's thing (so its name and law may be used)?"""
        checks = self.pattern_fit.get(pattern, ())
        return bool(checks) and all(rx.search(norm) for rx in checks)

    # ------------------------------------------------------------------ the policy

    def suppressed(self, raw: str, norm: str) -> str | None:
        """Why the message is a warning, question or story rather than an ad, or None.

        ``raw`` is the writer's own words (for the question mark), ``norm`` their normalised
        form. A reason starting with "victim:" is a victim's story, which does not clear the
        ``victim_ad_patterns``.
        """
        cleaned = self.denials.sub("", norm)
        # The poster's own signals: an offer or contact inside quotation marks is someone
        # else's ad being reported ("有人在群里发“刷单返利 佣金日结”").
        unquoted = self._unquoted(raw, norm)
        contact = self.contact.search(unquoted)
        offer = self.offer.search(unquoted)
        report = self.report.search(cleaned)
        if m := self.accusation.search(cleaned):
            if not (contact and offer) or report:
                return f"warns others ({m.group(0)})"
        pays = self.pay_you.search(unquoted) and not self.attribution.search(cleaned)
        if not contact and not pays:
            if m := self.story.search(cleaned):
                return f"tells what happened ({m.group(0)})"
            if (m := self.kin.search(cleaned)) and (o := self.outcome.search(cleaned)):
                return f"tells what happened ({m.group(0)}…{o.group(0)})"
        if not contact and (m := self.attention.search(cleaned)) and (o := self.report_other.search(cleaned)):
            return f"warns others ({m.group(0)}…{o.group(0)})"
        own = self.own_subject.search(cleaned)
        if (m := self.check_question.search(cleaned)) and (not contact or report or own):
            return f"asks whether it is genuine ({m.group(0)})"
        if not contact and (v := self.victim.search(cleaned)):
            return f"victim:{v.group(0)}"
        if contact or offer:
            return None
        if (m := self.attention.search(cleaned)) and report:
            return f"warns others ({m.group(0)}…{report.group(0)})"
        if self.solicit_question.search(cleaned) is not None:
            return None  # "有没有闲置的卡 出？" asks for the goods
        if m := self.own_case.search(cleaned):
            return f"asks for help ({m.group(0)})"
        if _QUESTION_END_RE.search(raw.strip()):
            return "asks a question"
        return None


def read_tables(path: Path = SIGNALS_PATH) -> SignalTables:
    with path.open(encoding="utf-8") as fh:
        return SignalTables.model_validate(yaml.safe_load(fh))


@lru_cache(maxsize=1)
def default_signals() -> Signals:
    """The signals of ``knowledge/data/scanner.yaml`` (read once)."""
    return Signals.from_tables(read_tables())
