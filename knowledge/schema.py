"""Pydantic models of the curated knowledge base.

The knowledge files under ``knowledge/data/`` are the product: every law article, phone
number and WeChat menu path a user reads comes from one registry entry, written once and
referenced by id everywhere else. These models are the contract those YAML files must meet;
``knowledge.checks`` adds the cross-file checks (unknown ids, forbidden items, screen length).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

ScenarioId = Literal[
    "account_stolen",
    "wallet_loss",
    "fraud_victim",
    "info_leak",
    "account_rental",
    "account_frozen",
    "scam_check",
    "out_of_scope",
]
"""The fixed scenario ids of architecture.md, in menu order."""

SCENARIO_IDS: tuple[str, ...] = get_args(ScenarioId)

MAX_SCREEN_CHARS = 400
"""One phone screen of WeChat text, roughly 16 characters × 25 lines: the longest one message."""

UrgentAction = Literal[
    "report_police",
    "freeze_account",
    "payment_support",
    "bank",
    "save_evidence",
    "warn_friends",
    "no_paid_recovery",
    "stop_paying",
    "change_passwords",
    "stop_and_take_back",
    "legal_advice",
    "name_helping_crime",
]
"""Actions an urgent reply can be required to name (``Scenario.urgent_must``).

They are the steps of knowledge brief §8.2 (报警; 冻结帐号, 95017, 银行; 保存证据; 告诉亲友;
不找“追款”), plus what the brief gives for the situations §8.2 does not cover (account rental:
stop and take the account back, 12348 for advice, the crime §1.6/§9.3 name). How each one is
recognised in a rendered reply is ``knowledge.checks.URGENT_ACTIONS``.
"""


class Status(StrEnum):
    """Verification status copied from the knowledge brief's legend.

    verified (✅) may be stated plainly; partial (🟡) is rendered with a hedge and the
    in-app official entry first; unverified (❌) must never reach a reply.
    """

    verified = "verified"
    partial = "partial"
    unverified = "unverified"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Law(_Strict):
    """One article (or paragraph) of a statute, quoted verbatim from the brief."""

    id: str
    law: str = Field(description="Full official name, e.g. 中华人民共和国反电信网络诈骗法")
    short: str = Field(description="Name as shown to users, e.g. 《反电信网络诈骗法》")
    article: str = Field(description="Article number in Chinese numerals, e.g. 第三十一条")
    paragraph: str | None = Field(default=None, description="e.g. 第一款, when only one is quoted")
    text: str = Field(description="Exact official text, including 帐户/转帐 spellings")
    effective: str = Field(description="Date the quoted text took effect, YYYY-MM-DD")
    status: Status
    note: str | None = None


class Hotline(_Strict):
    """A phone number or official channel and what it is (and is not) for."""

    id: str
    number: str
    name: str
    owner: str
    use: str = Field(description="What to call it for, in plain words")
    not_for: str | None = Field(default=None, description="Common misuse to warn about")
    also_written: str | None = Field(
        default=None, description="Another way the brief writes the number, e.g. 010-12321"
    )
    dialable: bool = Field(
        default=True,
        description="False for a number that only sends (12381's warning SMS): never offered as a call",
    )
    status: Status


class Procedure(_Strict):
    """An in-app path (WeChat menus) — always subject to the app version."""

    id: str
    name: str
    path: str
    detail: str | None = Field(
        default=None, description="How to get through it; shown with the path by {howto:id}"
    )
    status: Status


class ScamPattern(_Strict):
    """A scam or illegal-solicitation pattern, used by scam_check and the group scanner."""

    id: str
    name: str
    giveaway: str = Field(description="The one fact that gives the scam away")
    laws: list[str] = Field(default_factory=list)
    group_alert: bool = Field(default=True, description="May the group scanner alert on it")
    rules: list[list[str]] = Field(
        default_factory=list,
        description=(
            "Scanner rules: each rule is a list of regexes that must ALL match the message. "
            "A message matches the pattern when any rule matches."
        ),
    )


class ProgressFlag(_Strict):
    """Something the user can report as done (已冻结, 已报警), remembered in the session."""

    id: str
    label: str = Field(description="Shown to the user, e.g. 冻结微信帐号")
    phrases: list[str] = Field(description="Regexes that mean the user has done it")
    urges: list[str] = Field(default_factory=list, description=(
        "Regexes that find an answer telling the user to do it now (马上打110): such an answer "
        "is not added to the acknowledgement of the same report"))
    then_qa: str | None = Field(default=None, description=(
        "The curated question (qa.yaml id) that answers \"what now?\" asked in the same breath "
        "as this report (报了警 接下来干啥), instead of the next page"))


class Step(_Strict):
    """One message of a scenario's ordered follow-up; fits on one phone screen."""

    id: str
    title: str = Field(description="Short label used in 'what is left' summaries")
    text: str
    marks: str | None = Field(
        default=None, description="Progress flag this step asks the user to do"
    )


