"""How the bot behaves in a group chat: quiet by default, useful when asked, loud only for scams.

* added to a group → one introduction (once per group, ever);
* @-mentioned → admin command (owner/admins only) or a short answer that @-replies the asker
  and points to the private chat for the full steps;
* not mentioned → silent, unless the scanner flags a scam ad (one warning per pattern per
  cooldown, and a minimum gap between any two warnings in the room), or the admins switched
  keyword answers on and the message plainly asks for help.
"""

from __future__ import annotations

import re

from bot import metrics
from bot.models import IncomingMessage, Reply
from bot.privacy import redact
from bot.store.rooms import RoomStore
from dialogs.understand import Understander, squash
from knowledge.render import kinds_text, law_citation, render, render_text, with_legal_note
from knowledge.scanner import Scanner
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


class GroupPolicy:
    """Decides and renders group replies; the pipeline provides locking and dedupe."""

    def __init__(
        self,
        kb: KnowledgeBase,
        understander: Understander,
        scanner: Scanner,
        rooms: RoomStore,
        *,
        bot_name: str,
        pattern_cooldown_s: int,
        room_gap_s: int,
        replies_per_min: int = 10,
    ) -> None:
        self.kb = kb
        self.understander = understander
        self.scanner = scanner
        self.rooms = rooms
        self.bot_name = bot_name
        self.pattern_cooldown_s = pattern_cooldown_s
        self.room_gap_s = room_gap_s
        self.replies_per_min = replies_per_min

    async def handle(self, msg: IncomingMessage, text: str,
                     secrets: list[str] | None = None) -> tuple[list[Reply], str | None]:
        """Replies for one room message (already redacted) and the scenario it touched."""
        room = msg.room_id or ""
        if msg.kind == "join":
            if await self.rooms.first_time(msg.channel, room, "intro"):
                return [Reply(text=render_text(self.kb, "group_intro"))], None
            return [], None
        if msg.kind != "text":
            return [], None
        warning: list[Reply] = []
        if secrets:  # a code or password posted in a group: warn the sender first, mentioned or not
            warning = [Reply(text=render_text(self.kb, "secret_warning", what=kinds_text(self.kb, secrets)),
                             mention=[msg.user_id])]
        if msg.mentioned:
            replies, scenario = await self._mentioned(msg, strip_mentions(text, self.bot_name))
        else:
            replies, scenario = await self._unmentioned(msg, text)
        replies = [self._with_note(r) for r in warning + replies]
        if replies and not await self._may_speak(msg):
            return [], None
        return replies, scenario

    def _with_note(self, reply: Reply) -> Reply:
        """A group message that cites law carries the not-legal-advice line in itself.

        Group replies are one message each (an @-reply, a warning), so the note joins the text
        (``kb check`` makes sure it fits one screen) instead of following as a second message.
        """
        text = "\n".join(with_legal_note(self.kb, [reply.text]))
        return reply if text == reply.text else reply.model_copy(update={"text": text})

    async def _may_speak(self, msg: IncomingMessage) -> bool:
        """The bot's own flood limit per room (an @-mention flood must not make it a spammer)."""
        if await self.rooms.over_rate(msg.channel, msg.room_id or "", self.replies_per_min):
            metrics.RATE_LIMITED.inc()
            return False
        return True

    async def _mentioned(self, msg: IncomingMessage, text: str) -> tuple[list[Reply], str | None]:
        room = msg.room_id or ""
        at = [msg.user_id]
        word = squash(text)
        command = ADMIN_COMMANDS.get(word)
        if command is not None:
            name, value, key = command
            if word not in READ_ONLY and not msg.is_admin:
                return [Reply(text=render_text(self.kb, "group_admin_only"), mention=at)], None
            if value is not None:
                await self.rooms.set_flag(msg.channel, room, name, value)
                return [Reply(text=render_text(self.kb, key), mention=at)], None
            if key == "group_stats":
                st = await self.rooms.get(msg.channel, room)
                state = render_text(self.kb, "state_on" if st.alerts else "state_off")
                return [Reply(text=render_text(self.kb, key, alerts=st.n_alerts, mentions=st.n_mentions, state=state),
                              mention=at)], None
            return [Reply(text=render_text(self.kb, key), mention=at)], None
        await self.rooms.count(msg.channel, room, "n_mentions")
        scenario = self._scenario_of(text, keep_out_of_scope=True)
        if scenario is None:
            return [Reply(text=render_text(self.kb, "group_mention_menu"), mention=at)], None
        return [self._short_answer(scenario, at)], scenario

    def _scenario_of(self, text: str, *, keep_out_of_scope: bool) -> str | None:
        u = self.understander.understand(text)
        if u.scenario and (keep_out_of_scope or u.scenario != "out_of_scope"):
            return u.scenario
        return None

    def _short_answer(self, scenario: str, at: list[str]) -> Reply:
        return Reply(text=short_answer_text(self.kb, scenario), mention=at)

    async def _unmentioned(self, msg: IncomingMessage, text: str) -> tuple[list[Reply], str | None]:
        room = msg.room_id or ""
        result = self.scanner.scan(text, bot_name=self.bot_name)
        if result.alert:
            settings = await self.rooms.get(msg.channel, room)
            if not settings.alerts:
                return [], None
            # Check the bot's room budget *before* claiming the cooldown, so a dropped warning
            # is not counted as given (and the ad can still be warned about later).
            if await self.rooms.rate_exceeded(msg.channel, room, self.replies_per_min):
                return [], None
            if not await self.rooms.alert_allowed(
                msg.channel, room, result.pattern or UNNAMED_ALERT, self.pattern_cooldown_s, self.room_gap_s
            ):
                return [], None
            await self.rooms.count(msg.channel, room, "n_alerts")
            metrics.ALERTS.inc()
            alert = alert_text(self.kb, result.pattern, poster_name(msg.user_name))
            return [Reply(text=alert)], None
        # Keyword answers (opt-in): classify first, so ordinary chatter costs no Redis read.
        scenario = self._scenario_of(text, keep_out_of_scope=False)
        if scenario is None or not (await self.rooms.get(msg.channel, room)).keywords:
            return [], None
        return [self._short_answer(scenario, [msg.user_id])], scenario
