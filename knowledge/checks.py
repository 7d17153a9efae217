"""The rules a knowledge base must keep, as small named checks, and ``problems`` running them.

One job: given a parsed ``KnowledgeBase``, list every problem. A reply that cites an unknown
law, an unverified hotline or a made-up article number is worse than no reply, so each rule
is a function named for what it demands (in the manner of Rasa's data validator), and
``problems`` runs ``KB_CHECKS`` in order, then the comparison with the external brief
(``knowledge.brief_check``) when its text is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from knowledge.brief_check import against_brief
from knowledge.render import (
    REF_RE,
    VAR_RE,
    RenderError,
    cites_law,
    law_citation,
    referenced_ids,
    render,
    with_legal_note,
)
from knowledge.schema import MAX_SCREEN_CHARS, SCENARIO_IDS, KnowledgeBase, Scenario, Status
from knowledge.templates import SAMPLE_VARS, all_templates
from knowledge.turn_checks import turn_problems

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


# -- the rules: each returns the problems it finds, an empty list when the data keeps it ----

ScenarioCheck = Callable[[KnowledgeBase, Scenario], list[str]]
KBCheck = Callable[[KnowledgeBase], list[str]]


def all_scenarios_present(kb: KnowledgeBase) -> list[str]:
    """Every scenario id of the fixed contract (architecture.md) has a scenario file."""
    return [f"scenario {sid}: missing" for sid in SCENARIO_IDS if sid not in kb.scenarios]


def scenario_ids_known(kb: KnowledgeBase, sc: Scenario) -> list[str]:
    """A scenario names only laws, hotlines and patterns that exist."""
    return (_check_ids(f"{sc.id}.laws", sc.laws, kb.laws, "law")
            + _check_ids(f"{sc.id}.hotlines", sc.hotlines, kb.hotlines, "hotline")
            + _check_ids(f"{sc.id}.urgent_hotlines", sc.urgent_hotlines, kb.hotlines, "hotline")
            + _check_ids(f"{sc.id}.patterns", sc.patterns, kb.patterns, "pattern"))


def urgent_names_its_hotlines(kb: KnowledgeBase, sc: Scenario) -> list[str]:
    """The urgent reply references every hotline listed as urgent."""
    return [f"{sc.id}.urgent: does not name its urgent hotline {hid!r}"
            for hid in sc.urgent_hotlines if f"{{hotline:{hid}}}" not in sc.urgent]


def urgent_names_must_actions(kb: KnowledgeBase, sc: Scenario) -> list[str]:
    """The urgent reply, as the user reads it (legal note included), names every must action."""
    try:
        shown = "\n".join(with_legal_note(kb, [render(kb, sc.urgent, SAMPLE_VARS)]))
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


def step_flags_known(kb: KnowledgeBase, sc: Scenario) -> list[str]:
    """A step marks only progress flags that exist."""
    return [f"{sc.id}.steps.{st.id}: unknown flag {st.marks!r}"
            for st in sc.steps if st.marks and st.marks not in kb.flags]


def legal_note_for_law(kb: KnowledgeBase, sc: Scenario) -> list[str]:
    """A scenario that touches law needs the not-legal-advice line."""
    if sc.touches_law and "legal_note" not in kb.texts:
        return ["texts.legal_note: missing (needed by scenarios that touch law)"]
    return []


def enough_examples(kb: KnowledgeBase, sc: Scenario) -> list[str]:
    """The matcher needs at least 10 example phrasings per scenario."""
    if sc.id not in kb.examples or len(kb.examples[sc.id]) < 10:
        return [f"examples/{sc.id}.txt: fewer than 10 example phrasings"]
    return []


SCENARIO_CHECKS: tuple[ScenarioCheck, ...] = (
    scenario_ids_known, urgent_names_its_hotlines, urgent_names_must_actions,
    step_flags_known, legal_note_for_law, enough_examples,
)


def scenarios_sound(kb: KnowledgeBase) -> list[str]:
    """Every ``SCENARIO_CHECKS`` rule, scenario by scenario."""
    return [p for sc in kb.scenarios.values() for check in SCENARIO_CHECKS for p in check(kb, sc)]


def texts_complete(kb: KnowledgeBase) -> list[str]:
    """Every text key the code uses exists and uses only the variables the code supplies."""
    out: list[str] = []
    for key, allowed in {**REQUIRED_TEXTS, **CHANNEL_TEXTS}.items():
        if key not in kb.texts:
            out.append(f"texts.{key}: missing")
            continue
        extra = set(VAR_RE.findall(REF_RE.sub("", kb.texts[key]))) - allowed
        if extra:
            out.append(f"texts.{key}: unknown variable(s) {sorted(extra)}; allowed {sorted(allowed)}")
    return out


def _bad_regexes(where: str, regexes: Iterable[str]) -> list[str]:
    out: list[str] = []
    for rx in regexes:
        try:
            re.compile(rx)
        except re.error as exc:
            out.append(f"{where}: bad regex {rx!r}: {exc}")
    return out


def patterns_sound(kb: KnowledgeBase) -> list[str]:
    """A scam pattern names only known laws, and each of its rule regexes compiles."""
    out: list[str] = []
    for p in kb.patterns.values():
        out += _check_ids(f"patterns.{p.id}.laws", p.laws, kb.laws, "law")
        for rule in p.rules:
            out += _bad_regexes(f"patterns.{p.id}", rule)
    return out


def flag_regexes_compile(kb: KnowledgeBase) -> list[str]:
    """Each progress flag's phrase regexes compile, and its ``then_qa`` is a curated question."""
    out = [p for f in kb.flags.values() for p in _bad_regexes(f"flags.{f.id}", f.phrases)]
    return out + [f"flags.{f.id}.then_qa: unknown question {f.then_qa!r}"
                  for f in kb.flags.values() if f.then_qa and f.then_qa not in kb.qa]


