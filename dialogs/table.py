"""The dialog as a table: for each state, which handler answers each act.

Modelled on python-telegram-bot's ``ConversationHandler(states={STATE: [handlers]})``: one
place to read what the bot does with, say, a thank-you in the middle of a scenario. The act
comes from ``dialogs.acts.decide``; the handler names are methods of ``dialogs.engine.Dialog``.
A state lists only where it differs from ``DEFAULT``.
"""

from __future__ import annotations

from dialogs.acts import Act
from dialogs.session import State

DEFAULT: dict[Act, str] = {
    Act.empty: "on_empty",
    Act.command: "on_command",
    Act.resume: "on_resume",
    Act.choice: "on_choice",
    Act.move: "on_move",
    Act.move_stopped: "on_move_stopped",
    Act.move_done: "on_move_done",
    Act.question: "on_question",
    Act.social: "on_social",
    Act.progress: "on_progress",
    Act.amount: "on_amount",
    Act.same_story: "on_same_story",
    Act.switch: "on_enter",
    Act.enter: "on_enter",
    Act.off_topic: "on_off_topic",
    Act.emotion: "on_emotion",
    Act.secrets: "on_secrets",
    Act.unclear: "on_unclear",
}

STATES: dict[State, dict[Act, str]] = {
    "start": {},
    "menu": {},
    "clarify": {},
    "scenario": {Act.secrets: "on_nothing"},  # the secret warning is the whole answer
    "resume": {Act.secrets: "on_nothing"},
    "group": {},
}


def handler_for(state: State, act: Act) -> str:
    return STATES.get(state, {}).get(act) or DEFAULT[act]
