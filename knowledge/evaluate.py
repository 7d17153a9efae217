"""Measure the matcher and the group scanner on labelled JSONL files.

Intent files hold ``{"text": ..., "scenario": <id>}`` per line; group files hold
``{"text": ..., "alert": bool, "pattern": <id or null>}`` (``pattern`` optional). The reports
are pydantic models so ``python -m bot eval`` can print them or dump them as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from knowledge.matcher import Matcher
from knowledge.scanner import Scanner
from knowledge.schema import SCENARIO_IDS


class Misclassified(BaseModel):
    text: str
    expected: str
    got: str
    confidence: float
    ambiguous: bool


class ClassCounts(BaseModel):
    scenario: str
    total: int
    correct: int
    predicted: int
    """How many rows (of any class) were predicted as this scenario."""

    @property
    def recall(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0


class IntentReport(BaseModel):
    path: str
    total: int
    correct: int
    accuracy: float
    ambiguous: int
    """Rows the matcher would ask about (Rasa fallback rule)."""
    per_class: list[ClassCounts]
    labels: list[str]
    confusion: list[list[int]]
    """confusion[i][j]: rows labelled labels[i] predicted as labels[j]."""
    misclassified: list[Misclassified]


class GroupMiss(BaseModel):
    text: str
    expected_alert: bool
    expected_pattern: str | None
    alert: bool
    pattern: str | None
    reason: str


class CategoryCounts(BaseModel):
    """Rows of one ``category`` (group files may label their rows, e.g. "dating_lure", "news")."""

    category: str
    ads: bool
    """Whether this category's rows are ads (alert expected) or benign."""
    total: int
    alerts: int
    """Alerts raised on these rows: caught ads, or false alerts on benign rows."""


class GroupReport(BaseModel):
    path: str
    total: int
    ads: int
    benign: int
    true_alerts: int
    false_alerts: int
    missed: int
    precision: float
    recall: float
    false_alert_rate: float
    """False alerts per benign message."""
    pattern_correct: int
    """Alerts that named the labelled pattern (rows that carry one)."""
    pattern_labelled: int
    errors: list[GroupMiss]
    """False alerts, misses, and alerts that named another pattern than the label."""
    per_category: list[CategoryCounts] = []
    """One entry per (category, ads/benign) when the rows carry a ``category``."""


def _rows(path: str | Path) -> Iterator[dict[str, object]]:
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line and not line.startswith("#"):
                yield json.loads(line)


