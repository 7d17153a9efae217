"""The dialog step: ``step(kb, session, understood, now) -> (session, replies)``.

No I/O and no clock of its own: everything it needs comes in as arguments, so every flow is
testable without a server. The machine is small on purpose:

* states: ``start`` → ``menu`` / ``clarify`` → ``scenario`` (walking its steps), plus
  ``resume`` for a returning user;
* every message is one act (``dialogs.acts``): a command, a question, a live-scam move,
  progress, thanks, fear, a story …; ``dialogs.table`` says which handler below answers it
  in which state;
* global commands (``COMMANDS``) work in every state, in any natural phrasing;
* free text in any state may switch to the scenario it names, urgent reply first.

What is *said* lives in the knowledge base; this module only decides *which* template.

Why one file of ~580 lines: the handlers named in ``dialogs.table`` share one small set of
helpers (packing replies to a screen, "what is left", the legal note) and read best next to
each other; the decisions that are not about answering (the act, the table) already live in
their own modules.

Over the ~350-line guideline on purpose: it is one class whose methods are the handlers
``dialogs.table`` names, plus the scenario walking they share; splitting the handlers into a
mixin would scatter the helpers each one calls (show, enter, advance, answer) across files
without making any of them simpler. The decisions themselves live in ``dialogs.acts``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from dialogs.acts import (
    EMOTION_MAX_CHARS,
    EMOTION_YIELDS,
    FLOW_QUESTION_MIN,
    INTENT_STRONG,
    LIVE_FLOWS,
    Act,
    decide,
    in_flow,
)
from dialogs.session import Session
from dialogs.table import handler_for
from dialogs.understand import Command, Understood
from knowledge.loader import MAX_SCREEN_CHARS
from knowledge.render import hotline_number, kinds_text, law_citation, render, render_text, with_legal_note
from knowledge.schema import SCENARIO_IDS, KnowledgeBase, Scenario, Status

AMOUNT_SCENARIOS = frozenset({"fraud_victim", "wallet_loss"})
AMOUNT_LINE = 3000
"""电信网络诈骗 数额较大 starts at 3000 元 (2016 两高一部意见, knowledge brief §6.2)."""
HUGE_LINE = 30000
"""电信网络诈骗 数额巨大 starts at 3 万元 (same 意见)."""
OFF_TOPIC_SURE = 0.90
"""The matcher's confidence above which a mid-flow message is plainly about something else."""
THEN_QA_NEAR = 3
"""How near (rank among the readings) "what next" or a flag's ``then_qa`` must be to be the question."""

Replies = list[str]

QA_GUESS_MIN = 0.30
"""An unclear message in a flow gets the nearest curated answer at this similarity … (0.36 → 0.30:
on a fresh blind dev set more turns were answered right, none of the dev ones lost)"""
QA_GUESS_GAP = 0.05
"""… when it is this far ahead of the runner-up; otherwise the likeliest ones are offered."""
PROGRESS_QA_MIN = 0.40
"""Progress said together with a question ("报警了 钱多久能回来"): the ack, then the answer,
when the question is this near a curated one (a plain report asks nothing: 0.55 and up)."""
PROGRESS_QA_STRONG = 0.45
SMALL_AMOUNT_QA = frozenset({"should_report", "amount_line", "small_amount"})
"""Questions about reporting or filing that, asked with an amount under the 3000 元 line, are
the small-amount question ("就1200 要报警吗")."""
STATEMENT_QA_MIN = 0.25
STATEMENT_QA_GAP = 0.02
"""A statement in the current situation (a new detail, not a question) gets the nearest curated
answer at this similarity and lead; below it, the next step (the dev sets: most such details —
"他知道我支付密码", "账单上写的是亲属卡消费" — have their answer at the top from about 0.25)."""
QA_OFFER_MIN = 0.25
"""Questions at least this near are offered as numbered options."""

TOPIC_QA_MIN = 0.50
"""A law or hotline request whose rest is this near a curated question gets that answer."""
ACK_YIELDS = 0.42
"""A thanks or goodbye said with a question ("谢谢你 你叫啥名字"): the nearest question or command
this close is the act."""
CONTEXT_BONUS = 0.06
"""Similarity added to questions that belong to the current situation when re-ranking."""

