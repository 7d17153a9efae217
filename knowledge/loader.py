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

from knowledge.render import REF_RE, VAR_RE, RenderError, referenced_ids, render
from knowledge.schema import (
    SCENARIO_IDS,
    Hotline,
    KnowledgeBase,
    Law,
    Procedure,
    ProgressFlag,
    Scenario,
    ScamPattern,
    Status,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
MAX_SCREEN_CHARS = 400
"""One phone screen of WeChat text, roughly 16 characters × 25 lines."""

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
        "law_header": "", "amount_big": "amount", "amount_small": "amount",
        "secret_warning": "what", "pii_warning": "what", "rate_limited": "",
        "static_fallback": "", "error_fallback": "", "non_text": "", "empty": "", "too_long": "",
        "also_offer": "titles", "pattern_named": "pattern giveaway",
        "group_intro": "", "group_mention_suffix": "", "group_alert": "name pattern giveaway laws",
        "group_admin_only": "", "group_alerts_on": "", "group_alerts_off": "",
        "group_stats": "alerts mentions state", "group_help": "", "group_tips_on": "",
        "group_tips_off": "", "group_keywords_on": "", "group_keywords_off": "",
        "group_mention_menu": "",
    }.items()
}
"""Every texts.yaml key the code uses, with the variables its template may contain."""


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


def _status_of(kb: KnowledgeBase, kind: str, ref_id: str) -> Status | None:
    registry: dict[str, Any] = {
        "law": kb.laws,
        "hotline": kb.hotlines,
        "proc": kb.procedures,
        "pattern": {},
    }[kind]
    item = registry.get(ref_id)
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
        for st in sc.steps:
            if st.marks and st.marks not in kb.flags:
                out.append(f"{sc.id}.steps.{st.id}: unknown flag {st.marks!r}")
        if sc.touches_law and "legal_note" not in kb.texts:
            out.append("texts.legal_note: missing (needed by scenarios that touch law)")
        if sc.id not in kb.examples or len(kb.examples[sc.id]) < 10:
            out.append(f"examples/{sc.id}.txt: fewer than 10 example phrasings")
    for key, allowed in REQUIRED_TEXTS.items():
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
    if brief_text is not None:
        out += _against_brief(kb, brief_text)
    return sorted(set(out), key=out.index)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _against_brief(kb: KnowledgeBase, brief_text: str) -> list[str]:
    """Every quoted law text and every phone number must appear in the knowledge brief."""
    out: list[str] = []
    brief = _squash(brief_text.replace("> ", ""))
    for law in kb.laws.values():
        body = _squash(law.text)
        if body not in brief:
            out.append(f"laws.{law.id}: text is not verbatim in the knowledge brief")
    for line in kb.hotlines.values():
        digits = re.sub(r"\D", "", line.number)
        if digits and digits not in re.sub(r"\D", "", brief_text) and line.number not in brief_text:
            out.append(f"hotlines.{line.id}: number {line.number} not in the knowledge brief")
    return out


# Values used to render templates during checks; real values are supplied by the dialogs.
_SAMPLE_VARS: dict[str, object] = {
    "title": "微信号被盗",
    "amount": "3000",
    "labels": "冻结微信帐号、报警",
    "remaining": "报警；保存证据",
    "step": "1",
    "total": "5",
    "options": "1. 微信号被盗\n2. 钱被转走",
    "name": "张三",
    "pattern": "收购/租用微信号",
    "giveaway": "正规客服不会要你转账",
    "laws": "《反电信网络诈骗法》第三十一条",
    "count": "3",
    "alerts": "3",
    "mentions": "5",
    "state": "开启",
    "menu": "1. 微信号被盗",
    "minutes": "10",
    "tip": "不要把验证码告诉任何人",
    "what": "验证码",
    "hotlines": "110",
    "items": "聊天记录",
    "bot_name": "反诈助手",
    "titles": "「钱被转走」",
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
