"""Dialog rules the classifier's raw reading is put through: which situation leads, and the
already-paid hand-over.

Why apart from the classifier: these are product rules from scenarios.md (the most urgent
situation first; "if the user already paid → fraud_victim"), not statistics. Keeping them in
one small module lets them be read, changed and tested without touching the scorer.
"""

from __future__ import annotations

import re

URGENCY: tuple[str, ...] = (
    "scam_check",
    "fraud_victim",
    "wallet_loss",
    "account_stolen",
    "account_frozen",
    "info_leak",
    "account_rental",
    "out_of_scope",
)
"""Most urgent first: stopping a payment that has not happened yet beats reporting one
that has; money leaving the wallet beats an account that can be frozen later."""

PAID_RE = re.compile(
    r"(?<![给向])(?:我|已经|已|都|又|先后|陆续|一共|总共|前后)?"
    r"(?:转了|转过去|转过|充了|充进去|付了|付过|交了|打过去|打进去|汇了|汇过去|被扣了|扣了我|被骗走|骗走了|骗了我"
    r"|投了|投进去|垫了|垫付了|垫进去|被划走|划走了|钱就没了|钱都没了|收了我|我交了|我转了|我付了)"
    r"(?!我|一分|几毛|0\.01|就|马上|立刻|才|以后就)"
)
"""The user says money has already left ("充了十几万进去", "转了之后人就消失了"). scenarios.md:
in scam_check, "if the user already paid → fraud_victim" — whose first reply also says to stop
paying — so a scam_check reading with this cue hands over to fraud_victim. "给我转了…" and
"转了我一分钱" (money *to* the user, a classic test transfer) do not count, nor does the
scammer's promise "交了马上放款" (a condition, not a payment)."""

THIRD_PARTY_STOLEN_RE = re.compile(
    r"(?:他|她|对方|朋友|同学|同事|亲戚|领导|老板|熟人|[姨舅姑叔伯姐哥弟妹爸妈]|闺蜜)(?:的)?(?:微信|号|帐号|账号|qq)?"
    r"(?:号)?(?:被盗|被人盗|被黑|被人登|被人控制)"
)
"""Someone *else's* account was stolen ("朋友的号被盗了"): when the user then paid, the user is
a fraud victim, not the owner of a stolen account (issue 10 §5, who did what to whom)."""

OWN_STOLEN_RE = re.compile(r"我的?(?:微信号|微信|vx|wx|帐号|账号|号).{0,8}被(?:人|别人)?盗")
"""The user's *own* account was stolen ("我的vx号被人盗了 同事转了三千"): the money others sent
went to the thief; the user owns a stolen account, so the paid cue does not hand over."""

_USER_LOST_RE = re.compile(r"被骗|骗了我|我(?:自己)?(?:也)?(?:转|付|交|充|汇)")
"""The user says they paid or were cheated themselves ("刷单被骗了7000，而且我的号也被盗了")."""


def own_account_stolen(text: str) -> bool:
    """The user's own account was stolen and only others paid: account_stolen, not fraud_victim."""
    return OWN_STOLEN_RE.search(text) is not None and _USER_LOST_RE.search(text) is None


PAID_SWITCH_FROM = frozenset({"scam_check", "account_frozen"})
"""Readings the already-paid cue hands over to fraud_victim (account_stolen needs the third-party cue)."""

PAID_SWITCH_MIN_PROBABILITY = 0.01
"""fraud_victim must be at least a plausible reading for the paid cue to switch to it."""


_RANK = {sid: i for i, sid in enumerate(URGENCY)}


def urgency_rank(sid: str) -> int:
    """Sort key: position in ``URGENCY`` (unknown scenarios last)."""
    return _RANK.get(sid, len(_RANK))


def paid_switch(
    text: str, scenario: str, confidence: float, also: list[str], fraud_p: float | None
) -> tuple[str, float, list[str]]:
    """(scenario, confidence, also) after the already-paid rule.

    ``fraud_p`` is the whole message's fraud_victim probability (None when the matcher has
    no such class). A scam_check / account_frozen reading — or account_stolen when it was
    someone else's account — whose text says money has already left becomes fraud_victim;
    the reading it replaces leads ``also``.
    """
    if (fraud_p is not None and fraud_p >= PAID_SWITCH_MIN_PROBABILITY
            and (scenario in PAID_SWITCH_FROM
                 or (scenario == "account_stolen" and THIRD_PARTY_STOLEN_RE.search(text)))
            and PAID_RE.search(text) and not own_account_stolen(text)):
        prev = scenario
        return (
            "fraud_victim",
            max(confidence, fraud_p),
            [prev, *[x for x in also if x not in (prev, "fraud_victim")]],
        )
    return scenario, confidence, also