ENTER_ANSWER_MIN = 0.30
ENTER_ANSWER_MARGIN = 0.05
"""A first message that names a situation also gets, after the urgent reply, the curated answer
its detail is nearest to ("柜台说是外地公安冻的" → who froze it; 0.50 → 0.30: on the blind dev
sets the detail's answer at 0.30 was right more often than not), unless a scenario example is
closer (the story with 怎么办 after it)."""

OOS_SETTLES = 0.80
"""An out-of-scope question answered outside a flow puts the session in out_of_scope at this confidence."""
QA_MOVES_FLOW = 0.95
"""Mid-flow, a curated question whose home situation (its first scenario) the matcher reads with
this confidence moves the flow there: the next "然后呢" goes on with that situation's steps
(unless the entry has an answer for the current situation: then it is asked in this one)."""

FROZEN_MOVE_QA = 0.45
"""Inside a frozen account, a move this near a curated question gets that answer (it says how
the move relates to the freeze); a move alone gets its countermeasure, and the flow stays."""

MOVE_KEEPS_SCENARIO = 0.55
"""A first message with a live-scam move starts the situation the matcher is this sure of
(the countermeasure follows); otherwise it starts scam_check."""


class Dialog:
    """Binds the knowledge base to the pure step functions."""

    def __init__(self, kb: KnowledgeBase, resume_after_s: float = 1800) -> None:
        self.kb = kb
        self.resume_after_s = resume_after_s
        self._urge = {f.id: re.compile("|".join(f"(?:{p})" for p in f.urges)) for f in kb.flags.values() if f.urges}

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
        s.last_move = None
        words = self.kb.words
        done_flag = words.urgent_done.get(sid) if words else None  # type: ignore[call-overload]
        if done_flag and done_flag in u.flags:  # "被骗了…已经报过警了": don't send them to 110 again
            s.mark_done(u.flags)
            labels = "、".join(self.kb.flags[f].label for f in u.flags)
            replies = [render_text(self.kb, "urgent_already", labels=labels), *self.advance(s)]
        else:
            replies = self.show(s)
            if u.flags:  # "我被骗了两千，还没报警 / 已经截图了": remember what is already done
                replies += self._progress(s, u)
        if u.amount is not None:
            replies += self.amount_note(s, sid, u.amount)
        replies += self.move_answers(s, u) or self.name_pattern(sid, u)
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
        if amount >= HUGE_LINE and "amount_huge" in self.kb.texts:
            key = "amount_huge"  # "八万五": 数额巨大, not only "past the 3000 line"
        if "reported" in s.done and f"{key}_reported" in self.kb.texts:
            key += "_reported"  # "被骗了两千 已经报警了": the amount's meaning, not "请打110" again
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
        then = self._then_qa(s, u)
        if then is not None and s.state == "scenario":  # "立案了 我还要做什么": what follows the report
            return self.answer(s, then, u)
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

    def _topic(self, u: Understood, law: bool) -> str | None:
        """The curated question a law or hotline request is about ("这算侵犯隐私吗 法律咋说的"),
        when the rest of the message is near one (and, for law, one whose answer cites law)."""
        qa_id = (u.asked or "")[3:]
        entry = self.kb.qa.get(qa_id)
        if u.command is not None or entry is None or u.asked_score < TOPIC_QA_MIN:
            return None
        return qa_id if (entry.touches_law or not law) else None

    def cmd_law(self, s: Session, u: Understood) -> Replies:
        topic = self._topic(u, law=True)
        if topic is not None:
            return self.answer(s, topic, u)
        """One short plain message with the exact citations; the text itself on 原文."""
        sc = self._need_scenario(s)
        if sc is not None and not sc.laws and "other_legal" in self.kb.qa:
            return self.answer(s, "other_legal", u)  # out of scope: say so and name 12348, not the menu
        if sc is None or not sc.laws:
            return self.menu(s)
        citations = "、".join(law_citation(self.kb, lid) for lid in sc.laws)
        summary = render_text(self.kb, "law_summary_header") + (render(self.kb, sc.law_intro) if sc.law_intro else "")
        return self.with_note([summary + "\n" + render_text(self.kb, "law_plain", citations=citations)], sc)

    def cmd_verbatim(self, s: Session, u: Understood) -> Replies:
        """原文 / 条文: the statute text itself, labelled as the verbatim text."""
        sc = self._need_scenario(s)
        if sc is None or not sc.laws:
            return self.menu(s)
        blocks = []
        for i, lid in enumerate(sc.laws):
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
        topic = self._topic(u, law=False)
        if topic is not None:
            return self.answer(s, topic, u)
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

    def cmd_first(self, s: Session, u: Understood) -> Replies:
        """"我该先做什么": the urgent reply of the current situation again."""
        sc = self._need_scenario(s)
        if sc is None:
            return self.menu(s)
        return [render(self.kb, sc.urgent)]

    COMMANDS: dict[Command, Callable[[Dialog, Session, Understood], Replies]] = {
        Command.menu: cmd_menu,
        Command.verbatim: cmd_verbatim,
        Command.first: cmd_first,
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
        s = s.model_copy(update={"back": list(s.back), "done": list(s.done), "offered": list(s.offered),
                                 "moves_answered": list(s.moves_answered),
                                 "offered_qa": list(s.offered_qa)})
        pre: Replies = []
        if u.secrets:
            pre.append(render_text(self.kb, "secret_warning", what=kinds_text(self.kb, u.secrets)))
        elif u.personal:
            pre.append(render_text(self.kb, "pii_warning", what=kinds_text(self.kb, u.personal)))
        replies = self._route(s, self.in_context(s, u), now)
        if u.truncated:
            pre.append(render_text(self.kb, "too_long"))
        s.turns += 1
        s.last_active = now
        return s, self.with_note(pre + replies)

    def _route(self, s: Session, u: Understood, now: float) -> Replies:
        act = decide(s, u, self.returning(s, now))
        offered_qa, s.offered_qa = s.offered_qa, []  # an offer of questions lasts one turn
        if act is Act.choice and offered_qa and 1 <= (u.choice or 0) <= len(offered_qa):
            return self.answer(s, offered_qa[(u.choice or 1) - 1])
        handler: Callable[[Session, Understood], Replies] = getattr(self, handler_for(s.state, act))
        replies = handler(s, u)
        if u.emotion and act not in (Act.social, Act.emotion) and not self._comforts(replies):
            replies = [render_text(self.kb, "calm"), *replies]
        return replies

    def in_context(self, s: Session, u: Understood) -> Understood:
        """Re-rank the follow-up readings with the situation: a question that belongs to the
        current scenario (``qa.yaml`` ``scenarios`` / ``by_scenario``) gets ``CONTEXT_BONUS``.
        Fear asked as a question takes the nearest curated question (``EMOTION_YIELDS``), and so
        does fear tacked onto a longer complaint ("95017一直排队 急死了": the complaint is the act)."""
        if u.intent == "social:emotion" and (u.question or u.chars > EMOTION_MAX_CHARS):
            asked = [(label, v) for label, v in u.alternatives if label.startswith("qa:") and v >= EMOTION_YIELDS]
            if asked:
                u = u.model_copy(update={"intent": asked[0][0], "intent_score": asked[0][1]})
        if u.intent in ("social:thanks", "social:bye") and u.question and not u.closing and not u.flags:
            # "好的谢谢 那我要带什么去派出所": the thanks is an ack, the question is the act
            # (with progress in it, on_progress already answers the question after the ack)
            asked = [(label, v) for label, v in u.alternatives
                     if not label.startswith("social:") and v >= ACK_YIELDS]
            if asked:
                u = u.model_copy(update={"intent": asked[0][0], "intent_score": asked[0][1]})
        if in_flow(s) and s.scenario == "scam_check" and u.scenario == "wallet_loss":
            # "来不及了 他操作转走了5000" during a live scam: the scam took it, so it is fraud
            u = u.model_copy(update={"scenario": "fraud_victim"})
        if not u.alternatives or not in_flow(s) or u.closing:
            return u
        sid = s.scenario or ""

        def score(item: tuple[str, float]) -> float:
            label, value = item
            entry = self.kb.qa.get(label[3:]) if label.startswith("qa:") else None
            if entry is not None and (sid in entry.scenarios or sid in entry.by_scenario):
                return value + CONTEXT_BONUS
            return value

        best = max(u.alternatives, key=score)
        if best[0] == u.intent or not best[0].startswith("qa:") or score(best) <= u.intent_score:
            return u
        return u.model_copy(update={"intent": best[0], "intent_score": min(1.0, score(best))})

    # -- act handlers (see dialogs.table) ---------------------------------------------
    def on_empty(self, s: Session, u: Understood) -> Replies:
        return [render_text(self.kb, "empty")]

    def on_nothing(self, s: Session, u: Understood) -> Replies:
        return []

    def on_command(self, s: Session, u: Understood) -> Replies:
        command = u.command
        if command is None and u.intent and u.intent.startswith("cmd:"):
            command = Command(u.intent[4:])
        if command is None:
            return self.on_unclear(s, u)
        if u.flags and in_flow(s):  # "冻结了 然后呢": remember it, then go on
            s.mark_done(u.flags)
        if (u.command is None and command in (Command.next, Command.first) and in_flow(s)
                and s.scenario == "scam_check"):
            # "我还要做什么吗" in a live scam asks what to do, not for the next scam pattern
            # (the exact word 下一步 still pages through them, as the urgent reply offers)
            s.state = "scenario"
            return [render_text(self.kb, "live_after")]
        return self.COMMANDS[command](self, s, u)

    def on_resume(self, s: Session, u: Understood) -> Replies:
        s.state = "resume"
        return [render_text(self.kb, "resume", title=self.sc(s.scenario or "out_of_scope").title)]

    def on_choice(self, s: Session, u: Understood) -> Replies:
        return self._choose(s, u)

    def on_amount(self, s: Session, u: Understood) -> Replies:
        amount = u.stated_amount
        if u.question and self._small(u) and "small_amount" in self.kb.qa:
            s.amount = amount  # "不到三千是不是就不管": the small-amount answer, not the amount's meaning
            return self.answer(s, "small_amount", u)
        if u.flags:  # "已经报警了 四万块啊": the sum's meaning for one who has reported, not "马上打110"
            s.mark_done(u.flags)
        return self.amount_note(s, s.scenario or "fraud_victim", amount or 0)

    def on_progress(self, s: Session, u: Understood) -> Replies:
        s.state = "scenario"  # "已报警" is progress in the current flow, whatever else it resembles
        replies = self._progress(s, u)
        intent, score = (u.asked, u.asked_score) if u.asked else (u.intent, u.intent_score)
        if (intent or "").startswith("social:"):  # "冻结好了，谢谢。手机卡要补吗": the thanks hides the question
            intent, score = next(((k, v) for k, v in u.alternatives if k.startswith("qa:")), (intent, score))
        asked = (intent or "").startswith("qa:") and (u.asked is not None or u.question) and (
            score >= PROGRESS_QA_STRONG or (u.question and score >= PROGRESS_QA_MIN))
        # (a message that is all report, "号已经冻了", asks nothing: its nearest question is noise)
        if asked and (intent or "")[3:] in self.kb.qa:  # "报警了 钱多久能回来": the ack, then the answer
            answer = self.answer(s, (intent or "")[3:], u)
            if not self._urges_again(u.flags, answer):  # never "马上打110" right after "报警了"
                return replies + answer
        if u.asked is None and not u.question and "progress_ack_next" in self.kb.texts:
            # "冻结了": a step done, nothing asked: the next one, as "下一步" would show it
            sc = self.sc(s.scenario or "out_of_scope")
            todo = next((i for i, st in enumerate(sc.steps, 1) if st.marks and st.marks not in s.done), None)
            if todo is not None:  # the next thing to do, not the next page (which may be a catalogue)
                labels = "、".join(self.kb.flags[f].label for f in u.flags)
                s.push()
                s.step = todo
                return [render_text(self.kb, "progress_ack_next", labels=labels), *self.show(s)]
        note: Replies = []
        if u.amount is not None and s.scenario in AMOUNT_SCENARIOS and s.scenario != "wallet_loss":
            # "报了 一万二啊", "我报了 18000能立案不": what the sum means (a theft's note sends
            # to 110 whatever was done)
            note = self.amount_note(s, s.scenario or "", u.amount)
            if self._urges_again(u.flags, note):  # never "请打110" right after "报警了"
                note = []
        then = self._then_qa(s, u)
        if then is not None:  # "受理了 后面还要干啥": the ack, then what follows the report
            return [render_text(self.kb, "progress_ack_short", labels=self._labels(u)), *note, *self.answer(s, then, u)]
        return replies + note

    def _labels(self, u: Understood) -> str:
        return "、".join(self.kb.flags[f].label for f in u.flags if f in self.kb.flags)

    def _then_qa(self, s: Session, u: Understood) -> str | None:
        """The curated "what now" for a report made in a question ("报了 接下来干啥"): the flag's
        ``then_qa``, when the message reads as "what next" or that question is among its nearest."""
        if not (u.question and u.flags and in_flow(s)):
            return None
        near = {label for label, _ in u.alternatives[:THEN_QA_NEAR]}
        for f in u.flags:
            qa_id = self.kb.flags[f].then_qa if f in self.kb.flags else None
            entry = self.kb.qa.get(qa_id or "")
            if entry is None or not (s.scenario in entry.scenarios or s.scenario in entry.by_scenario):
                continue
            if "cmd:next" in near or f"qa:{qa_id}" in near:
                return entry.id
        return None

    def _curated(self, label: str | None, score: float, least: float) -> str | None:
        """The curated question a reading names (``qa:<id>``), when it is at least ``least`` near."""
        qa_id = label[3:] if label and label.startswith("qa:") else ""
        return qa_id if qa_id in self.kb.qa and score >= least else None

    def _near_qa(self, u: Understood, least: float) -> str | None:
        """The curated question the whole message reads as."""
        return self._curated(u.intent, u.intent_score, least)

    def _asked_qa(self, u: Understood, least: float) -> str | None:
        """The curated question the rest of a report reads as ("挂了 我们现在就去派出所 要带什么":
        the part beside the report words)."""
        return self._curated(u.asked, u.asked_score, least)

    def _urges_again(self, flags: list[str], replies: Replies) -> bool:
        """Whether ``replies`` tell the user to do one of ``flags`` now (its ``urges``)."""
        return any(self._urge[f].search(r) for f in flags if f in self._urge for r in replies)

    def on_same_story(self, s: Session, u: Understood) -> Replies:
        s.state = "scenario"
        if u.flags:
            return self._progress(s, u)
        if u.question:  # a question about this situation: the nearest curated one, if it is near
            nearest = self._answer_nearest(s, u)
            if nearest:
                return nearest
        else:  # a new detail ("他知道我支付密码"): the curated answer it is nearest to beats the next page
            guess = self._qa_guess(s, u, gap=STATEMENT_QA_GAP, least=STATEMENT_QA_MIN)
            if guess is not None:
                return self.answer(s, guess, u)
        named = self.name_pattern(s.scenario or "out_of_scope", u)
        if named:
            return named
        if s.scenario == "scam_check":  # a new detail of a live scam: the rule that covers it, not the next page
            return [render_text(self.kb, "live_generic")]
        if s.scenario == "fraud_victim" and u.scenario == "scam_check" and "live_victim" in self.kb.texts:
            return [render_text(self.kb, "live_victim")]  # the scam that took money goes on
        return self.advance(s)

    def on_enter(self, s: Session, u: Understood) -> Replies:
        """Start (or switch to) the situation; a question asked in the same breath is answered after."""
        replies = self.enter(s, u.scenario or "out_of_scope", u)
        if (u.intent and u.intent.startswith("qa:") and u.intent_score >= ENTER_ANSWER_MIN
                and u.intent_score >= u.story_score + ENTER_ANSWER_MARGIN):
            replies += self.on_question(s, u)
        return replies

    def on_secrets(self, s: Session, u: Understood) -> Replies:
        return self.menu(s)

    def on_move(self, s: Session, u: Understood) -> Replies:
        """A live-scam move: the countermeasure now; outside a live flow, switch to scam_check."""
        relay = [m for m in u.moves if m in self.kb.moves and self.kb.moves[m].passes_money]
        in_place = bool(relay) or not any(self.kb.moves[m].switch for m in u.moves if m in self.kb.moves)
        if in_flow(s) and relay:  # "有人转给我 让我转到另一张卡 我转了": how the account got frozen, not a new loss
            s.state = "scenario"
            return self.move_answers(s, u.model_copy(update={"moves": relay}))
        if in_flow(s) and s.scenario in ("account_frozen", "account_rental"):
            # a move told inside a frozen account is most often why it was frozen ("有人转错钱
            # 让我退"), inside a rental the offer itself ("还有人让我刷流水"): answered there, by
            # the curated question it is near if there is one
            s.state = "scenario"
            asked = self._near_qa(u, FROZEN_MOVE_QA)
            if asked is not None:
                return self.answer(s, asked, u)
            return self.move_answers(s, u)
        if in_flow(s) and (s.scenario in LIVE_FLOWS or in_place) and (
                u.scenario != "fraud_victim" or s.scenario == "fraud_victim"):
            s.state = "scenario"
            return self.move_answers(s, u)
        if u.scenario == "fraud_victim":
            target = "fraud_victim"
        elif (not in_flow(s) and u.scenario not in (None, "scam_check", "out_of_scope")
              and u.confidence >= MOVE_KEEPS_SCENARIO):
            target = u.scenario or "scam_check"  # "快递信息被泄露，有人冒充客服理赔": the leak, plus the countermeasure
        elif (not in_flow(s) and "account_frozen" in u.candidates[:2] and (in_place or u.scenario == "account_frozen")
              and not (u.scenario == "scam_check" and u.confidence >= MOVE_KEEPS_SCENARIO)):
            # "微信被冻了 有人说交1000能解": the user's freeze, with the fee answered in it (a scam
            # the matcher is sure of — "网贷说账户冻结 要交钱解冻" — stays scam_check)
            target = "account_frozen"
        else:
            target = "scam_check"
        return self.enter(s, target, u)

    def move_answers(self, s: Session, u: Understood) -> Replies:
        named = [m for m in u.moves if m in self.kb.moves]
        # "他说不开共享就没法帮我关 会一直扣钱": the screen-share answer was given, answer what is new
        # (the new move first, the one the last reply was about last)
        moves = sorted(named, key=lambda m: (m == s.last_move, m in s.moves_answered))[:2]
        if not moves:
            return []
        s.last_move = moves[0]
        s.moves_answered = [*[m for m in s.moves_answered if m not in moves], *moves][-8:]
        return [render(self.kb, self.kb.moves[m].answer) for m in moves]

    def on_move_stopped(self, s: Session, u: Understood) -> Replies:
        move = self.kb.moves.get(s.last_move or "")
        s.last_move = None
        if u.flags:
            s.mark_done(u.flags)
        if move is None:  # hung up on a scam no move was named for: the general what-now
            s.state = "scenario"
            return [render_text(self.kb, "live_after")]
        replies = [render(self.kb, move.after)]
        asked = self._near_qa(u, INTENT_STRONG) or self._asked_qa(u, FLOW_QUESTION_MIN)
        if u.question and asked is not None:
            replies += self.answer(s, asked, u)  # "挂了 那要报警吗": what now, and the answer
        return replies

    def on_move_done(self, s: Session, u: Understood) -> Replies:
        """ "已经开了" right after a move: the countermeasure again, now it has happened."""
        move = self.kb.moves.get(s.last_move or "")
        if move is None:
            return self.on_unclear(s, u)
        s.state = "scenario"
        return [render(self.kb, move.answer)]

    def on_question(self, s: Session, u: Understood) -> Replies:
        entry = self.kb.qa.get((u.intent or "")[3:])
        if entry is None:
            return self.on_unclear(s, u)
        replies = self.answer(s, entry.id, u)
        if (u.amount is not None and u.amount != s.amount and in_flow(s) and s.scenario in AMOUNT_SCENARIOS
                and not any("数额" in r for r in replies)):
            # "8万能追回来吗": the answer, and (once) what a sum of this size means
            replies += self.amount_note(s, s.scenario or "", u.amount)
        return replies

    def answer(self, s: Session, qa_id: str, u: Understood | None = None) -> Replies:
        """A curated answer, in the situation's variant; the user's place stays where it was."""
        u = u or Understood()
        if qa_id in SMALL_AMOUNT_QA and self._small(u) and "small_amount" in self.kb.qa:
            qa_id = "small_amount"  # "就1200 要报警吗": the answer for amounts under the line
        entry = self.kb.qa[qa_id]
        if s.state == "resume":
            s.state = "scenario"
        if not in_flow(s) and u.scenario == "out_of_scope" and u.confidence >= OOS_SETTLES:
            s.push()  # "房东不退押金能告他吗": answered, and the next message is read in that context
            s.state, s.scenario, s.step, s.offered = "scenario", "out_of_scope", 0, []
        if (in_flow(s) and entry.scenarios and u.scenario == entry.scenarios[0] != s.scenario
                and (s.scenario or "") not in entry.by_scenario and u.confidence >= QA_MOVES_FLOW):
            s.push()  # "我是不是也被盗了" mid fraud_victim: answered, and the flow is now the stolen account
            s.state, s.scenario, s.step, s.offered = "scenario", u.scenario, 0, []
        if u.flags and in_flow(s):
            s.mark_done(u.flags)
        template = entry.by_scenario.get(s.scenario or "", entry.answer) if in_flow(s) else entry.answer  # type: ignore[call-overload]
        replies = [render(self.kb, template)]
        if entry.touches_law:
            note = render_text(self.kb, "legal_note")
            replies = [replies[0] + "\n" + note] if len(replies[0]) + len(note) < MAX_SCREEN_CHARS else [*replies, note]
        return replies

    def on_social(self, s: Session, u: Understood) -> Replies:
        act = (u.intent or "")[7:]
        if act == "emotion":
            return self.on_emotion(s, u)
        if act == "greeting":
            if in_flow(s) and s.scenario != "out_of_scope":  # "其他问题" is no place to keep: the menu is
                s.state = "scenario"
                return [render_text(self.kb, "greeting_midflow", title=self.sc(s.scenario or "out_of_scope").title)]
            return self.menu(s)
        if act == "relief":
            return [render_text(self.kb, "relief")]
        close = render_text(self.kb, "thanks_close" if act == "thanks" else "bye_close",
                            left=self._left(s, police_visit=u.police_visit))
        if u.self_blame and "self_blame" in self.kb.texts:  # "谢谢 我真蠢": comfort before the close
            close = render_text(self.kb, "self_blame") + "\n" + close
        return [close]

    def on_emotion(self, s: Session, u: Understood) -> Replies:
        """One calm line (for self-blame: it is not your fault), then the next action where the user is."""
        calm = render_text(self.kb, "self_blame" if u.self_blame and "self_blame" in self.kb.texts else "calm")
        if in_flow(s):
            s.state = "scenario"
            return [calm, *self.show(s)]
        return [calm + "\n" + render_text(self.kb, "emotion_start")]

    def on_unclear(self, s: Session, u: Understood) -> Replies:
        return self._unclear(s, u)

    def on_off_topic(self, s: Session, u: Understood) -> Replies:
        """Mid-flow, a message plainly about something else ("今天天气咋样"): say what the bot
        covers and where the user is, not "没看懂" (a follow-up the matcher misread as off-topic
        still gets its nearest curated answer first)."""
        if (u.confidence < OFF_TOPIC_SURE or s.scenario in LIVE_FLOWS  # a live scam's odd detail stays one
                or "off_topic_midflow" not in self.kb.texts):
            return self._unclear(s, u)
        s.state = "scenario"
        nearest = self._answer_nearest(s, u)
        if nearest:
            return nearest
        return [render_text(self.kb, "off_topic_midflow", title=self.sc(s.scenario or "out_of_scope").title)]

    # -- helpers for the handlers -----------------------------------------------------
    @staticmethod
    def _small(u: Understood) -> bool:
        """An amount under the 3000 元 line, or "不到三千" (the line itself as an upper bound)."""
        amount = u.stated_amount
        return amount is not None and (amount < AMOUNT_LINE or (u.below_line and amount <= AMOUNT_LINE))

    def _left(self, s: Session, police_visit: bool = False) -> str:
        """What is still to do in the current flow, for a warm close, with the situation's one
        reminder (``closing``; "好 我先去派出所了 谢谢": what to bring and keep there instead)."""
        if not in_flow(s):
            return render_text(self.kb, "left_none")
        sc = self.sc(s.scenario or "out_of_scope")
        left = self.remaining(sc, s)
        said = render_text(self.kb, "left_some", remaining="；".join(left)) if left else render_text(self.kb, "left_none")
        if police_visit and "close_police" in self.kb.texts:
            closing = self.kb.texts["close_police"]
        else:  # a situation left for another ("名下号码涉诈" that turned into a live scam) keeps its reminder
            closing = sc.closing or next((c for p in reversed(s.back) if p.scenario and (c := self.sc(p.scenario).closing)), "")
        return said + "\n" + render(self.kb, closing) if closing else said

    def _comforts(self, replies: Replies) -> bool:
        calm = render_text(self.kb, "calm")
        return any(r.startswith(calm[:2]) for r in replies)

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
        if in_flow(s) and not s.offered:  # "1" mid-flow with nothing offered: go on, don't say 没看懂
            s.state = "scenario"
            return self.advance(s)
        return self._unclear(s, u)

    def _progress(self, s: Session, u: Understood) -> Replies:
        sc = self.sc(s.scenario or "out_of_scope")
        new = s.mark_done(u.flags)
        labels = "、".join(self.kb.flags[f].label for f in (new or u.flags))
        return [render_text(self.kb, "progress_ack", labels=labels) + "\n" + self.left_text(sc, s)]

    def _qa_candidates(self, s: Session, u: Understood) -> list[tuple[str, float]]:
        """Q&A readings of the message, re-scored in the situation, best first."""
        sid = s.scenario or ""
        out = []
        for label, value in u.alternatives:
            entry = self.kb.qa.get(label[3:]) if label.startswith("qa:") else None
            if entry is None:
                continue
            bonus = CONTEXT_BONUS if (sid in entry.scenarios or sid in entry.by_scenario) else 0.0
            out.append((entry.id, value + bonus))
        return sorted(out, key=lambda x: -x[1])

    def _qa_guess(self, s: Session, u: Understood, gap: float = QA_GUESS_GAP, least: float = QA_GUESS_MIN) -> str | None:
        """The nearest curated question when it is near enough and clearly ahead of the next
        (``gap``: a question that asks something is better answered by the nearest entry than
        by a list of options)."""
        cands = self._qa_candidates(s, u)
        if not cands or cands[0][1] < least:
            return None
        if len(cands) > 1 and cands[0][1] - cands[1][1] < gap:
            return None
        return cands[0][0]

    def _answer_nearest(self, s: Session, u: Understood) -> Replies:
        """The nearest curated answer when it is near (a question needs no lead over the next);
        when it is only near-ish, still answer the likeliest reading first (a frightened user
        should not have to pick from a list) and offer the runners-up as numbered choices.
        Nothing when no curated question is even near."""
        guess = self._qa_guess(s, u, gap=0.0 if u.question else QA_GUESS_GAP)
        if guess is not None:
            return self.answer(s, guess, u)
        likely = [q for q, v in self._qa_candidates(s, u) if v >= QA_OFFER_MIN][:3]
        if not likely:
            return []
        replies = self.answer(s, likely[0], u)
        s.offered_qa = likely[1:]
        if not s.offered_qa:
            return replies
        lines = "\n".join(f"{i}. {self.kb.qa[q].paraphrases[0]}？" for i, q in enumerate(likely[1:], 1))
        return [*replies, render_text(self.kb, "qa_also", options=lines)]

    def _unclear(self, s: Session, u: Understood) -> Replies:
        if in_flow(s):
            s.state = "scenario"
            nearest = self._answer_nearest(s, u)
            if nearest:
                return nearest
            if s.scenario == "scam_check":  # a detail of a live scam we cannot place: the rules that hold anyway
                return [render_text(self.kb, "live_generic")]
            if u.detail and s.scenario != "out_of_scope":  # "一共4笔 每笔499": what to do with such facts
                key = "detail_noted_money" if s.scenario in AMOUNT_SCENARIOS else "detail_noted"
                return [render_text(self.kb, key) + "\n" + self.left_text(self.sc(s.scenario or ""), s)]
            return [render_text(self.kb, "unclear_midflow", title=self.sc(s.scenario or "out_of_scope").title)]
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

