"""Drive multi-turn conversations through the real pipeline and score every turn.

A conversation file is JSONL, one conversation per line::

    {"id": "c01", "situation": "fraud_victim",
     "turns": [{"user": "...", "must_any": [["110", "报警"], ["止付"]], "must_not": ["没看懂"]}]}

A turn passes when, in all replies of that turn joined together, every ``must_any`` group has
at least one of its alternatives as a substring, no ``must_not`` substring occurs, and the
reply is not a fallback (the bot's "didn't understand" answers). A conversation passes when
all its turns pass. Each conversation is a fresh user; messages go through
``Pipeline.handle`` exactly as the HTTP API sends them (channel ``http``, a fresh msg_id).

Field names vary between authors, so a few spellings are accepted (``text``/``user``/``say``,
``scenario``/``situation``, ``must``/``must_any``).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from bot.models import IncomingMessage
from bot.pipeline import Pipeline
from knowledge.render import VAR_RE, render
from knowledge.schema import KnowledgeBase

FALLBACK_KEYS = ("reprompt", "menu_reprompt", "clarify", "unclear_midflow")
"""texts.yaml answers that mean "I did not understand this" (asking back counts as not
answering: a clarifying question or a list of options in place of an answer is a fallback for
the figures; an answer followed by other options, `qa_also`, is not)."""
FALLBACK_MARKS = ("没看懂",)


class Turn(BaseModel):
    text: str
    must_any: list[list[str]] = Field(default_factory=list)
    must_not: list[str] = Field(default_factory=list)
    allow_fallback: bool = False
    scenario: str | None = None
    """When set, the outcome's scenario must be this one."""
    why: str = ""


class Conversation(BaseModel):
    id: str
    situation: str = "?"
    turns: list[Turn]


class TurnResult(BaseModel):
    conversation: str
    situation: str
    index: int
    text: str
    reply: str
    ok: bool
    why: list[str]
    intent: str = ""


class ConversationReport(BaseModel):
    path: str
    conversations: int
    conversations_ok: int
    turns: int
    turns_ok: int
    follow_turns: int
    follow_turns_ok: int
    per_situation: dict[str, tuple[int, int, int, int]]
    """situation → (turns ok, turns, conversations ok, conversations)."""
    failures: list[TurnResult]

    @property
    def turn_rate(self) -> float:
        return self.turns_ok / self.turns if self.turns else 0.0

    @property
    def conversation_rate(self) -> float:
        return self.conversations_ok / self.conversations if self.conversations else 0.0


def _pick(raw: dict[str, Any], *names: str, default: Any = None) -> Any:
    for name in names:
        if name in raw:
            return raw[name]
    return default


def _groups(value: Any) -> list[list[str]]:
    if not value:
        return []
    out: list[list[str]] = []
    for g in value:
        out.append([str(x) for x in g] if isinstance(g, list) else [str(g)])
    return out


def parse_turn(raw: dict[str, Any] | str) -> Turn:
    if isinstance(raw, str):
        return Turn(text=raw)
    checks = _pick(raw, "check", "checks", "expect", default={}) or {}
    if not isinstance(checks, dict):
        checks = {}
    must_any = _groups(_pick(raw, "must_any", "must", "any_of", default=None) or checks.get("must_any"))
    must_not = _pick(raw, "must_not", "forbid", "none_of", default=None) or checks.get("must_not") or []
    return Turn(
        text=str(_pick(raw, "text", "user", "say", "message", "input", default="")),
        must_any=must_any,
        must_not=[str(x) for x in must_not],
        allow_fallback=bool(_pick(raw, "allow_fallback", default=False)),
        scenario=_pick(raw, "scenario", default=None) or checks.get("scenario"),
        why=str(_pick(raw, "why", default="")),
    )


def load_conversations(path: str | Path) -> list[Conversation]:
    out: list[Conversation] = []
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            raw = json.loads(line)
            turns = [parse_turn(t) for t in _pick(raw, "turns", "messages", "dialog", default=[])]
            out.append(Conversation(
                id=str(_pick(raw, "id", "conv_id", "name", default=f"c{n + 1}")),
                situation=str(_pick(raw, "situation", "scenario", "category", default="?")),
                turns=turns,
            ))
    return out


def _opening(kb: KnowledgeBase, key: str) -> str:
    """The fixed start of a fallback template: its first line, up to the first variable."""
    template = kb.texts[key]
    var = VAR_RE.search(template)
    return render(kb, template[: var.start()] if var else template).split("\n", 1)[0]


def is_fallback(kb: KnowledgeBase, reply: str) -> bool:
    if any(mark in reply for mark in FALLBACK_MARKS):
        return True
    return any(key in kb.texts and _opening(kb, key) in reply for key in FALLBACK_KEYS)


