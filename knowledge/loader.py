"""Load the knowledge files, validate them, and refuse to start on any problem.

A reply that cites an unknown law, an unverified hotline or a made-up article number is
worse than no reply, so every such problem is a start-up error here, and ``python -m bot
kb check`` prints the whole list. The rules are in ``problems()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from knowledge.render import (
    MAX_SCREEN_CHARS,
    REF_RE,
    VAR_RE,
    RenderError,
    cites_law,
    law_citation,
    referenced_ids,
    render,
    with_legal_note,
)
from knowledge.schema import (
    SCENARIO_IDS,
    Hotline,
    KnowledgeBase,
    Law,
    Procedure,
    ProgressFlag,
    ScamPattern,
    Scenario,
    Status,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
__all__ = ["MAX_SCREEN_CHARS", "KnowledgeError", "load", "problems", "read"]

ARTICLE_RE = re.compile(r"第[零一二三四五六七八九十百千〇两\d]+条")
# A run of 3+ digits that is not an amount, a date or a count: most likely a phone number.
PHONE_LIKE_RE = re.compile(
    r"(?<![\d.])\d[\d\-]{2,}(?![\d.]*\s*(?:元|块|万|千|条|次|人|个|张|%|年|月|日|号|字|分钟|小时|天))"
)


REQUIRED_TEXTS: dict[str, frozenset[str]] = {
    key: frozenset(variables.split())
    for key, variables in {
        "menu": "options", "clarify": "options", "reprompt": "", "menu_reprompt": "",
        "steps_done": "title remaining", "at_first_step": "", "progress_ack": "labels",
        "remaining": "remaining", "nothing_left": "", "resume": "title", "legal_note": "",
        "human": "hotlines", "hotlines_header": "", "evidence_header": "", "traps_header": "",
        "law_header": "", "law_summary_header": "", "amount_big": "amount", "amount_small": "amount",
        "amount_theft": "amount", "steps_done_unmarked": "", "hotline_also": "number",
        "secret_warning": "what", "pii_warning": "what", "rate_limited": "",
        "static_fallback": "", "error_fallback": "", "non_text": "", "empty": "", "too_long": "",
        "also_offer": "titles", "pattern_named": "pattern giveaway",
        "group_intro": "", "group_mention_suffix": "", "group_alert": "name pattern giveaway laws",
        "group_alert_no_law": "name pattern giveaway", "group_alert_unnamed": "name",
        "group_admin_only": "", "group_alerts_on": "", "group_alerts_off": "",
        "group_stats": "alerts mentions state", "group_help": "", "group_tips_on": "",
        "group_tips_off": "", "group_keywords_on": "", "group_keywords_off": "",
        "group_mention_menu": "", "state_on": "", "state_off": "", "someone": "",
        "kind_code": "", "kind_password": "", "kind_id_number": "", "kind_bank_card": "",
        "kind_mobile": "", "kind_digits": "", "hedge_hotline": "", "hedge_proc": "", "hedge_law": "",
        # the web chat page (bot/webchat.py)
        "web_header": "", "web_emergency": "", "web_offline": "", "web_error": "", "web_token_missing": "",
        "web_token_wrong": "", "web_notice_title": "",
    }.items()
}
"""Every texts.yaml key the code uses, with the variables its template may contain."""

CHANNEL_TEXTS: dict[str, frozenset[str]] = {
    "mp_welcome": frozenset(), "kf_welcome": frozenset(), "kf_handoff": frozenset(),
    "kf_handoff_failed": frozenset(),
}
"""Keys of texts_channels.yaml (the 公众号 and 微信客服 channels), same rules as REQUIRED_TEXTS."""


class KnowledgeError(Exception):
    """The knowledge base is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("knowledge base invalid:\n" + "\n".join(f"- {p}" for p in problems))
        self.problems = problems