class Scenario(_Strict):
    """Everything the bot says for one situation of scenarios.md."""

    id: ScenarioId
    title: str
    menu_label: str
    urgent: str = Field(description="First reply: the most urgent action and its hotline")
    urgent_hotlines: list[str] = Field(description="Hotline ids the urgent reply must name")
    urgent_must: list[UrgentAction] = Field(
        default_factory=list,
        description="Actions (brief §8.2) the urgent reply must contain; checked by kb check",
    )
    steps: list[Step] = Field(default_factory=list)
    laws: list[str] = Field(default_factory=list)
    law_intro: str = ""
    hotlines: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    traps: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list, description="Related scam pattern ids")
    group_answer: str = Field(description="Short answer for an @-mention in a group")
    closing: str = Field(default="", description="One reminder added to a thanks/goodbye said in this situation")
    touches_law: bool = True


class QAEntry(_Strict):
    """A question victims ask next, with a curated answer (knowledge/data/qa.yaml).

    ``paraphrases`` are only for matching; ``answer`` (and the per-situation variants in
    ``by_scenario``) are templates that may use ``{law:}``, ``{hotline:}`` and ``{proc:}`` only.
    """

    id: str
    paraphrases: list[str] = Field(min_length=3)
    answer: str = Field(description="Answer when no situation-specific variant applies")
    by_scenario: dict[ScenarioId, str] = Field(default_factory=dict)
    scenarios: list[ScenarioId] = Field(
        default_factory=list,
        description="Situations where the question usually comes up (with by_scenario's keys: matched a little more readily there)")
    touches_law: bool = Field(default=False, description="Append the not-legal-advice line")


class LiveMove(_Strict):
    """What a scammer is asking the user to do right now, and the countermeasure."""

    id: str
    label: str
    triggers: list[str] = Field(min_length=1, description="Regexes on the normalised text; any one")
    answer: str
    after: str = Field(description="What to do next once the user says they stopped it (关了, 删了 …)")
    switch: bool = Field(
        default=True,
        description="Mid-flow in another situation, this move starts scam_check (False: answered in place, "
                    "e.g. an unfreeze fee while the user deals with a frozen account)")
    passes_money: bool = Field(
        default=False,
        description="The user passed someone else's money on (跑分, 帮人走账): mid-flow it is answered in place "
                    "and wins over the other moves named with it, even when the text reads as money already paid "
                    "(\"有人转给我 让我转到另一张卡 我转了\" explains a frozen account, it is not a new loss)")


class TurnWords(_Strict):
    """Word lists the turn model tunes on (knowledge/data/turns.yaml), not code."""

    commands: dict[str, list[str]] = Field(description="Whole-message command words per command")
    command_phrases: dict[str, list[str]] = Field(description="Natural phrasings per command (matched by similarity)")
    social: dict[str, list[str]] = Field(description="thanks / bye / greeting / emotion / ack phrasings")
    emotion_cues: list[str] = Field(description="Regexes: the message carries fear or panic")
    question_cues: list[str] = Field(description="Regexes: the message asks something")
    self_blame_cues: list[str] = Field(default_factory=list, description=(
        "Regexes: the user blames themself (我是不是很蠢); comforted first even when asked as a question"))
    below_line_cues: list[str] = Field(default_factory=list, description=(
        "Regexes just before an amount: the user means less than it (不到三千)"))
    synonyms: dict[str, list[str]] = Field(
        default_factory=dict, description="Canonical word → variants, folded before phrase similarity")
    closing_cues: list[str] = Field(default_factory=list, description="Regexes on the squashed text: thanks or a sign-off")
    police_visit_cues: list[str] = Field(default_factory=list, description=(
        "Regexes on the squashed text of a sign-off: the user is now going to the police (我先去派出所了)"))
    quote_cues: list[str] = Field(description="Regexes: what follows is what someone else said or asked")
    paid_cues: list[str] = Field(default_factory=list, description=(
        "Regexes on the user's own words (reported speech removed): money already went out. "
        "With an amount, a 'suspicious' reading becomes fraud_victim"))
    loss_cues: list[str] = Field(default_factory=list, description=(
        "Regexes: money is gone (少了, 被转走). Counts as paid only when the message also names a "
        "scammer's move (screen sharing …); alone it is a wallet loss"))
    lost_account_cues: list[str] = Field(default_factory=list, description=(
        "Regexes on the user's own words: the user is already locked out of their account; "
        "a 'suspicious' reading becomes account_stolen"))
    negation_cues: list[str] = Field(description="Regexes matched just before a progress phrase: not done")
    urgent_done: dict[ScenarioId, str] = Field(
        default_factory=dict, description="Progress flag that means the urgent step is already done")


class KnowledgeBase(_Strict):
    """The whole validated knowledge base, as loaded at start-up."""

    laws: dict[str, Law]
    hotlines: dict[str, Hotline]
    procedures: dict[str, Procedure]
    patterns: dict[str, ScamPattern]
    flags: dict[str, ProgressFlag]
    scenarios: dict[str, Scenario]
    texts: dict[str, str]
    examples: dict[str, list[str]]
    qa: dict[str, QAEntry] = Field(default_factory=dict)
    moves: dict[str, LiveMove] = Field(default_factory=dict)
    words: TurnWords | None = None
