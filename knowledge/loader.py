"""Read the knowledge files into models, and refuse to start on any problem.

One job: parse knowledge/data/*.yaml (and the example phrasings) into a ``KnowledgeBase``
(``read``), and ``load`` it only when ``knowledge.checks.problems`` finds nothing wrong. A reply
citing an unknown law or an unverified hotline is worse than no reply, so every problem is a
start-up error, and ``python -m bot kb check`` prints the whole list.

The rules live in ``knowledge.checks`` and the comparison with the external brief in
``knowledge.brief_check``; the names callers import from here are re-exported below.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from knowledge.brief_check import against_brief as _against_brief
from knowledge.brief_check import brief_quotes as _brief_quotes
from knowledge.checks import (
    ARTICLE_RE,
    CHANNEL_TEXTS,
    PHONE_LIKE_RE,
    REQUIRED_TEXTS,
    URGENT_ACTIONS,
    problems,
)
from knowledge.schema import (
    MAX_SCREEN_CHARS,
    SCENARIO_IDS,
    Hotline,
    KnowledgeBase,
    Law,
    LiveMove,
    Procedure,
    ProgressFlag,
    QAEntry,
    ScamPattern,
    Scenario,
    TurnWords,
)
from knowledge.templates import SAMPLE_VARS as _SAMPLE_VARS
from knowledge.templates import all_templates, scenario_templates

DATA_DIR = Path(__file__).resolve().parent / "data"
__all__ = [
    "ARTICLE_RE", "CHANNEL_TEXTS", "DATA_DIR", "MAX_SCREEN_CHARS", "PHONE_LIKE_RE", "REQUIRED_TEXTS",
    "URGENT_ACTIONS", "KnowledgeError", "_SAMPLE_VARS", "_against_brief", "_brief_quotes",
    "all_templates", "load", "problems", "read", "scenario_templates",
]


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
    qa = _registry(data_dir / "qa.yaml", QAEntry, problems) if (data_dir / "qa.yaml").exists() else {}
    moves = _registry(data_dir / "moves.yaml", LiveMove, problems) if (data_dir / "moves.yaml").exists() else {}
    words: TurnWords | None = None
    if (data_dir / "turns.yaml").exists():
        try:
            words = TurnWords.model_validate(_read_yaml(data_dir / "turns.yaml"))
        except ValidationError as exc:
            err = exc.errors()[0]
            problems.append(f"turns.yaml: {err['loc']}: {err['msg']}")
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
            qa=qa,
            moves=moves,
            words=words,
        )
    except ValidationError as exc:
        problems.append(str(exc))
        return None, problems
    return kb, problems


@lru_cache(maxsize=4)
def load(data_dir: Path = DATA_DIR) -> KnowledgeBase:
    """Load and fully validate the knowledge base, or raise KnowledgeError."""
    kb, found = read(data_dir)
    if kb is not None:
        found += problems(kb)
    if found or kb is None:
        raise KnowledgeError(found or ["knowledge base did not load"])
    return kb
