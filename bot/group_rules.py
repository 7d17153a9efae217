"""What the bot does with one group message — decided here, done elsewhere (no I/O).

Quiet by default, useful when asked, loud only for scams:

* added to a group → one introduction (once per group, ever);
* @-mentioned → admin command (owner/admins only) or a short answer that @-replies the asker
  and points to the private chat for the full steps;
* not mentioned → silent, unless the scanner flags a scam ad (one warning per pattern per
  cooldown, and a minimum gap between any two warnings in the room), or the admins switched
  keyword answers on and the message plainly asks for help;
* a code or password posted in a group → a warning to its sender, mentioned or not.

Like the dialog, this is a pure function, in two steps: ``read`` says what a message is
(before the room's settings are fetched, so ordinary chatter costs no Redis read), and
``decide`` turns that plus the room's settings into a ``Decision``: what to say, behind which
gates (claims such as "first time" or "cooldown over" that the store checks atomically), and
which writes to make. ``bot/group.py`` carries a decision out on the ``RoomStore``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from bot.models import IncomingMessage, Reply
from bot.privacy import redact
from bot.store.rooms import (
    AlertCooldown,
    BudgetLeft,
    FirstTime,
    Gate,
    Increment,
    RoomSettings,
    SetFlag,
    Write,
)
from dialogs.understand import Understander, squash
from knowledge.render import kinds_text, law_citation, render, render_text, with_legal_note
from knowledge.scanner import ScanResult
from knowledge.schema import KnowledgeBase

ADMIN_COMMANDS: dict[str, tuple[str, bool | None, str]] = {
    # squashed text → (setting, value, reply text key); value None = read-only command
    "开启提醒": ("alerts", True, "group_alerts_on"),
    "打开提醒": ("alerts", True, "group_alerts_on"),
    "关闭提醒": ("alerts", False, "group_alerts_off"),
    "开启每周提示": ("tips", True, "group_tips_on"),
    "关闭每周提示": ("tips", False, "group_tips_off"),
    "开启关键词回答": ("keywords", True, "group_keywords_on"),
    "关闭关键词回答": ("keywords", False, "group_keywords_off"),
    "统计": ("", None, "group_stats"),
    "帮助": ("", None, "group_help"),
}
READ_ONLY = {"统计", "帮助"}
"""Anyone may read the help and the counts; only admins change settings."""

UNNAMED_ALERT = "unnamed"
"""Cooldown key of alerts that name no pattern (the scanner's model found an ad no pattern fits)."""

MENTION_RE = re.compile(r"@[^\s\u2005@]{1,32}[\u2005\s]?")


def strip_mentions(text: str, bot_name: str) -> str:
    """Remove '@name' tokens (WeChat separates them with U+2005) from a group message."""
    text = text.replace(f"@{bot_name}", " ")
    return MENTION_RE.sub(" ", text).strip()


def poster_name(name: str | None) -> str:
    """A nickname as quoted in a public warning: personal data redacted, length capped."""
    if not name:
        return ""
    return redact(name).text.strip()[:16]


def alert_text(kb: KnowledgeBase, pattern_id: str | None, poster: str) -> str:
    """The public warning about one scam ad: who posted it, the pattern, the tell, the law.

    The law only when the pattern has one the brief supports (then with the not-legal-advice
    line in the same message); the pattern only when the scanner named one that fits
    (``pattern_id`` None: the learned model found an ad no pattern fits).
    """
    name = poster or render_text(kb, "someone")
    if pattern_id is None:
        return render_text(kb, "group_alert_unnamed", name=name)
    pattern = kb.patterns[pattern_id]
    giveaway = render(kb, pattern.giveaway)
    if not pattern.laws:
        return render_text(kb, "group_alert_no_law", name=name, pattern=pattern.name, giveaway=giveaway)
    laws = "、".join(law_citation(kb, lid) for lid in pattern.laws[:2])
    text = render_text(kb, "group_alert", name=name, pattern=pattern.name, giveaway=giveaway, laws=laws)
    return "\n".join(with_legal_note(kb, [text]))


def short_answer_text(kb: KnowledgeBase, scenario: str) -> str:
    """The @-reply for a scenario: its group answer, the pointer to private chat, the legal note."""
    body = render(kb, kb.scenarios[scenario].group_answer) + "\n" + render_text(kb, "group_mention_suffix")
    return "\n".join(with_legal_note(kb, [body]))


Kind = Literal["join", "ignore", "command", "question", "alert", "keyword", "chatter"]


@dataclass(frozen=True)
class Reading:
    """What a room message is, before the room's settings are looked at."""

    kind: Kind
    command: str = ""
    """The admin command word (``kind == "command"``)."""
    scenario: str | None = None
    pattern: str | None = None
    """The scam pattern the scanner flagged (``kind == "alert"``; None: an ad no pattern fits)."""
    secrets: tuple[str, ...] = ()
    """Kinds of secret (验证码, 密码) the message contained: its sender is warned."""

    @property
    def needs_settings(self) -> bool:
        """Whether ``decide`` needs the room's settings (else it is called with ``None``)."""
        return self.kind in ("alert", "keyword") or (self.kind == "command" and self.command == "统计")


@dataclass(frozen=True)
class Part:
    """Replies that go out only if every gate passes (checked in order, stopping at a no)."""

    replies: tuple[Reply, ...]
    gates: tuple[Gate, ...] = ()
    if_sent: tuple[Increment, ...] = ()
    """Counters incremented only when these replies are really said (the alert counter)."""


@dataclass(frozen=True)
class Decision:
    """Everything the bot layer has to do for one room message."""

    parts: tuple[Part, ...] = ()
    writes: tuple[Write, ...] = ()
    """Made whatever the gates say (an admin's setting, the mention counter)."""
    budget: int | None = None
    """The room's per-minute cap on what the bot says, spent once for all parts; None = no cap."""
    scenario: str | None = None


class GroupRules:
    """The group policy. Pure: the same message, settings and scan give the same decision."""

    def __init__(self, kb: KnowledgeBase, understander: Understander, *, bot_name: str,
                 pattern_cooldown_s: int, room_gap_s: int, replies_per_min: int = 10) -> None:
        self.kb = kb
        self.understander = understander
        self.bot_name = bot_name
        self.pattern_cooldown_s = pattern_cooldown_s
        self.room_gap_s = room_gap_s
        self.replies_per_min = replies_per_min

    def read(self, msg: IncomingMessage, text: str, secrets: list[str], scan: ScanResult | None) -> Reading:
        """What ``msg`` (its ``text`` already redacted) is; ``scan`` is the scanner's verdict on
        a text message (for a mention: on its text without the mention; None otherwise).

        A mentioned message the scanner calls an ad is an alert, not a question: naming the bot
        in an ad must not turn the warning into a friendly answer. Questions and warnings about
        an ad are spared by the scanner's own suppressor and still get their answer."""
        if msg.kind == "join":
            return Reading("join")
        if msg.kind != "text":
            return Reading("ignore")
        found = tuple(secrets)
        if msg.mentioned:
            asked = strip_mentions(text, self.bot_name)
            word = squash(asked)
            if word in ADMIN_COMMANDS:
                return Reading("command", command=word, secrets=found)
            if scan is not None and scan.alert:
                return Reading("alert", pattern=scan.pattern, secrets=found)
            return Reading("question", scenario=self._scenario_of(asked, keep_out_of_scope=True), secrets=found)
        if scan is not None and scan.alert:
            return Reading("alert", pattern=scan.pattern, secrets=found)
        scenario = self._scenario_of(text, keep_out_of_scope=False)
        return Reading("keyword" if scenario else "chatter", scenario=scenario, secrets=found)

    def decide(self, msg: IncomingMessage, reading: Reading, room: RoomSettings | None) -> Decision:
        """What to say and do; ``room`` must be given when ``reading.needs_settings``."""
        if reading.needs_settings and room is None:
            raise ValueError(f"a {reading.kind} reading needs the room's settings")
        if reading.kind == "join":
            intro = Reply(text=render_text(self.kb, "group_intro"))
            return Decision(parts=(Part((intro,), gates=(FirstTime("intro"),)),))
        if reading.kind == "ignore":
            return Decision()
        at = [msg.user_id]
        parts: list[Part] = []
        if reading.secrets:  # warn the sender first, mentioned or not
            what = kinds_text(self.kb, list(reading.secrets))
            parts.append(Part((Reply(text=render_text(self.kb, "secret_warning", what=what), mention=at),)))
        writes: tuple[Write, ...] = ()
        scenario = None
        if reading.kind == "command":
            part, writes = self._command(msg, reading.command, room)
            parts.append(part)
        elif reading.kind == "question":
            writes = (Increment("n_mentions"),)
            scenario = reading.scenario
            if scenario is None:
                parts.append(Part((Reply(text=render_text(self.kb, "group_mention_menu"), mention=at),)))
            else:
                parts.append(Part((self._short_answer(scenario, at),)))
        elif reading.kind == "alert" and room is not None and room.alerts:
            # The budget is checked *before* the cooldown is claimed, so a warning dropped for
            # the budget is not counted as given (and the ad can still be warned about later).
            parts.append(Part(
                (Reply(text=alert_text(self.kb, reading.pattern, poster_name(msg.user_name))),),
                gates=(BudgetLeft(self.replies_per_min),
                       AlertCooldown(reading.pattern or UNNAMED_ALERT, max(self.pattern_cooldown_s, 1),
                                     self.room_gap_s)),
                if_sent=(Increment("n_alerts"),),
            ))
        elif reading.kind == "keyword" and room is not None and room.keywords and reading.scenario:
            scenario = reading.scenario
            parts.append(Part((self._short_answer(scenario, at),)))
        noted = tuple(replace(p, replies=tuple(self._with_note(r) for r in p.replies)) for p in parts)
        return Decision(parts=noted, writes=writes, budget=self.replies_per_min, scenario=scenario)

    def _with_note(self, reply: Reply) -> Reply:
        """A group message that cites law carries the not-legal-advice line in itself.

        Group replies are one message each (an @-reply, a warning), so the note joins the text
        (``kb check`` makes sure it fits one screen) instead of following as a second message.
        """
        text = "\n".join(with_legal_note(self.kb, [reply.text]))
        return reply if text == reply.text else reply.model_copy(update={"text": text})

    def _command(self, msg: IncomingMessage, word: str, room: RoomSettings | None) -> tuple[Part, tuple[Write, ...]]:
        at = [msg.user_id]
        name, value, key = ADMIN_COMMANDS[word]
        if word not in READ_ONLY and not msg.is_admin:
            return Part((Reply(text=render_text(self.kb, "group_admin_only"), mention=at),)), ()
        if value is not None:
            return Part((Reply(text=render_text(self.kb, key), mention=at),)), (SetFlag(name, value),)
        if key == "group_stats" and room is not None:
            state = render_text(self.kb, "state_on" if room.alerts else "state_off")
            text = render_text(self.kb, key, alerts=room.n_alerts, mentions=room.n_mentions, state=state)
            return Part((Reply(text=text, mention=at),)), ()
        return Part((Reply(text=render_text(self.kb, key), mention=at),)), ()

    def _scenario_of(self, text: str, *, keep_out_of_scope: bool) -> str | None:
        u = self.understander.understand(text)
        if u.scenario and (keep_out_of_scope or u.scenario != "out_of_scope"):
            return u.scenario
        return None

    def _short_answer(self, scenario: str, at: list[str]) -> Reply:
        return Reply(text=short_answer_text(self.kb, scenario), mention=at)
