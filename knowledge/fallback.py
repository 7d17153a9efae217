"""The Rasa-style fallback decision: act on the best guess, or ask a clarifying question.

A step of its own so the rule is small, testable and explainable: ``decide`` returns the
decision *and* a reason string (figures only, never the user's text) that the caller logs at
DEBUG, so a log shows why a message got a clarifying question without exposing what it said.
"""

from __future__ import annotations

THRESHOLD = 0.40
"""Rasa-style fallback: a best guess below this probability is ``ambiguous``.

Eight classes share the probability mass, so a uniform guess is 0.125. On the held-out and
dev phrasings (459 messages) the median confidence is ~0.97 and 90 % are above ~0.78; only
~1 % of correct answers fall under 0.40 (or inside the gap below), while 2 of the 3 wrong
ones do. So 0.40 sends real toss-ups to a clarifying question without nagging users whose
message was clear. Gibberish is caught by ``MIN_COVERAGE``, not by this threshold: a linear
model gives unknown text the class priors, which can look confident."""

AMBIGUITY_GAP = 0.10
"""Rasa's ``ambiguity_threshold``: if the two best scenarios are closer than this, ask.

0.1 is Rasa's default and the value anchors.md §6 recommends; two scenarios within ten
points of each other are a real toss-up (e.g. "卡被冻结了，有人说能帮我解冻"), and a
one-line question ("是钱被转走了，还是账户被冻结了？") costs less than a wrong flow."""

MIN_COVERAGE = 0.2
"""Below this share of known character bigrams the message is mostly words the examples
never used (gibberish, emoji, another language): ``ambiguous`` whatever the softmax says,
because a linear model's confidence there only reflects the class priors."""


def decide(top_p: float, second_p: float, coverage: float) -> tuple[bool, str]:
    """(ambiguous, reason) for a best guess ``top_p``, runner-up ``second_p`` and the share
    of known bigrams ``coverage``. The reason names the first rule that fired (or why none
    did) with its figures; it never contains the message."""
    if top_p < THRESHOLD:
        return True, f"low confidence {top_p:.3f} < {THRESHOLD}"
    if (top_p - second_p) < AMBIGUITY_GAP:
        return True, f"toss-up: gap {top_p - second_p:.3f} < {AMBIGUITY_GAP}"
    if coverage < MIN_COVERAGE:
        return True, f"unknown text: coverage {coverage:.2f} < {MIN_COVERAGE}"
    return False, f"clear: confidence {top_p:.3f}, gap {top_p - second_p:.3f}, coverage {coverage:.2f}"