def evaluate_intents(matcher: Matcher, path: str | Path) -> IntentReport:
    rows = list(_rows(path))
    labels = list(SCENARIO_IDS)
    extra = sorted({str(r["scenario"]) for r in rows} - set(labels))
    labels += extra
    index = {sid: i for i, sid in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    wrong: list[Misclassified] = []
    ambiguous = 0
    for r in rows:
        text, expected = str(r["text"]), str(r["scenario"])
        c = matcher.classify(text)
        ambiguous += c.ambiguous
        confusion[index[expected]][index[c.scenario]] += 1
        if c.scenario != expected:
            wrong.append(
                Misclassified(
                    text=text,
                    expected=expected,
                    got=c.scenario,
                    confidence=round(c.confidence, 3),
                    ambiguous=c.ambiguous,
                )
            )
    correct = len(rows) - len(wrong)
    per_class = [
        ClassCounts(
            scenario=sid,
            total=sum(confusion[i]),
            correct=confusion[i][i],
            predicted=sum(row[i] for row in confusion),
        )
        for i, sid in enumerate(labels)
    ]
    return IntentReport(
        path=str(path),
        total=len(rows),
        correct=correct,
        accuracy=correct / len(rows) if rows else 0.0,
        ambiguous=ambiguous,
        per_class=per_class,
        labels=labels,
        confusion=confusion,
        misclassified=wrong,
    )


def evaluate_group(scanner: Scanner, path: str | Path) -> GroupReport:
    rows = list(_rows(path))
    tp = fp = fn = 0
    pattern_ok = pattern_labelled = 0
    errors: list[GroupMiss] = []
    by_category: dict[tuple[str, bool], list[int]] = {}
    for r in rows:
        text = str(r["text"])
        want = bool(r["alert"])
        want_pattern = r.get("pattern")
        res = scanner.scan(text)
        if r.get("category"):
            counts = by_category.setdefault((str(r["category"]), want), [0, 0])
            counts[0] += 1
            counts[1] += res.alert
        wrong_pattern = False
        if want and res.alert:
            tp += 1
            if want_pattern:
                pattern_labelled += 1
                if res.pattern == want_pattern:
                    pattern_ok += 1
                else:
                    wrong_pattern = True
        elif res.alert:
            fp += 1
        elif want:
            fn += 1
            if want_pattern:
                pattern_labelled += 1
        if res.alert != want or wrong_pattern:
            errors.append(
                GroupMiss(
                    text=text,
                    expected_alert=want,
                    expected_pattern=str(want_pattern) if want_pattern else None,
                    alert=res.alert,
                    pattern=res.pattern,
                    reason=res.reason,
                )
            )
    ads = tp + fn
    benign = len(rows) - ads
    return GroupReport(
        path=str(path),
        total=len(rows),
        ads=ads,
        benign=benign,
        true_alerts=tp,
        false_alerts=fp,
        missed=fn,
        precision=tp / (tp + fp) if tp + fp else 1.0,
        recall=tp / ads if ads else 1.0,
        false_alert_rate=fp / benign if benign else 0.0,
        pattern_correct=pattern_ok,
        pattern_labelled=pattern_labelled,
        errors=errors,
        per_category=[
            CategoryCounts(category=c, ads=a, total=n, alerts=k)
            for (c, a), (n, k) in sorted(by_category.items(), key=lambda kv: (not kv[0][1], kv[0][0]))
        ],
    )


def _short(sid: str) -> str:
    return {
        "account_stolen": "stolen",
        "wallet_loss": "wallet",
        "fraud_victim": "victim",
        "info_leak": "leak",
        "account_rental": "rental",
        "account_frozen": "frozen",
        "scam_check": "check",
        "out_of_scope": "other",
    }.get(sid, sid[:7])


def format_intent_report(r: IntentReport) -> str:
    lines = [
        f"intents: {r.path}",
        f"accuracy {r.accuracy:.1%} ({r.correct}/{r.total}), ambiguous {r.ambiguous}",
        "",
        f"{'scenario':<16}{'n':>5}{'ok':>5}{'recall':>8}{'prec':>7}",
    ]
    for c in r.per_class:
        if c.total or c.predicted:
            lines.append(
                f"{c.scenario:<16}{c.total:>5}{c.correct:>5}{c.recall:>8.1%}{c.precision:>7.1%}"
            )
    shorts = [_short(s) for s in r.labels]
    lines += ["", "confusion (rows = expected, columns = predicted)"]
    lines.append(f"{'':<8}" + "".join(f"{s:>7}" for s in shorts))
    for s, row in zip(shorts, r.confusion, strict=True):
        lines.append(f"{s:<8}" + "".join(f"{v if v else '.':>7}" for v in row))
    if r.misclassified:
        lines += ["", "misclassified:"]
        for m in r.misclassified:
            flag = " (ambiguous)" if m.ambiguous else ""
            lines.append(f"  [{m.expected} → {m.got} {m.confidence:.2f}{flag}] {m.text}")
    return "\n".join(lines)


def format_group_report(r: GroupReport) -> str:
    lines = [
        f"group: {r.path}",
        f"ads {r.ads}, benign {r.benign}",
        f"recall {r.recall:.1%} ({r.true_alerts}/{r.ads}), precision {r.precision:.1%}",
        f"false alerts {r.false_alerts} ({r.false_alert_rate:.1%} of benign; "
        f"{r.false_alerts * 20 / r.benign if r.benign else 0:.2f} per 20)",
    ]
    if r.pattern_labelled:
        lines.append(f"pattern named correctly {r.pattern_correct}/{r.pattern_labelled}")
    if r.per_category:
        lines += ["", f"{'category':<24}{'kind':<8}{'n':>5}{'alerts':>8}{'rate':>8}"]
        for c in r.per_category:
            kind = "ads" if c.ads else "benign"
            lines.append(f"{c.category:<24}{kind:<8}{c.total:>5}{c.alerts:>8}{c.alerts / c.total:>8.0%}")
    if r.errors:
        lines += ["", "errors:"]
        for e in r.errors:
            if e.alert and not e.expected_alert:
                kind = f"false alert ({e.pattern})"
            elif e.expected_alert and not e.alert:
                kind = f"missed ({e.expected_pattern or 'ad'})"
            else:
                kind = f"pattern {e.pattern} ≠ {e.expected_pattern}"
            lines.append(f"  [{kind}] {e.text}  — {e.reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m knowledge.evaluate [intents.jsonl ...] [--group group.jsonl ...]``.

    Without arguments: the held-out sets under tests/data and, when present, the shared dev
    sets beside the repository.
    """
    import sys

    from knowledge.loader import read

    args = list(sys.argv[1:] if argv is None else argv)
    root = Path(__file__).resolve().parents[1]
    if not args:
        args = [str(root / "tests" / "data" / "heldout_intents.jsonl")]
        dev = root.parent / "shared" / "eval"
        if (dev / "dev_intents.jsonl").exists():
            args.append(str(dev / "dev_intents.jsonl"))
        args += ["--group", str(root / "tests" / "data" / "heldout_group.jsonl")]
        if (dev / "dev_group.jsonl").exists():
            args.append(str(dev / "dev_group.jsonl"))
    kb, problems = read()
    if kb is None:
        print("knowledge base did not parse:", *problems, sep="\n")
        return 1
    intents, groups = args, []
    if "--group" in args:
        cut = args.index("--group")
        intents, groups = args[:cut], args[cut + 1 :]
    if intents:
        matcher = Matcher.from_kb(kb)
        for path in intents:
            print(format_intent_report(evaluate_intents(matcher, path)), end="\n\n")
    if groups:
        scanner = Scanner.from_kb(kb)
        for path in groups:
            print(format_group_report(evaluate_group(scanner, path)), end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