def check_turn(kb: KnowledgeBase, turn: Turn, reply: str, scenario: str | None = None) -> list[str]:
    """Why a turn fails (empty: it passes)."""
    why: list[str] = []
    if turn.scenario and scenario != turn.scenario:
        why.append(f"scenario {scenario} ≠ {turn.scenario}")
    for group in turn.must_any:
        if not any(alt in reply for alt in group):
            why.append("missing one of " + "|".join(group))
    for bad in turn.must_not:
        if bad in reply:
            why.append(f"contains {bad!r}")
    if not reply.strip():
        why.append("no reply")
    elif not turn.allow_fallback and is_fallback(kb, reply):
        why.append("fallback reply")
    return why


async def run_conversations(pipeline: Pipeline, convs: list[Conversation], path: str = "") -> ConversationReport:
    results: list[TurnResult] = []
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    conv_ok = 0
    follow = follow_ok = 0
    run = uuid.uuid4().hex[:8]
    for conv in convs:
        user = f"eval-{run}-{conv.id}"
        all_ok = True
        for i, turn in enumerate(conv.turns):
            out = await pipeline.handle(IncomingMessage(
                channel="http", user_id=user, text=turn.text, msg_id=f"{user}-{i}"))
            reply = "\n".join(r.text for r in out.replies)
            why = check_turn(pipeline.kb, turn, reply, out.scenario)
            ok = not why
            all_ok &= ok
            stats = per[conv.situation]
            stats[0] += ok
            stats[1] += 1
            if i > 0:
                follow += 1
                follow_ok += ok
            results.append(TurnResult(conversation=conv.id, situation=conv.situation, index=i,
                                      text=turn.text, reply=reply, ok=ok, why=why, intent=turn.why))
        per[conv.situation][2] += all_ok
        per[conv.situation][3] += 1
        conv_ok += all_ok
    return ConversationReport(
        path=path,
        conversations=len(convs),
        conversations_ok=conv_ok,
        turns=len(results),
        turns_ok=sum(r.ok for r in results),
        follow_turns=follow,
        follow_turns_ok=follow_ok,
        per_situation={k: (v[0], v[1], v[2], v[3]) for k, v in sorted(per.items())},
        failures=[r for r in results if not r.ok],
    )


def format_report(r: ConversationReport, show_failures: bool = True) -> str:
    lines = [
        f"conversations: {r.path}",
        f"turns {r.turn_rate:.1%} ({r.turns_ok}/{r.turns}), "
        f"follow-up turns {r.follow_turns_ok / r.follow_turns if r.follow_turns else 0:.1%} "
        f"({r.follow_turns_ok}/{r.follow_turns}), "
        f"conversations {r.conversation_rate:.1%} ({r.conversations_ok}/{r.conversations})",
        "",
        f"{'situation':<16}{'turns':>12}{'convs':>10}",
    ]
    for sid, (tok, tn, cok, cn) in r.per_situation.items():
        lines.append(f"{sid:<16}{f'{tok}/{tn}':>12}{f'{cok}/{cn}':>10}")
    if show_failures and r.failures:
        lines += ["", "failed turns:"]
        for f in r.failures:
            reply = f.reply.replace("\n", " ⏎ ")
            lines.append(f"  [{f.conversation}#{f.index} {f.situation}] {f.text}   ({f.intent})")
            lines.append(f"      why: {'; '.join(f.why)}")
            lines.append(f"      bot: {reply[:300]}")
    return "\n".join(lines)


async def evaluate_files(paths: list[str], redis_url: str | None = None, show_failures: bool = True) -> list[ConversationReport]:
    """Run each file on a fresh pipeline (embedded Valkey unless ``redis_url`` is given)."""
    from bot.runtime import build_pipeline, make_redis
    from bot.settings import Settings
    from bot.store.embedded import EmbeddedValkey
    from knowledge.loader import load

    kb = load()
    with tempfile.TemporaryDirectory() as tmp:
        embedded = None
        url = redis_url
        if url is None:
            embedded = EmbeddedValkey(Path(tmp) / "valkey", persist=False)
            url = await asyncio.to_thread(embedded.start)
        redis = make_redis(url)
        try:
            settings = Settings(_env_file=None, data_dir=tmp, rate_user_per_min=10_000)
            pipeline = build_pipeline(settings, redis, kb)
            reports = []
            for path in paths:
                report = await run_conversations(pipeline, load_conversations(path), path)
                print(format_report(report, show_failures), end="\n\n", flush=True)
                reports.append(report)
            return reports
        finally:
            await redis.aclose()
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)