def _read_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _registry(path: Path, model: type[BaseModel], problems: list[str]) -> dict[str, Any]:
    """Validate a YAML list of registry entries into an id → model dict."""
    out: dict[str, Any] = {}
    if not path.exists():
        problems.append(f"{path.name}: missing")
        return out
    for i, raw in enumerate(_read_yaml(path) or []):
        try:
            item = model.model_validate(raw)
        except ValidationError as exc:
            problems.append(f"{path.name}[{i}]: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
            continue
        if item.id in out:  # type: ignore[attr-defined]
            problems.append(f"{path.name}: duplicate id {item.id!r}")  # type: ignore[attr-defined]
        out[item.id] = item  # type: ignore[attr-defined]
    return out


def _examples(directory: Path) -> dict[str, list[str]]:
    """Training phrasings per scenario: one per line, '#' starts a comment."""
    out: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.txt")):
        lines = (ln.strip() for ln in path.read_text(encoding="utf-8").splitlines())
        out[path.stem] = [ln for ln in lines if ln and not ln.startswith("#")]
    return out


def read(data_dir: Path = DATA_DIR) -> tuple[KnowledgeBase | None, list[str]]:
    """Parse every file; return the knowledge base (if it parsed) and schema problems."""
    problems: list[str] = []
    laws = _registry(data_dir / "laws.yaml", Law, problems)
    hotlines = _registry(data_dir / "hotlines.yaml", Hotline, problems)
    procedures = _registry(data_dir / "procedures.yaml", Procedure, problems)
    patterns = _registry(data_dir / "patterns.yaml", ScamPattern, problems)
    flags = _registry(data_dir / "flags.yaml", ProgressFlag, problems)
    scenarios: dict[str, Scenario] = {}
    for path in sorted((data_dir / "scenarios").glob("*.yaml")):
        try:
            sc = Scenario.model_validate(_read_yaml(path))
        except ValidationError as exc:
            err = exc.errors()[0]
            problems.append(f"scenarios/{path.name}: {err['loc']}: {err['msg']}")
            continue
        scenarios[sc.id] = sc
    texts_path = data_dir / "texts.yaml"
    texts = _read_yaml(texts_path) if texts_path.exists() else None
    if not isinstance(texts, dict):
        problems.append("texts.yaml: missing or not a mapping")
        texts = {}
    for extra_path in sorted(data_dir.glob("texts_*.yaml")):  # more texts, one file per owner
        extra = _read_yaml(extra_path)
        if not isinstance(extra, dict):
            problems.append(f"{extra_path.name}: not a mapping")
            continue
        for key, value in extra.items():
            if key in texts:
                problems.append(f"{extra_path.name}: key {key!r} already defined")
            texts[key] = value
    try:
        kb = KnowledgeBase(
            laws=laws,
            hotlines=hotlines,
            procedures=procedures,
            patterns=patterns,
            flags=flags,
            scenarios={sid: scenarios[sid] for sid in SCENARIO_IDS if sid in scenarios},
            texts={str(k): str(v) for k, v in texts.items()},
            examples=_examples(data_dir / "examples"),
        )
    except ValidationError as exc:
        problems.append(str(exc))
        return None, problems
    return kb, problems


def scenario_templates(sc: Scenario) -> Iterator[tuple[str, str, bool]]:
    """(where, template, is_one_message) for every user-facing template of a scenario."""
    yield f"{sc.id}.urgent", sc.urgent, True
    yield f"{sc.id}.law_intro", sc.law_intro, False
    yield f"{sc.id}.group_answer", sc.group_answer, True
    for st in sc.steps:
        yield f"{sc.id}.steps.{st.id}", st.text, True
    for i, item in enumerate(sc.evidence):
        yield f"{sc.id}.evidence[{i}]", item, False
    for i, item in enumerate(sc.traps):
        yield f"{sc.id}.traps[{i}]", item, False


def all_templates(kb: KnowledgeBase) -> Iterator[tuple[str, str, bool]]:
    for sc in kb.scenarios.values():
        yield from scenario_templates(sc)
    for key, text in kb.texts.items():
        yield f"texts.{key}", text, True
    for p in kb.patterns.values():
        yield f"patterns.{p.id}.giveaway", p.giveaway, False
        yield f"patterns.{p.id}.name", p.name, False
    for h in kb.hotlines.values():
        yield f"hotlines.{h.id}.use", h.use, False
        if h.not_for:
            yield f"hotlines.{h.id}.not_for", h.not_for, False
    for proc in kb.procedures.values():
        if proc.detail:
            yield f"procedures.{proc.id}.detail", proc.detail, False


URGENT_ACTIONS: dict[str, tuple[str, str]] = {
    # action → ("ref", reference the urgent template must contain) or ("text", regex on the
    # rendered reply). Brief §8.2 unless noted.
    "report_police": ("ref", "{hotline:110}"),  # 1. 立刻报警
    "freeze_account": ("ref", "{proc:freeze_account}"),  # 2. 冻结微信帐号
    "payment_support": ("ref", "{hotline:95017}"),  # 2. 联系微信支付客服
    "bank": ("text", r"银行"),  # 2. 通知银行挂失或冻结
    "save_evidence": ("text", r"截图|保存|证据|留下"),  # 3. 保存证据
    "warn_friends": ("text", r"亲友"),  # 4. 告诉亲友
    "no_paid_recovery": ("text", r"追回|追款"),  # 5. 不要找“追款”服务
    "stop_paying": ("text", r"不再付|别再付|不要再付"),  # §9.1/§9.6/§9.7: 继续要钱
    "change_passwords": ("text", r"密码"),  # §8.1 解冻前修改密码
    "stop_and_take_back": ("text", r"停止.{0,12}收回"),  # §9.3 / 反诈法第三十一条
    "legal_advice": ("ref", "{hotline:12348}"),  # §8 12348 免费法律咨询
    "name_helping_crime": ("ref", "{law:xf_287_2}"),  # §1.6, §9.3 帮信罪
}
"""How ``kb check`` recognises each ``UrgentAction`` in a scenario's urgent reply."""

# 🟡 registry items a template might name by hand, bypassing the hedge its reference adds.
_HAND_WRITTEN = re.compile(
    r"weixin110|110\.qq\.com|腾讯110|腾讯客服|(?<![.\da-zA-Z])(?:95017|12348|12321|12377|12378)(?![.\d])"
)
# A law quoted only in part: the brief names a further paragraph next to the quotation.
_OTHER_PARA_RE = re.compile(r"第([一二三四五六七八九十]+)款|本条共|只引了")


def _status_of(kb: KnowledgeBase, kind: str, ref_id: str) -> Status | None:
    registries: dict[str, dict[str, Any]] = {
        "law": kb.laws,
        "hotline": kb.hotlines,
        "proc": kb.procedures,
        "howto": kb.procedures,
        "pattern": {},
    }
    item = registries[kind].get(ref_id)
    return getattr(item, "status", None)


def _check_ids(where: str, ids: Iterable[str], registry: dict[str, Any], kind: str) -> list[str]:
    return [f"{where}: unknown {kind} id {i!r}" for i in ids if i not in registry]


def problems(kb: KnowledgeBase, brief_text: str | None = None) -> list[str]:
    """Every rule the knowledge base must satisfy; an empty list means it is valid."""
    out: list[str] = []
    missing = [sid for sid in SCENARIO_IDS if sid not in kb.scenarios]
    out += [f"scenario {sid}: missing" for sid in missing]

    for sc in kb.scenarios.values():
        out += _check_ids(f"{sc.id}.laws", sc.laws, kb.laws, "law")
        out += _check_ids(f"{sc.id}.hotlines", sc.hotlines, kb.hotlines, "hotline")
        out += _check_ids(f"{sc.id}.urgent_hotlines", sc.urgent_hotlines, kb.hotlines, "hotline")
        out += _check_ids(f"{sc.id}.patterns", sc.patterns, kb.patterns, "pattern")
        for hid in sc.urgent_hotlines:
            if f"{{hotline:{hid}}}" not in sc.urgent:
                out.append(f"{sc.id}.urgent: does not name its urgent hotline {hid!r}")
        out += _urgent_must_problems(kb, sc)
        for st in sc.steps:
            if st.marks and st.marks not in kb.flags:
                out.append(f"{sc.id}.steps.{st.id}: unknown flag {st.marks!r}")
        if sc.touches_law and "legal_note" not in kb.texts:
            out.append("texts.legal_note: missing (needed by scenarios that touch law)")
        if sc.id not in kb.examples or len(kb.examples[sc.id]) < 10:
            out.append(f"examples/{sc.id}.txt: fewer than 10 example phrasings")
    for key, allowed in {**REQUIRED_TEXTS, **CHANNEL_TEXTS}.items():
        if key not in kb.texts:
            out.append(f"texts.{key}: missing")
            continue
        extra = set(VAR_RE.findall(REF_RE.sub("", kb.texts[key]))) - allowed
        if extra:
            out.append(f"texts.{key}: unknown variable(s) {sorted(extra)}; allowed {sorted(allowed)}")
    for p in kb.patterns.values():
        out += _check_ids(f"patterns.{p.id}.laws", p.laws, kb.laws, "law")
        for rule in p.rules:
            for rx in rule:
                try:
                    re.compile(rx)
                except re.error as exc:
                    out.append(f"patterns.{p.id}: bad regex {rx!r}: {exc}")
    for f in kb.flags.values():
        for rx in f.phrases:
            try:
                re.compile(rx)
            except re.error as exc:
                out.append(f"flags.{f.id}: bad regex {rx!r}: {exc}")

    # Registry items cited in reply lists must not be unverified.
    cited: list[tuple[str, str, str]] = []
    for sc in kb.scenarios.values():
        cited += [(f"{sc.id}.laws", "law", i) for i in sc.laws]
        cited += [(f"{sc.id}.hotlines", "hotline", i) for i in sc.hotlines]
    for p in kb.patterns.values():
        cited += [(f"patterns.{p.id}.laws", "law", i) for i in p.laws]

    for where, template, one_message in all_templates(kb):
        bare = REF_RE.sub("", template)
        if ARTICLE_RE.search(bare):
            out.append(f"{where}: article number written by hand; use {{law:id}}")
        if PHONE_LIKE_RE.search(bare):
            out.append(f"{where}: number written by hand ({PHONE_LIKE_RE.search(bare).group(0)}); use {{hotline:id}}")  # type: ignore[union-attr]
        cited += [(where, kind, rid) for kind, rid in referenced_ids(template)]
        try:
            text = render(kb, template, _SAMPLE_VARS)
        except RenderError as exc:
            out.append(f"{where}: {exc.args[0]}")
            continue
        if one_message and len(text) > MAX_SCREEN_CHARS:
            out.append(f"{where}: {len(text)} characters, more than one screen ({MAX_SCREEN_CHARS})")

    for where, kind, rid in cited:
        if kind == "pattern":
            if rid not in kb.patterns:
                out.append(f"{where}: unknown pattern id {rid!r}")
            continue
        status = _status_of(kb, kind, rid)
        if status is Status.unverified:
            out.append(f"{where}: cites unverified (❌) {kind} {rid!r}")

    for law in kb.laws.values():
        if len(f"{law.short}{law.article}\n{law.text}") > MAX_SCREEN_CHARS:
            out.append(f"laws.{law.id}: quotation longer than one screen")
    out += _legal_note_problems(kb)
    out += _hedge_problems(kb)
    if brief_text is not None:
        out += _against_brief(kb, brief_text)
    return sorted(set(out), key=out.index)


def _urgent_must_problems(kb: KnowledgeBase, sc: Scenario) -> list[str]:
    """The urgent reply, as the user reads it (legal note included), names every must action."""
    try:
        shown = "\n".join(with_legal_note(kb, [render(kb, sc.urgent, _SAMPLE_VARS)]))
    except RenderError:
        return []  # reported by the template checks
    out: list[str] = []
    for action in sc.urgent_must:
        kind, needle = URGENT_ACTIONS[action]
        if kind == "ref":  # {howto:x} shows what {proc:x} shows, and more
            found = needle in sc.urgent or needle.replace("{proc:", "{howto:") in sc.urgent
        else:
            found = re.search(needle, shown) is not None
        if kind == "ref" and not found:  # a reference may also arrive through the legal note
            found = needle in kb.texts.get("legal_note", "")
        if not found:
            out.append(f"{sc.id}.urgent: lacks urgent_must action {action!r} ({needle})")
    return out


def _legal_note_problems(kb: KnowledgeBase) -> list[str]:
    """The not-legal-advice line exists, points to 12348, and fits after every citing message.

    Code paths add the note with ``knowledge.render.with_legal_note``; here the data must make
    that possible: a one-message template that cites law still fits one screen with the note,
    a group warning (one message, no room for a second) fits with the note for every pattern,
    and the note itself names no law (it would need a note of its own).
    """
    out: list[str] = []
    note_tpl = kb.texts.get("legal_note")
    if note_tpl is None:
        return ["texts.legal_note: missing"]
    if "{hotline:12348}" not in note_tpl:
        out.append("texts.legal_note: must name {hotline:12348} (free legal advice)")
    note = render(kb, note_tpl)
    if cites_law(note):
        out.append("texts.legal_note: cites a law itself")
    for where, template, one_message in all_templates(kb):
        try:
            text = render(kb, template, _SAMPLE_VARS)
        except RenderError:
            continue
        if one_message and cites_law(text) and len(text) + 1 + len(note) > MAX_SCREEN_CHARS:
            out.append(f"{where}: cites law and with the legal note is longer than one screen")
    if "group_alert" in kb.texts:
        for p in kb.patterns.values():
            laws = "、".join(law_citation(kb, lid) for lid in p.laws[:2] if lid in kb.laws) or "—"
            try:
                alert = render(kb, kb.texts["group_alert"], {
                    "name": "某" * 16, "pattern": p.name, "giveaway": render(kb, p.giveaway), "laws": laws})
            except RenderError:
                continue
            if len(alert) + 1 + len(note) > MAX_SCREEN_CHARS:
                out.append(f"patterns.{p.id}: group warning with the legal note is longer than one screen")
    if "原文" in kb.texts.get("law_summary_header", ""):
        out.append("texts.law_summary_header: stands above the plain-words summary (law_intro), must not say 原文")
    if "law_header" in kb.texts and "原文" not in kb.texts["law_header"]:
        out.append("texts.law_header: stands above the verbatim quotations, must say 原文")
    return out


def _hedge_problems(kb: KnowledgeBase) -> list[str]:
    """A 🟡 hotline or procedure always carries its hedge: it may only be named by reference."""
    out: list[str] = []
    for key in ("hedge_hotline", "hedge_proc", "hedge_law"):
        if not kb.texts.get(key, "").strip():
            out.append(f"texts.{key}: empty; 🟡 items need their hedge")
    for where, template, _ in all_templates(kb):
        bare = REF_RE.sub("", template)
        for m in _HAND_WRITTEN.finditer(bare):
            out.append(f"{where}: names {m.group(0)!r} by hand; use its {{hotline:id}} so the hedge is added")
    for h in kb.hotlines.values():
        if h.status is Status.partial and not h.number.strip():
            out.append(f"hotlines.{h.id}: empty number")
    return out


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


_ART = r"第[零一二三四五六七八九十百千〇两\d]+条(?:之[一二三四五六七八九十]+)?"
_PARA = r"第[零一二三四五六七八九十百千〇两\d]+款"
_ITEM = r"第[零一二三四五六七八九十百千〇两\d]+项"
# "> 第二十条 国务院……": a quote that opens with its own article number.
_LEAD_RE = re.compile(rf"^({_ART})[ \u3000]+")
# "（以上为第二十七条第二款）" right after a quote.
_NOTE_RE = re.compile(rf"^（以上为({_ART})({_PARA})?({_ITEM})?")
# "**第一千零三十四条（人格权编……）：**" right before a quote.
_BOLD_RE = re.compile(rf"^\*\*({_ART})({_PARA})?({_ITEM})?")
# "（一）……": an enumerated item continues the paragraph above it.
_ITEM_LINE_RE = re.compile(r"^（[一二三四五六七八九十]+）")
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}
_STATUS_MARKS = {"✅": Status.verified, "🟡": Status.partial, "❌": Status.unverified}
_CERTAINTY = {Status.unverified: 0, Status.partial: 1, Status.verified: 2}