def templates_sound(kb: KnowledgeBase) -> list[str]:
    """No template writes an article or phone number by hand; each renders, on one screen if one message."""
    out: list[str] = []
    for where, template, one_message in all_templates(kb):
        bare = REF_RE.sub("", template)
        if ARTICLE_RE.search(bare):
            out.append(f"{where}: article number written by hand; use {{law:id}}")
        if PHONE_LIKE_RE.search(bare):
            out.append(f"{where}: number written by hand ({PHONE_LIKE_RE.search(bare).group(0)}); use {{hotline:id}}")  # type: ignore[union-attr]
        try:
            text = render(kb, template, SAMPLE_VARS)
        except RenderError as exc:
            out.append(f"{where}: {exc.args[0]}")
            continue
        if one_message and len(text) > MAX_SCREEN_CHARS:
            out.append(f"{where}: {len(text)} characters, more than one screen ({MAX_SCREEN_CHARS})")
    return out


def no_unverified_citations(kb: KnowledgeBase) -> list[str]:
    """Registry items cited in reply lists or templates exist and are not unverified (❌)."""
    cited: list[tuple[str, str, str]] = []
    for sc in kb.scenarios.values():
        cited += [(f"{sc.id}.laws", "law", i) for i in sc.laws]
        cited += [(f"{sc.id}.hotlines", "hotline", i) for i in sc.hotlines]
    for p in kb.patterns.values():
        cited += [(f"patterns.{p.id}.laws", "law", i) for i in p.laws]
    for where, template, _ in all_templates(kb):
        cited += [(where, kind, rid) for kind, rid in referenced_ids(template)]
    out: list[str] = []
    for where, kind, rid in cited:
        if kind == "pattern":
            if rid not in kb.patterns:
                out.append(f"{where}: unknown pattern id {rid!r}")
            continue
        status = _status_of(kb, kind, rid)
        if status is Status.unverified:
            out.append(f"{where}: cites unverified (❌) {kind} {rid!r}")
    return out


def law_quotes_fit_screen(kb: KnowledgeBase) -> list[str]:
    """A law's quotation, with its citation line, fits one screen."""
    return [f"laws.{law.id}: quotation longer than one screen" for law in kb.laws.values()
            if len(f"{law.short}{law.article}\n{law.text}") > MAX_SCREEN_CHARS]


def legal_note_fits(kb: KnowledgeBase) -> list[str]:
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
            text = render(kb, template, SAMPLE_VARS)
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


def hedges_complete(kb: KnowledgeBase) -> list[str]:
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


KB_CHECKS: tuple[KBCheck, ...] = (
    all_scenarios_present, scenarios_sound, texts_complete, patterns_sound, flag_regexes_compile,
    templates_sound, no_unverified_citations, law_quotes_fit_screen, legal_note_fits,
    hedges_complete, turn_problems,
)
"""Every whole-knowledge-base rule, in the order ``problems`` reports them."""


def problems(kb: KnowledgeBase, brief_text: str | None = None) -> list[str]:
    """Every rule the knowledge base must satisfy; an empty list means it is valid."""
    out = [p for check in KB_CHECKS for p in check(kb)]
    if brief_text is not None:
        out += against_brief(kb, brief_text)
    return sorted(set(out), key=out.index)
