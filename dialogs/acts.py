"""What one message *does* in its context: the act, decided from the session and the message.

``understand`` reads the message alone; this module adds the session's situation and
position. The order of the checks below is the policy, read top to bottom:

1. empty, an exact command word, a returning user, a menu number, a thanks/sign-off;
2. a live-scam move ("他让我开屏幕共享") — the most urgent thing a message can say;
   "关了/删了" right after one (also "屏幕共享已经关了", naming it again), or "挂了" in a live
   scam, is the user reporting they stopped it; self-blame ("我是不是很蠢") is comforted first;
3. a follow-up phrasing that is clearly closer to a command, a curated question or a social
   act than to any scenario story (``INTENT_*`` thresholds);
4. progress in the current flow ("已报警"), an amount, a story (same situation → go on; another
   one → switch, urgent reply first);
5. fear with nothing else in it (self-blame even when asked as a question); secrets only;
   else unclear.

The table of which handler answers which act in which state is ``dialogs.table``.
"""

from __future__ import annotations

from enum import StrEnum

from dialogs.session import Session
from dialogs.understand import Understood

INTENT_STRONG = 0.72
"""Cosine similarity at which the nearest follow-up phrasing wins whatever the story score:
on the dev conversations no story message comes this close to a question or command phrasing."""

INTENT_MIN = 0.42
"""Below this the nearest phrasing is a coincidence (shared particles like 吗/了/我)."""

QUESTION_BONUS = 0.10
"""A message with a question cue (吗, 怎么, 能不能 …) leans towards being a question."""

STORY_MARGIN = 0.10
"""A strong phrasing match still loses to a scenario example that is clearly closer."""

ENTER_MIN_CONFIDENCE = 0.50
"""Outside a flow, the matcher confidence at which a question that names a situation enters it."""
OFF_TOPIC_LEAVE_CONFIDENCE = 0.60
"""In the out_of_scope flow a situation named this clearly starts (there is no flow to keep)."""

SWITCH_MIN_CONFIDENCE = 0.75
"""Mid-flow, a story switches to a non-urgent situation only when the matcher is this sure
(a stolen-account victim telling what the thief posted is still a stolen account)."""

URGENT_SWITCH_MIN_CONFIDENCE = 0.60
"""… and to an urgent one (money moving) at this confidence."""

SOCIAL_MIN = 0.60
"""Thanks, greetings and fear are short: only a close match counts (the cues catch the rest)."""

EMOTION_MAX_CHARS = 12
"""A feeling this short ("我心里好慌啊") is the whole message, whatever the matcher reads in it."""

AMOUNT_MAX_CHARS = 16
"""In a money flow, a message this short that carries an amount is about the amount."""

AMOUNT_YIELDS = 0.55
"""… unless it is this close to a curated question ("我绑的银行卡也被扣了1000" is about the card)."""

EMOTION_YIELDS = 0.40
"""Fear said with a question ("会不会算我诈骗啊 慌死了"): a curated question this near is the act
(the calm line goes first anyway), not the fear phrasing it also resembles."""

SELF_BLAME_YIELDS = 0.60
"""Self-blame asked with a question ("聊天记录要删吗 好丢人"): a curated question this near is
answered (the calm line still goes first), not only comforted."""

QUESTION_SWITCH_MIN_CONFIDENCE = 0.85
"""A question asked mid-flow ("能查到钱转哪去了吗") is about the current situation unless the
matcher is this sure it names another one."""

FLOW_QUESTION_MIN = 0.55
"""In a flow, a question this close to a curated one is answered even when it also resembles
a scenario example (the story reading would only page to the next step)."""

URGENT_SWITCH = frozenset({"fraud_victim", "scam_check", "wallet_loss"})
"""Situations a story may always switch to: money is moving."""

MOVE_YIELDS = 0.80
"""Outside a live-scam flow, a message this close to a curated question is that question even
when it names a move ("有人说交钱能帮我解冻，靠谱吗" has its own answer)."""

LIVE_FLOWS = frozenset({"scam_check", "fraud_victim"})
"""Flows where a live-scam move is answered in place; elsewhere it switches to scam_check."""


class Act(StrEnum):
    empty = "empty"
    command = "command"
    resume = "resume"
    choice = "choice"
    move = "move"
    move_stopped = "move_stopped"
    move_done = "move_done"
    question = "question"
    social = "social"
    progress = "progress"
    amount = "amount"
    same_story = "same_story"
    switch = "switch"
    enter = "enter"
    off_topic = "off_topic"
    emotion = "emotion"
    secrets = "secrets"
    unclear = "unclear"


def in_flow(s: Session) -> bool:
    return s.scenario is not None and s.state in ("scenario", "resume")


def intent_wins(u: Understood, flow: bool = False) -> bool:
    """Is the nearest follow-up phrasing a better reading than a scenario story?"""
    if u.intent is None:
        return False
    score = u.intent_score + (QUESTION_BONUS if u.question else 0.0)
    if score < INTENT_MIN:
        return False
    if u.intent.startswith("social:") and u.intent_score < SOCIAL_MIN:
        return False  # "应该没事吧" is not "没事了"
    if u.intent == "social:emotion" and not u.emotion:
        return False  # "号是被人偷了吗 要怎么办" resembles "我该怎么办啊" but says no feeling
    if u.intent in ("social:bye", "social:thanks") and u.question:
        return False  # "还没报警 我现在就打110吗" is a question, not a goodbye
    if flow and u.question and u.intent_score >= FLOW_QUESTION_MIN:
        return True
    if u.intent_score >= INTENT_STRONG:
        return u.intent_score >= u.story_score - STORY_MARGIN
    return score >= u.story_score