def _cn_int(numeral: str) -> int:
    """Small Chinese numerals as used for paragraphs: 一 … 九十九 (or plain digits)."""
    if numeral.isdigit():
        return int(numeral)
    if "十" not in numeral:
        return _CN_DIGITS[numeral]
    tens, _, units = numeral.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)


def _para_label(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return f"第{digits[n]}款"
    tens, units = divmod(n, 10)
    return f"第{'' if tens == 1 else digits[tens]}十{digits[units] if units else ''}款"


def _brief_quotes(brief_text: str) -> list[tuple[str, str]]:
    """(citation, squashed text) for every quotation the brief attaches an article number to.

    A run of ``>`` lines is a quotation; a line opening with an article number starts a new
    one. Its article number comes from that opening, from a "（以上为第X条第Y款…）" note on
    the next non-blank line, or from a "**第X条…**" heading on the previous non-blank line;
    sources that disagree make the quotation unattributable. Each quotation yields one
    citation per paragraph (第X条第N款) and, when it starts at the first paragraph, one for
    the whole (第X条). Enumerated items （一）… belong to the paragraph that introduces them.
    """
    lines = brief_text.splitlines()
    runs: list[tuple[int, int]] = []  # [start, end) line indexes of consecutive '>' lines
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith(">"):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith(">"):
                j += 1
            runs.append((i, j))
            i = j
        else:
            i += 1

    def neighbour(index: int, step: int) -> str:
        while 0 <= index < len(lines) and not lines[index].strip():
            index += step
        return lines[index].strip() if 0 <= index < len(lines) else ""

    out: list[tuple[str, str]] = []
    for start, end in runs:
        body = [ln.lstrip()[1:].strip() for ln in lines[start:end]]
        blocks: list[list[str]] = []
        for ln in body:
            if not ln:
                continue
            if _LEAD_RE.match(ln) or not blocks:
                blocks.append([ln])
            else:
                blocks[-1].append(ln)
        after, before = neighbour(end, 1), neighbour(start - 1, -1)
        note = _NOTE_RE.match(after)
        bold = _BOLD_RE.match(before)
        # Remarks that may say the quotation is only part of its article: the line after it,
        # and a lead-in line before it ("下面只引了第一款……").
        after_remark = "" if after.startswith(">") else _plain(after)
        before_remark = "" if before.startswith(">") or not re.search("下面|只引", before) else _plain(before)
        for k, block in enumerate(blocks):
            # (article, first paragraph number, item) claimed by each source for this block.
            claims: list[tuple[str, int, str]] = []
            lead = _LEAD_RE.match(block[0])
            if lead:
                claims.append((lead.group(1), 1, ""))
                block = [block[0][lead.end():], *block[1:]]
            if note and k == len(blocks) - 1:
                para = _cn_int(note.group(2)[1:-1]) if note.group(2) else 1
                claims.append((note.group(1), para, note.group(3) or ""))
            if bold and k == 0:
                para = _cn_int(bold.group(2)[1:-1]) if bold.group(2) else 1
                claims.append((bold.group(1), para, bold.group(3) or ""))
            if not claims:
                continue
            if len(set(claims)) > 1:  # the brief contradicts itself: attach nothing
                continue
            article, first, item = claims[0]
            paragraphs: list[str] = []
            for ln in block:
                if paragraphs and _ITEM_LINE_RE.match(ln):
                    paragraphs[-1] += ln
                else:
                    paragraphs.append(ln)
            paragraphs = [_squash(p) for p in paragraphs]
            if item:  # one enumerated item of one paragraph
                if len(paragraphs) == 1:
                    out.append((f"{article}{_para_label(first)}{item}", paragraphs[0]))
                continue
            for number, text in enumerate(paragraphs, start=first):
                out.append((f"{article}{_para_label(number)}", text))
            remarks = ([before_remark] if k == 0 else []) + ([after_remark] if k == len(blocks) - 1 else [])
            last = first + len(paragraphs) - 1
            if first == 1 and not any(_says_partial(r, article, last) for r in remarks):
                out.append((article, "".join(paragraphs)))
    return out


def _says_partial(remark: str, article: str, last_paragraph: int) -> bool:
    """Does a remark next to a quotation of ``article`` say the article has more paragraphs?

    A remark about another article ("（第四条第二款：……）" before 第十条) does not count; one
    that names no article ("（第二款为单位犯罪……）") is about the quotation it stands by.
    """
    articles = re.findall(_ART, remark)
    if articles and article not in articles:
        return False
    if "本条共" in remark or "只引" in remark:
        return True
    return any(_cn_int(n) > last_paragraph for n in _OTHER_PARA_RE.findall(remark) if n)


def _hotline_rows(brief_text: str) -> list[tuple[str, str]]:
    """(number cell, status cell) of every row of the brief's hotline table(s)."""
    rows: list[tuple[str, str]] = []
    number_col = status_col = -1
    for line in brief_text.splitlines():
        s = line.strip()
        if not s.startswith("|"):
            number_col = status_col = -1
            continue
        cells = [c.strip() for c in s.strip("|").split("|")]
        if number_col < 0:  # header row of a new table
            number_col = next((n for n, c in enumerate(cells) if "号码" in c), -2)
            status_col = next((n for n, c in enumerate(cells) if "状态" in c), -2)
            if number_col < 0 or status_col < 0:
                number_col = status_col = -2  # not a hotline table; skip its rows
            continue
        if number_col == -2 or set(s) <= set("|-: "):
            continue
        if max(number_col, status_col) < len(cells):
            rows.append((cells[number_col], cells[status_col]))
    return rows


def _plain(text: str) -> str:
    """Markdown emphasis and code marks removed, whitespace squashed."""
    return _squash(text.replace("**", "").replace("`", ""))


def _brief_status(cell: str) -> Status:
    """The least certain ✅/🟡/❌ mark in a status cell; no mark counts as ❌."""
    found = [status for mark, status in _STATUS_MARKS.items() if mark in cell]
    return min(found, key=_CERTAINTY.__getitem__) if found else Status.unverified


def _against_brief(kb: KnowledgeBase, brief_text: str) -> list[str]:
    """Every law quotation, article number, hotline number and hotline status must match the brief.

    A law's text must be a whole article or paragraph the brief quotes verbatim, under the
    same article number (and paragraph, when the law names one). A hotline's number must be
    a standalone token of the brief with its own row in the brief's hotline table, and its
    status must not be more certain than that row's ✅/🟡/❌.
    """
    out: list[str] = []
    quotes = _brief_quotes(brief_text)
    everything = _squash(re.sub(r"(?m)^\s*>", "", brief_text))
    for law in kb.laws.values():
        if law.effective not in brief_text:
            out.append(f"laws.{law.id}: effective date {law.effective} is not in the knowledge brief")
        body = _squash(law.text)
        cite = f"{law.article}{law.paragraph or ''}"
        if (cite, body) in quotes:
            continue
        if body not in everything:
            out.append(f"laws.{law.id}: text is not verbatim in the knowledge brief")
            continue
        exact = sorted({c for c, q in quotes if q == body})
        if exact:
            out.append(f"laws.{law.id}: the knowledge brief quotes this text as {'、'.join(exact)}, not {cite}")
            continue
        near = sorted({re.sub(rf"{_PARA}.*$", "", c) for c, q in quotes if body in q})
        where = f"inside {'、'.join(near)}" if near else "without an article number"
        out.append(f"laws.{law.id}: the knowledge brief quotes this text only {where}, "
                   f"not as a whole {cite}")

    rows = _hotline_rows(brief_text)
    plain_brief = _plain(brief_text)
    for line in kb.hotlines.values():
        number = line.number.strip()
        key = _plain(number)
        if re.fullmatch(r"[\d\-\s]+", number):
            token = re.compile(rf"(?<!\d)(?<!\d-){re.escape(key)}(?!\d)(?!-\d)")
            present = token.search(brief_text.replace("**", "")) is not None
        else:
            present = key in plain_brief
        if not present:
            out.append(f"hotlines.{line.id}: number {number} not in the knowledge brief")
            continue
        # Rows whose number cell is exactly this number, optionally with a qualifier: 12381（短信）.
        matches: list[tuple[str, str]] = []
        for cell, status_cell in rows:
            rest = _plain(cell)
            if rest == key or (rest.startswith(key) and re.fullmatch(r"（[^（）]+）", rest[len(key):])):
                matches.append((rest[len(key):].strip("（）"), status_cell))
        if not matches:
            out.append(f"hotlines.{line.id}: number {number} has no row in the knowledge brief's hotline table")
            continue
        if line.also_written and _plain(line.also_written) not in plain_brief:
            out.append(f"hotlines.{line.id}: also_written {line.also_written} not in the knowledge brief")
        qualified = [m for m in matches if m[0] and m[0] in f"{line.name}{line.owner}"]
        brief_status = min((_brief_status(s) for _, s in qualified or matches),
                           key=_CERTAINTY.__getitem__)
        if _CERTAINTY[line.status] > _CERTAINTY[brief_status]:
            mark = next(m for m, s in _STATUS_MARKS.items() if s is brief_status)
            out.append(f"hotlines.{line.id}: status {line.status.value} is more certain than the "
                       f"knowledge brief's {mark} for {number}")
    return out


# Values used to render templates during checks; real values are supplied by the dialogs.
_SAMPLE_VARS: dict[str, object] = {
    "title": "微信号被盗",
    "amount": "3000",
    "labels": "冻结微信帐号、报警",
    "remaining": "报警；保存证据",
    "options": "1. 微信号被盗\n2. 钱被转走",
    "name": "张三",
    "pattern": "收购/租用微信号",
    "giveaway": "正规客服不会要你转账",
    "laws": "《反电信网络诈骗法》第三十一条",
    "alerts": "3",
    "mentions": "5",
    "state": "开启",
    "what": "验证码",
    "hotlines": "110",
    "titles": "「钱被转走」",
    "number": "010-12321",
}


@lru_cache(maxsize=4)
def load(data_dir: Path = DATA_DIR) -> KnowledgeBase:
    """Load and fully validate the knowledge base, or raise KnowledgeError."""
    kb, found = read(data_dir)
    if kb is not None:
        found += problems(kb)
    if found or kb is None:
        raise KnowledgeError(found or ["knowledge base did not load"])
    return kb
