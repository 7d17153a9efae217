"""``kb check``'s second half: render every path a user can reach and read it as they would.

``knowledge.checks.problems`` checks the data; this walks the code that assembles messages
(the pure dialog, the group answers and warnings, the weekly tips) over every scenario,
command and pattern, and checks each batch of messages the way it would be sent: the
not-legal-advice line after the last law citation, every 🟡 number and menu path hedged,
every message within one phone screen. No Redis and no network: the dialog is pure and the
group texts are plain functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.group_rules import alert_text, short_answer_text
from bot.tips import WEEK_S, tip_for
from dialogs.engine import Dialog
from dialogs.session import Session
from dialogs.understand import Command, Understood
from knowledge.render import CITATION_RE, MAX_SCREEN_CHARS, cites_law, render_text
from knowledge.schema import SCENARIO_IDS, KnowledgeBase, Status

_COMMANDS = (Command.law, Command.hotlines, Command.evidence, Command.traps, Command.human)


def _dialog_batches(kb: KnowledgeBase) -> Iterator[tuple[str, list[str]]]:
    """(where, messages of one turn) for the menu, every scenario's steps and every command."""
    dialog = Dialog(kb)
    for index, sid in enumerate(SCENARIO_IDS, 1):
        s, out = dialog.step(Session(), Understood(choice=index), 0.0)
        yield f"dialog {sid}: first reply", out
        for amount in (800, 5000):
            _, out = dialog.step(s, Understood(amount=amount), 1.0)
            yield f"dialog {sid}: amount {amount}", out
        for command in _COMMANDS:
            _, out = dialog.step(s, Understood(command=command), 1.0)
            yield f"dialog {sid}: {command.value}", out
        for n in range(len(kb.scenarios[sid].steps) + 1):
            s, out = dialog.step(s, Understood(command=Command.next), 2.0 + n)
            yield f"dialog {sid}: step {n + 1}", out


def _group_batches(kb: KnowledgeBase) -> Iterator[tuple[str, list[str]]]:
    for sid in SCENARIO_IDS:
        yield f"group answer {sid}", [short_answer_text(kb, sid)]
    for pid, pattern in kb.patterns.items():
        if pattern.group_alert:
            yield f"group warning {pid}", [alert_text(kb, pid, "某" * 16)]
    yield "group warning (no pattern fits)", [alert_text(kb, None, "某" * 16)]
    tips = sorted(k for k in kb.texts if k.startswith("tip_"))
    for week in range(len(tips)):
        yield f"weekly tip {week + 1}", [tip_for(kb, week * WEEK_S)]


def batch_problems(kb: KnowledgeBase, where: str, messages: list[str]) -> list[str]:
    """What is wrong with one batch of outgoing messages, as a reader would see them."""
    out: list[str] = []
    note = render_text(kb, "legal_note")
    out += [f"{where}: message {i + 1} is {len(m)} characters, more than one screen"
            for i, m in enumerate(messages) if len(m) > MAX_SCREEN_CHARS]
    citing = [i for i, m in enumerate(messages) if cites_law(m)]
    if citing:
        last = citing[-1]
        end = [m.end() for m in CITATION_RE.finditer(messages[last])][-1]
        if note not in messages[last][end:] + "\n".join(messages[last + 1:]):
            out.append(f"{where}: cites law without the legal note after it")
    text = "\n".join(messages)
    hedge_hotline, hedge_proc = kb.texts["hedge_hotline"], kb.texts["hedge_proc"]
    for h in kb.hotlines.values():
        if h.status is Status.partial:
            for m in re.finditer(rf"(?<![\d.\-a-z]){re.escape(h.number)}(?![\d.])", text):
                if not text[m.end():].startswith(hedge_hotline):
                    out.append(f"{where}: 🟡 {h.number} shown without its hedge")
    for p in kb.procedures.values():
        if p.status is Status.partial:
            for m in re.finditer(re.escape(p.path), text):
                if not text[m.end():].startswith(hedge_proc):
                    out.append(f"{where}: 🟡 menu path {p.id} shown without its hedge")
    return out


def rendering_problems(kb: KnowledgeBase) -> list[str]:
    """Every problem found on every reachable rendering path; empty means all is well."""
    out: list[str] = []
    for where, messages in [*_dialog_batches(kb), *_group_batches(kb)]:
        out += batch_problems(kb, where, messages)
    return sorted(set(out), key=out.index)