def names_situation(s: Session, u: Understood) -> bool:
    """Outside a flow, a message that names a situation starts it, even when it also asks
    something ("被骗了两百，是不是不用报警了"): urgent reply first, then the answer. After an
    off-topic question there is no flow to keep either ("哦对了 公司让我把微信号借给他们用
    这个可以吗" after a divorce question): a situation named clearly starts it the same way."""
    if u.scenario is None or u.scenario == "out_of_scope":
        return False
    if u.intent == "cmd:human" and u.intent_score >= INTENT_MIN:
        return False  # "转人工 俺要跟真人说话" asks for a person, whatever its words resemble
    if in_flow(s):
        return (s.scenario == "out_of_scope" and u.confidence >= OFF_TOPIC_LEAVE_CONFIDENCE
                and u.intent_score < INTENT_STRONG)  # "我要人工", "盗号的人能被判刑吗": asked, not told
    return u.confidence >= ENTER_MIN_CONFIDENCE


def _amount_answer(s: Session, u: Understood) -> bool:
    amount = u.stated_amount
    return (amount is not None and in_flow(s) and s.scenario in ("fraud_victim", "wallet_loss")
            and (u.scenario in (None, s.scenario, "out_of_scope") or u.chars <= AMOUNT_MAX_CHARS))


def decide(s: Session, u: Understood, returning: bool) -> Act:
    if u.empty:
        return Act.empty
    if u.command is not None:
        return Act.command
    if returning and u.scenario in (None, s.scenario, "out_of_scope") and not u.moves:
        return Act.resume
    if u.choice is not None:
        return Act.choice
    if u.closing:
        return Act.social
    if s.last_move and in_flow(s) and u.stopped and (not u.moves or s.last_move in u.moves):
        return Act.move_stopped  # "屏幕共享已经关了" names the move again, but it is over
    yields = (u.intent is not None and u.intent.startswith("qa:") and u.intent_score >= MOVE_YIELDS
              and not (in_flow(s) and s.scenario in LIVE_FLOWS))
    if u.moves and not yields:
        return Act.move
    if s.last_move and in_flow(s) and u.stopped:
        return Act.move_stopped
    if (in_flow(s) and s.scenario == "scam_check" and not u.moves
            and (u.stopped or "contact_stopped" in u.flags)
            and (not u.question or (u.intent or "").startswith("cmd:"))):
        return Act.move_stopped  # "没给 挂了 接下来咋办": what to do now that it has stopped
    if s.last_move and in_flow(s) and u.did:  # "已经开了": the countermeasure for what was done
        return Act.move_done
    if names_situation(s, u):
        return Act.enter
    if u.self_blame and not u.flags and not u.moves and not (
            u.intent_score >= (SELF_BLAME_YIELDS if u.question else INTENT_STRONG)
            and not (u.intent or "").startswith("social:")):
        return Act.emotion  # "我是不是很蠢": comfort first, not the nearest question's answer
    if _amount_answer(s, u) and not u.question and not (
            (u.intent or "").startswith("qa:") and u.intent_score >= AMOUNT_YIELDS):  # "大概3万": the answer to "被骗了多少钱"
        return Act.amount
    # Progress said again ("冻结好了" twice) is still progress, not a question about freezing.
    if (in_flow(s) and u.flags and (any(f not in s.done for f in u.flags) or not u.question)
            and not u.intent_score >= INTENT_STRONG and not (u.intent or "").startswith("social:")):
        return Act.progress  # "冻结完了 下面是不是该报警": the ack and what is left answer it
    if intent_wins(u, in_flow(s)):
        kind = (u.intent or "").split(":", 1)[0]
        return {"cmd": Act.command, "qa": Act.question, "social": Act.social}.get(kind, Act.unclear)
    if u.flags and in_flow(s):
        return Act.progress
    if _amount_answer(s, u):
        return Act.amount
    if u.emotion and (not u.question or u.intent == "social:emotion") and u.chars <= EMOTION_MAX_CHARS and (
            u.scenario in (None, "out_of_scope") or (in_flow(s) and u.scenario == s.scenario)):
        return Act.emotion  # "我心里好慌啊": one calm line and the next action, not 没看懂
    if u.scenario is not None:
        if in_flow(s) and (u.scenario == s.scenario or (s.scenario == "fraud_victim" and u.scenario == "scam_check")):
            return Act.same_story  # the scam that already took money goes on: its moves are answered in place
        if in_flow(s) and u.scenario == "out_of_scope":
            return Act.off_topic
        if in_flow(s) and u.confidence < (
                ENTER_MIN_CONFIDENCE if s.scenario == "out_of_scope"  # nothing to stay in
                else QUESTION_SWITCH_MIN_CONFIDENCE if u.question
                else URGENT_SWITCH_MIN_CONFIDENCE if u.scenario in URGENT_SWITCH else SWITCH_MIN_CONFIDENCE):
            return Act.same_story
        return Act.switch if in_flow(s) else Act.enter
    if u.emotion:
        return Act.emotion
    if u.secrets or u.personal:
        return Act.secrets
    return Act.unclear

