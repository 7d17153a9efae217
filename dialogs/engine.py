"""The dialog step: ``step(kb, session, understood, now) -> (session, replies)``.

No I/O and no clock of its own: everything it needs comes in as arguments, so every flow is
testable without a server. The machine is small on purpose:

* states: ``start`` → ``menu`` / ``clarify`` → ``scenario`` (walking its steps), plus
  ``resume`` for a returning user;
* global commands (``COMMANDS``) work in every state;
* free text in any state may switch to the scenario it names, urgent reply first.

What is *said* lives in the knowledge base; this module only decides *which* template.
"""

from __future__ import annotations

from collections.abc import Callable

from dialogs.session import Session
from dialogs.understand import Command, Understood
from knowledge.loader import MAX_SCREEN_CHARS
from knowledge.render import hotline_number, kinds_text, law_citation, render, render_text, with_legal_note
from knowledge.schema import SCENARIO_IDS, KnowledgeBase, Scenario, Status

AMOUNT_SCENARIOS = frozenset({"fraud_victim", "wallet_loss"})
AMOUNT_LINE = 3000
"""电信网络诈骗 数额较大 starts at 3000 元 (2016 两高一部意见, knowledge brief §6.2)."""

Replies = list[str]


class Dialog:
    """Binds the knowledge base to the pure step functions."""

    def __init__(self, kb: KnowledgeBase, resume_after_s: float = 1800) -> None:
        self.kb = kb
        self.resume_after_s = resume_after_s

    # -- rendering helpers -----------------------------------------------------------

    def sc(self, sid: str) -> Scenario:
        return self.kb.scenarios[sid]

    def menu_options(self) -> str:
        return "\n".join(f"{i}. {self.sc(sid).menu_label}" for i, sid in enumerate(SCENARIO_IDS, 1))

    def menu(self, s: Session) -> Replies:
        s.push()
        s.state, s.scenario, s.step, s.offered = "menu", None, 0, []
        return [render_text(self.kb, "menu", options=self.menu_options())]

    def with_note(self, replies: Replies, scenario: Scenario | None = None) -> Replies:
        """The not-legal-advice line after the last message that cites law, whatever the
        scenario (``step`` applies it to every turn; see ``knowledge.render.with_legal_note``)."""
        return with_legal_note(self.kb, replies)

    @staticmethod
    def pack(lines: list[str]) -> Replies:
        """Join short blocks into messages that each fit one screen."""
        out: Replies = []
        for line in lines:
            if out and len(out[-1]) + len(line) + 1 <= MAX_SCREEN_CHARS:
                out[-1] += "\n" + line
            else:
                out.append(line)
        return out

    # -- scenario walking -----------------------------------------------------------
    def _marked(self, sc: Scenario, s: Session, index: int) -> bool:
        if index == 0:
            return False
        flag = sc.steps[index - 1].marks
        return flag is not None and flag in s.done

    def show(self, s: Session) -> Replies:
        """The message at the current position: 0 is the urgent reply, then the steps."""
        sc = self.sc(s.scenario or "out_of_scope")
        if s.step == 0:
            text = render(self.kb, sc.urgent)
        else:
            text = render(self.kb, sc.steps[s.step - 1].text)
        touches = "{law:" in (sc.urgent if s.step == 0 else sc.steps[s.step - 1].text)
        return self.with_note([text], sc) if touches else [text]

    def remaining(self, sc: Scenario, s: Session) -> list[str]:
        return [st.title for st in sc.steps if st.marks and st.marks not in s.done]

    def left_text(self, sc: Scenario, s: Session) -> str:
        """What is still to do; praise for finishing only where there was something to finish."""
        left = self.remaining(sc, s)
        if left:
            return render_text(self.kb, "remaining", remaining="；".join(left))
        if any(st.marks for st in sc.steps) and s.done:
            return render_text(self.kb, "nothing_left")
        return render_text(self.kb, "steps_done_unmarked")

    def enter(self, s: Session, sid: str, u: Understood) -> Replies:
        """Switch to a scenario: urgent reply first, then what the amount means, then offers."""
        s.push()
        s.state, s.scenario, s.step, s.offered = "scenario", sid, 0, []
        replies = self.show(s)
        if u.amount is not None:
            replies += self.amount_note(s, sid, u.amount)
        if u.flags:  # "我被骗了两千，已经报警了": remember what is already done
            replies += self._progress(s, u)
        replies += self.name_pattern(sid, u)
        others = [o for o in u.also if o != sid and o in self.kb.scenarios and o != "out_of_scope"]
        if others:
            s.offered = others[:2]
            titles = "、".join(f"「{self.sc(o).title}」" for o in s.offered)
            replies.append(render_text(self.kb, "also_offer", titles=titles))
        return replies

    def amount_note(self, s: Session, sid: str, amount: int) -> Replies:
        """What the amount lost means (the 3000 元 数额较大 line), for money scenarios."""
        s.amount = amount
        if sid not in AMOUNT_SCENARIOS:
            return []
        if sid == "wallet_loss":  # money taken without the user paying anyone: theft, not fraud
            return [render_text(self.kb, "amount_theft", amount=amount)]
        key = "amount_big" if amount >= AMOUNT_LINE else "amount_small"
        return [render_text(self.kb, key, amount=amount)]

    def name_pattern(self, sid: str, u: Understood) -> Replies:
        """The scam pattern the user describes, and the one fact that gives it away."""
        named = [p for p in u.patterns if p in self.kb.patterns and p in self.sc(sid).patterns]
        if not named:
            return []
        pat = self.kb.patterns[named[0]]
        return [render_text(self.kb, "pattern_named", pattern=pat.name, giveaway=render(self.kb, pat.giveaway))]

    def advance(self, s: Session) -> Replies:
        sc = self.sc(s.scenario or "out_of_scope")
        nxt = s.step + 1
        while nxt <= len(sc.steps) and self._marked(sc, s, nxt):
            nxt += 1
        if nxt > len(sc.steps):
            return [render_text(self.kb, "steps_done", title=sc.title, remaining=self.left_text(sc, s))]
        s.push()
        s.step = nxt
        return self.show(s)

    # -- global commands ------------------------------------------------------------
    def cmd_menu(self, s: Session, u: Understood) -> Replies:
        return self.menu(s)

    def cmd_back(self, s: Session, u: Understood) -> Replies:
        if not s.back:
            if s.state == "scenario":
                return [render_text(self.kb, "at_first_step"), *self.show(s)]
            return self.menu(s)
        prev = s.back.pop()
        s.state, s.scenario, s.step = prev.state, prev.scenario, prev.step
        if s.state == "scenario" and s.scenario:
            return self.show(s)
        s.state, s.scenario, s.step = "menu", None, 0
        return [render_text(self.kb, "menu", options=self.menu_options())]

    def cmd_next(self, s: Session, u: Understood) -> Replies:
        if s.state == "resume" and s.scenario:
            s.state = "scenario"
            return self.show(s)
        if s.state == "scenario" and s.scenario:
            return self.advance(s)
        if s.state in ("menu", "clarify"):
            return [render_text(self.kb, "menu_reprompt")]  # not the whole menu again
        return self.menu(s)

    def _need_scenario(self, s: Session) -> Scenario | None:
        if s.scenario and s.state in ("scenario", "resume"):
            s.state = "scenario"
            return self.sc(s.scenario)
        return None

    def cmd_law(self, s: Session, u: Understood) -> Replies:
        sc = self._need_scenario(s)
        if sc is None or not sc.laws:
            return self.menu(s)
        blocks = [render_text(self.kb, "law_summary_header") + ("\n" + render(self.kb, sc.law_intro) if sc.law_intro else "")]
        for i, lid in enumerate(sc.laws):  # the plain-words summary and the verbatim text, labelled apart
            law = self.kb.laws[lid]
            header = render_text(self.kb, "law_header") + "\n" if i == 0 else ""
            blocks.append(f"{header}{law_citation(self.kb, lid)}：\n{law.text}")
        return self.with_note(self.pack(blocks), sc)

    def _hotline_lines(self, ids: list[str]) -> list[str]:
        lines = []
        for hid in ids:
            h = self.kb.hotlines[hid]
            if h.status is Status.unverified:
                continue
            line = f"• {hotline_number(self.kb, hid)}：{h.name}，{render(self.kb, h.use)}"
            if h.also_written:
                line += render_text(self.kb, "hotline_also", number=h.also_written)
            if h.not_for:
                line += f"（{render(self.kb, h.not_for)}）"
            lines.append(line)
        return lines

    def cmd_hotlines(self, s: Session, u: Understood) -> Replies:
        sc = self._need_scenario(s)
        ids = sc.hotlines if sc else ["110", "96110", "12348"]
        return self.pack([render_text(self.kb, "hotlines_header"), *self._hotline_lines(ids)])

    def cmd_evidence(self, s: Session, u: Understood) -> Replies:
        sc = self._need_scenario(s)
        if sc is None or not sc.evidence:
            return self.menu(s)
        items = [f"{i}. {render(self.kb, e)}" for i, e in enumerate(sc.evidence, 1)]
        return self.pack([render_text(self.kb, "evidence_header"), *items])

    def cmd_traps(self, s: Session, u: Understood) -> Replies:
        sc = self._need_scenario(s)
        if sc is None or not sc.traps:
            return self.menu(s)
        items = [f"• {render(self.kb, e)}" for e in sc.traps]
        return self.pack([render_text(self.kb, "traps_header"), *items])

    def cmd_human(self, s: Session, u: Understood) -> Replies:
        sc = self._need_scenario(s)
        ids = sc.urgent_hotlines if sc else ["110", "96110"]
        numbers = "、".join(hotline_number(self.kb, h) for h in ids)
        return [render_text(self.kb, "human", hotlines=numbers)]

    COMMANDS: dict[Command, Callable[[Dialog, Session, Understood], Replies]] = {
        Command.menu: cmd_menu,
        Command.back: cmd_back,
        Command.next: cmd_next,
        Command.law: cmd_law,
        Command.hotlines: cmd_hotlines,
        Command.evidence: cmd_evidence,
        Command.traps: cmd_traps,
        Command.human: cmd_human,
    }

    # -- guards ---------------------------------------------------------------------
    def returning(self, s: Session, now: float) -> bool:
        """A user back after a long pause, in the middle of a scenario."""
        return (s.state == "scenario" and s.scenario is not None and s.last_active > 0
                and now - s.last_active >= self.resume_after_s)

    # -- the step -------------------------------------------------------------------
    def step(self, s: Session, u: Understood, now: float) -> tuple[Session, Replies]:
        """One dialog step. Never raises for any Understood; never returns no reply."""
        # Copy-on-entry keeps the step pure; positions are frozen, so fresh lists suffice
        # (a pydantic deep copy was the single most expensive call on the hot path).
        s = s.model_copy(update={"back": list(s.back), "done": list(s.done), "offered": list(s.offered)})
        pre: Replies = []
        if u.secrets:
            pre.append(render_text(self.kb, "secret_warning", what=kinds_text(self.kb, u.secrets)))
        elif u.personal:
            pre.append(render_text(self.kb, "pii_warning", what=kinds_text(self.kb, u.personal)))
        replies = self._route(s, u, now)
        if u.truncated:
            pre.append(render_text(self.kb, "too_long"))
        s.turns += 1
        s.last_active = now
        return s, self.with_note(pre + replies)

    def _route(self, s: Session, u: Understood, now: float) -> Replies:
        if u.empty:
            return [render_text(self.kb, "empty")]
        if u.command is not None:
            return self.COMMANDS[u.command](self, s, u)
        if u.flags and s.scenario and s.state in ("scenario", "resume"):
            s.state = "scenario"  # "已报警" is progress in the current flow, whatever else it resembles
            return self._progress(s, u)
        if self.returning(s, now) and u.scenario in (None, s.scenario, "out_of_scope"):
            s.state = "resume"
            return [render_text(self.kb, "resume", title=self.sc(s.scenario or "out_of_scope").title)]
        if u.choice is not None:
            return self._choose(s, u)
        amount = u.amount if u.amount is not None else u.number
        if (amount is not None and s.state == "scenario" and s.scenario in AMOUNT_SCENARIOS
                and u.scenario in (None, s.scenario, "out_of_scope")):
            return self.amount_note(s, s.scenario, amount)  # the answer to "被骗了多少钱"
        if u.scenario is not None:
            if s.state == "scenario" and u.scenario == s.scenario:
                return self.name_pattern(s.scenario, u) or self.advance(s)
            if s.state == "scenario" and u.scenario == "out_of_scope":
                return [render_text(self.kb, "reprompt")]  # small talk mid-flow must not drop the user's place
            return self.enter(s, u.scenario, u)
        if u.secrets or u.personal:
            return [] if s.state == "scenario" else self.menu(s)
        return self._unclear(s, u)

    def _choose(self, s: Session, u: Understood) -> Replies:
        n = u.choice or 0
        if s.state == "clarify" and 1 <= n <= len(s.offered):
            return self.enter(s, s.offered[n - 1], u)
        if s.state == "clarify":
            return [render_text(self.kb, "menu_reprompt")]
        if s.state in ("start", "menu", "resume") and 1 <= n <= len(SCENARIO_IDS):
            return self.enter(s, SCENARIO_IDS[n - 1], u)
        if s.state == "scenario" and s.offered and 1 <= n <= len(s.offered):
            return self.enter(s, s.offered[n - 1], u)
        return self._unclear(s, u)

    def _progress(self, s: Session, u: Understood) -> Replies:
        sc = self.sc(s.scenario or "out_of_scope")
        new = [f for f in u.flags if f not in s.done]
        s.done.extend(new)
        labels = "、".join(self.kb.flags[f].label for f in (new or u.flags))
        return [render_text(self.kb, "progress_ack", labels=labels) + "\n" + self.left_text(sc, s)]

    def _unclear(self, s: Session, u: Understood) -> Replies:
        if s.state == "scenario":
            return [render_text(self.kb, "reprompt")]
        plausible = [c for c in u.candidates if c != "out_of_scope"][:3]
        # Clarify only between real candidates; text the matcher barely recognises gets the menu.
        if u.confidence >= 0.25 and len(plausible) >= 2 and u.candidates[:1] != ["out_of_scope"]:
            s.push()
            s.state, s.offered = "clarify", plausible
            options = "\n".join(f"{i}. {self.sc(c).menu_label}" for i, c in enumerate(plausible, 1))
            return [render_text(self.kb, "clarify", options=options)]
        if s.state == "menu":
            return [render_text(self.kb, "menu_reprompt")]
        return self.menu(s)

