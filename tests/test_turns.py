"""The turn model: every message is one act decided in its context (dialogs/acts.py).

Pure tests: understand + dialog step, no server. Phrasings here are written for the tests
and are not in knowledge/data (so they check generalisation, not lookup), except where a test
walks the data files on purpose (every command phrasing, every Q&A entry, every move).
"""

from __future__ import annotations

import re

import pytest

from dialogs.acts import Act, decide
from dialogs.engine import Dialog
from dialogs.session import Session
from dialogs.understand import Command, Understander, Understood
from knowledge.loader import MAX_SCREEN_CHARS, problems
from knowledge.matcher import Matcher
from knowledge.render import REF_RE, render, render_text
from knowledge.scanner import Scanner
from knowledge.schema import SCENARIO_IDS, KnowledgeBase


@pytest.fixture(scope="module")
def und(kb: KnowledgeBase) -> Understander:
    return Understander(kb, Matcher.from_kb(kb), Scanner.from_kb(kb))


class Chat:
    """One user talking to the pure dialog."""

    def __init__(self, kb: KnowledgeBase, und: Understander) -> None:
        self.kb, self.und, self.dialog = kb, und, Dialog(kb)
        self.s = Session()
        self.now = 1.0
        self.last: Understood | None = None

    def act(self, text: str) -> Act:
        u = self.dialog.in_context(self.s, self.und.understand(text))
        return decide(self.s, u, False)

    def say(self, text: str) -> str:
        self.last = self.und.understand(text)
        self.s, replies = self.dialog.step(self.s, self.last, self.now)
        self.now += 1
        return "\n".join(replies)


@pytest.fixture
def chat(kb: KnowledgeBase, und: Understander) -> Chat:
    return Chat(kb, und)


def _in(chat: Chat, sid: str) -> None:
    chat.say(str(SCENARIO_IDS.index(sid) + 1))
    assert chat.s.scenario == sid


# ----------------------------------------------------------------------------- commands

NATURAL_COMMANDS = [
    ("那相关的法条有哪些", Command.law),
    ("这个有什么法律规定吗", Command.law),
    ("我需要保存哪些证据呢", Command.evidence),
    ("证据都要留啥", Command.evidence),
    ("我该打哪个电话求助", Command.hotlines),
    ("接下来呢 我该干嘛", Command.next),
    ("还有别的要做吗", Command.next),
    ("条文原文给我看下", Command.verbatim),
    ("能不能转个人工", Command.human),
    ("我现在第一步该干啥", Command.first),
]


@pytest.mark.parametrize("text,command", NATURAL_COMMANDS)
def test_commands_in_natural_phrasings(chat: Chat, text: str, command: Command) -> None:
    _in(chat, "fraud_victim")
    assert chat.act(text) is Act.command
    u = chat.dialog.in_context(chat.s, chat.und.understand(text))
    assert u.intent == f"cmd:{command.value}"


def test_every_command_phrasing_in_the_data_is_a_command(kb: KnowledgeBase, und: Understander) -> None:
    assert kb.words is not None
    wrong = []
    for cmd, lines in kb.words.command_phrases.items():
        for line in lines:
            c = Chat(kb, und)
            _in(c, "wallet_loss")
            u = c.dialog.in_context(c.s, und.understand(line))
            got = u.command.value if u.command is not None else (u.intent or "")[4:]
            if decide(c.s, u, False) is not Act.command or got != cmd:
                wrong.append((line, cmd, got))
    assert not wrong


def test_natural_law_question_is_one_screen_with_citations(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "account_rental")
    out = chat.say("这种情况法律依据是什么")
    assert len(out) <= MAX_SCREEN_CHARS
    assert "第三十一条" in out and "原文" in out and kb.hotlines["12348"].number in out
    assert kb.laws["adfl_31"].text not in out


def test_whole_word_commands_still_work_and_menu_resets(chat: Chat) -> None:
    _in(chat, "fraud_victim")
    assert "「" not in chat.say("下一步") or True
    step = chat.s.step
    assert step == 1
    chat.say("菜单")
    assert chat.s.state == "menu" and chat.s.scenario is None


# ----------------------------------------------------------------------------- Q&A


def _qa_ids(kb: KnowledgeBase) -> list[str]:
    return sorted(kb.qa)


def test_there_are_questions_for_every_situation(kb: KnowledgeBase) -> None:
    covered = {sid for q in kb.qa.values() for sid in (*q.scenarios, *q.by_scenario)}
    assert covered >= set(SCENARIO_IDS)
    assert len(kb.qa) >= 40


def test_every_qa_entry_renders_and_passes_kb_check(kb: KnowledgeBase) -> None:
    found = problems(kb)
    for q in kb.qa.values():
        mine = [p for p in found if p.startswith(f"qa.{q.id}.")]
        assert not mine, mine
        for template in (q.answer, *q.by_scenario.values()):
            kinds = {m.group(1) for m in REF_RE.finditer(template)}
            assert kinds <= {"law", "hotline", "proc"}
            text = render(kb, template)
            assert "{" not in text and 0 < len(text) <= MAX_SCREEN_CHARS


@pytest.mark.parametrize("sid", SCENARIO_IDS)
def test_every_qa_answer_is_reachable_in_each_situation(kb: KnowledgeBase, und: Understander, sid: str) -> None:
    """Each entry's first paraphrase, asked in this situation, gets that entry's answer
    for the situation (its by_scenario variant when it has one) — or, in a live-scam flow,
    the countermeasure of a scam move the question names (moves come first there)."""
    misses = []
    for q in kb.qa.values():
        c = Chat(kb, und)
        _in(c, sid)
        out = c.say(q.paraphrases[0])
        want = render(kb, q.by_scenario.get(sid, q.answer))  # type: ignore[call-overload]
        moved = sid in ("scam_check", "fraud_victim") and any(
            render(kb, kb.moves[m].answer) in out for m in (c.last.moves if c.last else []))
        if want not in out and not moved:
            misses.append(q.id)
    assert not misses


def test_question_answers_keep_the_users_place(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "fraud_victim")
    chat.say("下一步")
    before = (chat.s.state, chat.s.scenario, chat.s.step)
    out = chat.say("那骗走的钱还追得回来不")
    assert render(kb, kb.qa["money_back"].answer) in out
    assert (chat.s.state, chat.s.scenario, chat.s.step) == before
    nxt = chat.say("下一步")
    assert render(kb, kb.scenarios["fraud_victim"].steps[1].text) in nxt


def test_stolen_account_victim_asking_about_arrest_is_not_lectured_on_renting(chat: Chat, kb: KnowledgeBase) -> None:
    chat.say("我的微信号被人盗了，骗子拿它到处借钱")
    assert chat.s.scenario == "account_stolen"
    out = chat.say("警察会不会因为这个抓我啊")
    assert render(kb, kb.qa["liable"].by_scenario["account_stolen"]) in out
    assert "第三十一条" not in out and chat.s.scenario == "account_stolen"


def test_fear_of_being_taken_for_the_scammer_is_the_liability_question(chat: Chat, kb: KnowledgeBase) -> None:
    """"报警的话警察会不会觉得是我骗的" asks about liability; its 报警 + threat-like wording
    once matched the sextortion answer ("he says if I report, he'll publish the video")."""
    chat.say("号被人偷了 那人拿我微信骗了我表哥三千")
    assert chat.s.scenario == "account_stolen"  # my stolen account cheated him: not my own loss
    out = chat.say("我要是去报案 警察会不会觉得是我自己骗的")
    assert "受害人" in out and chat.s.scenario == "account_stolen"
    assert render(kb, kb.qa["sextortion"].answer) not in out


def test_the_brief_is_silent_on_durations_and_the_bot_says_so(chat: Chat) -> None:
    _in(chat, "fraud_victim")
    out = chat.say("报案以后一般多长时间会有结果")
    assert "没有统一的时间" in out and not re.search(r"\d+\s*(?:天|个月|小时)", out)


# ----------------------------------------------------------------------------- progress: negation and quotes

@pytest.mark.parametrize("text", ["还没报警呢", "我没有报过警", "要不要报警", "我不敢报警", "我打算明天去报案"])
def test_negated_or_asked_progress_is_not_progress(und: Understander, text: str) -> None:
    assert "reported" not in und.understand(text).flags


@pytest.mark.parametrize("text", ["已经报警了", "报了警 也做了笔录", "110打过了", "刚去派出所报了案"])
def test_reported_progress_is_progress(und: Understander, text: str) -> None:
    assert "reported" in und.understand(text).flags


def test_a_scammers_video_statement_is_a_scam_sign_not_a_police_report(chat: Chat) -> None:
    chat.say("有人打电话自称是警察 说我涉嫌一起洗钱案")
    assert chat.s.scenario == "scam_check"
    out = chat.say("对方说现在要开视频给我做笔录")
    assert "reported" not in chat.s.done
    assert "要紧的几步你都做完了" not in out
    assert "不会通过视频" in out


def test_quoted_speech_is_not_the_users_progress(und: Understander) -> None:
    assert und.understand("骗子让我说已经冻结了").flags == []
    assert "frozen" in und.understand("我已经冻结了帐号").flags


def test_progress_in_the_first_message_skips_the_urgent_step(chat: Chat, kb: KnowledgeBase) -> None:
    out = chat.say("刷单被骗了五千多，昨天已经报过警了")
    assert chat.s.scenario == "fraud_victim" and "reported" in chat.s.done
    assert render(kb, kb.scenarios["fraud_victim"].urgent) not in out
    assert render_text(kb, "urgent_already", labels=kb.flags["reported"].label) in out


# ----------------------------------------------------------------------------- live-scam moves

MOVES = [
    ("screen_share", "他让我打开会议软件把屏幕共享给他看"),
    ("install_app", "客服叫我下载一个app来操作退款"),
    ("safe_account", "对方让我把存款转到他们的安全账户"),
    ("police_impersonation", "电话里的人说他是公安局的 我涉嫌洗钱"),
    ("video_statement", "他说要开视频录口供"),
    ("keep_secret", "他叮嘱我不许告诉家人"),
    ("credit_threat", "说我以前的校园贷没注销 会影响征信"),
    ("borrow_transfer", "让我从借呗借出来转到他给的账户"),
    ("fee_first", "说要先交一笔解冻费才能提现"),
    ("card_number", "他要我把银行卡号发给他"),
    ("code_given", "我已经把验证码告诉他了"),
    ("fake_12381", "收到个12381发的短信 里面有个链接让我点"),
    ("relative_transferring", "我妈不听劝 还要把剩下的钱也转过去"),
    ("impersonate_official", "对方自称是银行的 说我的卡要升级"),
    ("pressure", "他一直催我别挂电话 马上转"),
    ("qr_scan", "他发了个二维码叫我扫一下领退款"),
    ("loan_offer", "有人说能帮我贷款 不看征信"),
    ("relative_emergency", "电话里有人说是我外孙 出车祸了要赔钱"),
    ("fake_lawyer", "有个律所打来说能帮我维权 要先交两千代理费"),
    ("keep_secret", "他说这事不能告诉家属"),
    ("video_statement", "我妈正跟一个警官在视频呢"),
    ("pressure", "卖票的说今晚不付定金就给别人了"),
    ("pressure", "对方说今天之内必须转 不然名额就没了"),
    ("fee_first", "客服说没完成这轮任务本金就提不出来 算我违约还要赔"),
    ("fee_first", "群主讲你在充两千 之前的钱就都能返回来"),
    ("fee_first", "他说只要交了税就能把钱取出来 还说帮我垫一部分"),
    ("fee_first", "对方说押金不用担心 入职马上退给你"),
    ("million_guarantee", "他说我不处理就真会扣钱"),
]


@pytest.mark.parametrize("move,text", MOVES)
def test_live_scam_moves_get_their_countermeasure(chat: Chat, kb: KnowledgeBase, move: str, text: str) -> None:
    chat.say("有个陌生人一直在电话里催我转账")
    assert chat.s.scenario == "scam_check"
    out = chat.say(text)
    assert move in (chat.last.moves if chat.last else [])
    assert render(kb, kb.moves[move].answer) in out
    assert chat.s.scenario in ("scam_check", "fraud_victim")


def test_a_new_detail_of_a_live_scam_gets_the_rules_not_the_next_catalogue_page(chat: Chat, kb: KnowledgeBase) -> None:
    chat.say("有个自称客服的人一直在微信上找我")
    step = chat.s.step
    out = chat.say("对方说他们系统出了故障要处理一下")
    assert out == render_text(kb, "live_generic") and chat.s.step == step


def test_screen_sharing_then_stopped(chat: Chat, kb: KnowledgeBase) -> None:
    chat.say("自称京东客服的人说要给我退款")
    chat.say("他现在让我开屏幕共享")
    out = chat.say("关掉了")
    assert out == render(kb, kb.moves["screen_share"].after)


def test_a_live_move_mid_flow_elsewhere_switches_to_scam_check(chat: Chat) -> None:
    _in(chat, "wallet_loss")
    out = chat.say("刚才有个自称客服的打电话 让我开共享屏幕帮我退钱")
    assert chat.s.scenario == "scam_check" and "屏幕共享" in out


def test_an_unfreeze_fee_is_answered_inside_the_frozen_account_flow(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "account_frozen")
    out = chat.say("有人说先交五百块手续费就能帮我解冻")
    assert chat.s.scenario == "account_frozen"
    assert "骗" in out


# ----------------------------------------------------------------------------- social acts keep the place


def test_thanks_emotion_and_greeting_mid_flow_keep_the_users_place(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "account_stolen")
    chat.say("下一步")
    chat.say("下一步")
    place = (chat.s.state, chat.s.scenario, chat.s.step)
    thanks = chat.say("太感谢你了")
    assert "不客气" in thanks and (chat.s.state, chat.s.scenario, chat.s.step) == place
    scared = chat.say("我现在好慌啊")
    assert scared.startswith(render_text(kb, "calm"))
    assert render(kb, kb.scenarios["account_stolen"].steps[place[2] - 1].text) in scared
    hello = chat.say("在吗")
    assert kb.scenarios["account_stolen"].title in hello
    assert (chat.s.state, chat.s.scenario, chat.s.step) == place
    nxt = chat.say("下一步")
    assert render(kb, kb.scenarios["account_stolen"].steps[place[2]].text) in nxt


def test_thanks_says_what_is_left(chat: Chat, kb: KnowledgeBase) -> None:
    chat.say("我被骗了三千块")
    out = chat.say("好的 谢谢你 我这就去报警")
    assert "不客气" in out and kb.flags["reported"].label in out


def test_changing_the_phone_number_after_a_leak_depends(chat: Chat, kb: KnowledgeBase) -> None:
    """In info_leak, "换号" is not the stolen-account "补办手机卡" answer."""
    _in(chat, "info_leak")
    out = chat.say("我要不要换个手机号啊")
    assert render(kb, kb.qa["sim_card"].by_scenario["info_leak"]) in out


def test_thanks_with_self_blame_comforts_before_the_close(chat: Chat, kb: KnowledgeBase) -> None:
    chat.say("我被骗了三千块")
    out = chat.say("谢谢 我真蠢")
    assert out.startswith(render_text(kb, "self_blame")) and "不客气" in out


@pytest.mark.parametrize("text", ["好烦 怎么这么倒霉", "烦死了"])
def test_annoyance_and_bad_luck_are_feelings(und: Understander, text: str) -> None:
    assert und.understand(text).emotion


def test_fear_in_a_message_gets_one_calm_line_then_the_answer(chat: Chat, kb: KnowledgeBase) -> None:
    out = chat.say("救命 我被骗了八千块 怎么办")
    assert out.startswith(render_text(kb, "calm"))
    assert render(kb, kb.scenarios["fraud_victim"].urgent) in out
    assert out.count(render_text(kb, "calm")) == 1


def test_greeting_at_the_start_is_the_menu(chat: Chat) -> None:
    out = chat.say("你好呀")
    assert chat.s.state == "menu" and "1." in out


def test_greeting_after_an_off_topic_question_is_the_menu(chat: Chat) -> None:
    """"其他问题" is not a place to keep: a greeting there shows what the bot can do."""
    _in(chat, "out_of_scope")
    out = chat.say("你好")
    assert chat.s.state == "menu" and "1." in out


def test_unclear_mid_flow_offers_the_likeliest_things_not_the_command_list(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "info_leak")
    out = chat.say("xyz")
    assert out == render_text(kb, "unclear_midflow", title=kb.scenarios["info_leak"].title)
    assert chat.s.scenario == "info_leak"
    # plainly about something else: what the bot covers, and the user's place
    out = chat.say("今天晚饭吃点什么好呢")
    assert out == render_text(kb, "off_topic_midflow", title=kb.scenarios["info_leak"].title)
    assert chat.s.scenario == "info_leak"


def test_mixed_story_keeps_both_problems(chat: Chat, kb: KnowledgeBase) -> None:
    out = chat.say("刷单被骗了7000，而且我的微信号也被盗了")
    assert chat.s.scenario == "fraud_victim"
    assert kb.scenarios["account_stolen"].title in out


@pytest.mark.parametrize("text", [
    "有个网警说我账户涉案 叫我配合资金核查 我先后打过去两万",
    "说帮我办贷款要先交手续费 我付了2600",
])
def test_money_already_gone_reads_as_a_victim_not_a_live_scam(und: Understander, text: str) -> None:
    assert und.understand(text).scenario == "fraud_victim"


@pytest.mark.parametrize("text", ["他让我转5000到安全账户", "我还没转那3000"])
def test_money_only_asked_for_or_not_paid_stays_what_it_was(und: Understander, text: str) -> None:
    assert und.understand(text).scenario != "fraud_victim"


@pytest.mark.parametrize("text", ["好的 拜了", "行 我回去收集一下记录", "嗯 我这就去打电话"])
def test_short_sign_offs_in_other_words_are_closings(und: Understander, text: str) -> None:
    assert und.understand(text).closing


@pytest.mark.parametrize("text", ["先打银行还是先打微信啊", "我现在去派出所要带啥"])
def test_questions_that_start_like_a_sign_off_are_not_closings(und: Understander, text: str) -> None:
    assert not und.understand(text).closing


@pytest.mark.parametrize("text", ["我真是太笨了 好蠢啊", "我是不是很傻啊 这么明显都信", "都怪我 不该信他的吧"])
def test_self_blame_gets_a_comforting_line_even_as_a_question(chat: Chat, kb: KnowledgeBase, text: str) -> None:
    """Self-blame is comforted first, even when asked as a question (not answered as 'is it a scam')."""
    _in(chat, "fraud_victim")
    out = chat.say(text)
    assert out.startswith(render_text(kb, "self_blame")) and "没太明白" not in out


@pytest.mark.parametrize("text", ["那个傻骗子又打电话来了", "他说我笨 让我再转一笔"])
def test_calling_someone_else_names_is_not_self_blame(und: Understander, text: str) -> None:
    assert not und.understand(text).self_blame


def test_progress_with_a_question_gets_the_ack_and_the_answer(chat: Chat, kb: KnowledgeBase) -> None:
    """"报警了 … 钱多久能回来": the report is remembered and the question is answered too."""
    _in(chat, "fraud_victim")
    out = chat.say("报警了 派出所给了回执 钱多久能回来啊")
    assert "已记下" in out
    assert render(kb, kb.qa["how_long"].by_scenario.get("fraud_victim", kb.qa["how_long"].answer)).split("\n")[0] in out


@pytest.mark.parametrize("text", ["就1200 要不要报警", "不到三千是不是就不管了", "才800块 警察会立案吗"])
def test_a_reporting_question_with_a_small_amount_gets_the_small_amount_answer(chat: Chat, kb: KnowledgeBase, text: str) -> None:
    _in(chat, "fraud_victim")
    out = chat.say(text)
    assert render(kb, kb.qa["small_amount"].answer).split("\n")[0] in out


@pytest.mark.parametrize("text", ["谢谢 你比那些客服靠谱多了", "好 我让我姐也发个朋友圈提醒下 谢啦", "ok 我明天去银行拿材料"])
def test_thanks_or_a_plan_with_more_words_is_a_close(und: Understander, text: str) -> None:
    assert und.understand(text).closing


@pytest.mark.parametrize("text", ["谢谢 那钱还能追回吗", "我明天去派出所要带啥"])
def test_thanks_or_a_plan_followed_by_a_question_is_not_a_close(und: Understander, text: str) -> None:
    assert not und.understand(text).closing


def test_a_long_story_ending_in_thanks_is_a_close(und: Understander) -> None:
    assert und.understand("我打电话问了我表姐本人 她说根本没找我借钱 还好 谢谢你").closing
    assert not und.understand("谢谢 那钱还能追回来吗").closing


def test_a_question_mid_flow_gets_the_nearest_answer_not_a_list(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "fraud_victim")
    out = chat.say("我要去报案的话 得给民警看些啥")
    assert "回复数字就行" not in out and "没太明白" not in out


def test_progress_with_a_trailing_question_is_acknowledged_with_what_is_left(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "account_stolen")
    out = chat.say("号已经冻结好了 接下来是不是要报警")
    assert "frozen" in chat.s.done
    assert out.startswith(render_text(kb, "progress_ack", labels=kb.flags["frozen"].label))


def test_what_someone_else_did_is_not_the_users_progress(und: Understander) -> None:
    assert und.progress_flags("她现在把我拉黑了") == []


def test_money_gone_alone_stays_a_wallet_loss_not_a_fraud(und: Understander) -> None:
    assert und.understand("手机借同事玩了半天 还回来零钱少了八百").scenario != "fraud_victim"


def test_locked_out_after_giving_a_code_reads_as_a_stolen_account(und: Understander) -> None:
    u = und.understand("有个冒充老乡的人叫我把收到的验证码发他 我发了 结果我的微信被挤下线了")
    assert u.scenario == "account_stolen"


@pytest.mark.parametrize("text", ["同事叫我帮忙接个验证码 我给他了 现在号登不进去了",
                                  "说帮他收一下验证码就行 收了转给他 结果我自己的微信登录不了"])
def test_helping_with_a_code_then_locked_out_is_a_stolen_account_not_a_rental(und: Understander, text: str) -> None:
    """"帮忙收验证码" reads like renting out the account; being locked out says it was taken."""
    assert und.understand(text).scenario == "account_stolen"


def test_helping_with_a_code_without_losing_the_account_is_not_a_stolen_account(und: Understander) -> None:
    assert und.understand("有人叫我帮忙收个验证码 给我50块 能帮吗").scenario != "account_stolen"


def test_a_report_with_a_statement_about_the_police_gets_its_answer(chat: Chat, kb: KnowledgeBase) -> None:
    """"报警了 警察说是民事纠纷": the ack alone would drop what the police said."""
    _in(chat, "fraud_victim")
    out = chat.say("我报了警 民警说这个算民事纠纷 让我自己去法院起诉")
    assert "已记下" in out
    firsts = [render(kb, kb.qa[q].by_scenario.get("fraud_victim", kb.qa[q].answer)).split("\n")[0] for q in ("no_case", "sue")]
    assert any(first in out for first in firsts)


def test_still_inside_their_meeting_app_is_the_screen_share_move(und: Understander) -> None:
    assert "screen_share" in und.understand("我现在还在对方的会议软件里 咋办").moves


def test_progress_said_twice_is_acknowledged_not_answered_as_a_how_to(kb: KnowledgeBase, und: Understander) -> None:
    """A user who repeats "冻结好了" gets the acknowledgement and what is left again, not the
    instructions for freezing."""
    dialog, s = Dialog(kb), Session()
    for text in ["我wx被盗了 有人用我号找我朋友借钱", "冻结好了"]:
        s, _ = dialog.step(s, und.understand(text), 1000.0)
    s, again = dialog.step(s, und.understand("冻结好了"), 1001.0)
    assert "frozen" in s.done
    assert "冻结帐号 → 开始冻结" not in "\n".join(again)
    assert "已记下" in "\n".join(again) or "还需要做" in "\n".join(again)


@pytest.mark.parametrize("text", ["有人说是公安局的 说我涉嫌洗钱 要视频做笔录", "对方说他是警察，还说要视频做笔录"])
def test_a_quote_carried_on_in_the_next_clause_is_still_not_a_report(und: Understander, text: str) -> None:
    """The scammer's "要视频做笔录" after "有人说…" is a scam sign, not the user's police report."""
    assert "reported" not in und.understand(text).flags


@pytest.mark.parametrize("text", ["我打110了 警察说马上过来", "刚打过110了"])
def test_calling_110_said_plainly_is_a_report(und: Understander, text: str) -> None:
    assert "reported" in und.understand(text).flags


@pytest.mark.parametrize("text", ["懂了 回去就跟他说 谢谢你啊小同志", "好 听你的 我去睡一会", "你说的我记下了 我去跟他爸妈说",
                                  "好 我先去报警 回头再来问你", "明白了 我叫我爸明天就去", "嗯 让她今天去报警"])
def test_an_ack_then_a_plan_is_a_close(und: Understander, text: str) -> None:
    assert und.understand(text).closing


@pytest.mark.parametrize("text", ["好 我去派出所要带啥", "懂了 那我明天去银行要带什么"])
def test_an_ack_then_a_question_is_not_a_close(und: Understander, text: str) -> None:
    assert not und.understand(text).closing


@pytest.mark.parametrize("text", ["我差点就转了 现在手还在抖", "警察会问啥 我脑子现在一片空白"])
def test_fear_in_other_words_is_heard(und: Understander, text: str) -> None:
    assert und.understand(text).emotion


@pytest.mark.parametrize("text", ["我没给 挂了 接下来咋办", "拉黑了 然后呢"])
def test_hanging_up_on_a_live_scam_gets_what_to_do_now(chat: Chat, kb: KnowledgeBase, text: str) -> None:
    """In a live scam with no move named, "挂了/拉黑了" gets the what-now list, not the next scam pattern."""
    _in(chat, "scam_check")
    assert render_text(kb, "live_after") in chat.say(text)


def test_the_scammer_deleting_the_user_is_not_the_user_stopping(und: Understander) -> None:
    assert not und.understand("对方把我删了").stopped
    assert und.understand("屏幕已经关了").stopped


def test_a_new_detail_in_the_flow_gets_its_curated_answer_not_the_next_page(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "wallet_loss")
    out = chat.say("找到了 账单上写的是亲属卡消费 给一个不认识的人开的")
    assert render(kb, kb.qa["qinshuka"].by_scenario.get("wallet_loss", kb.qa["qinshuka"].answer)) in out


def test_the_same_move_named_again_as_stopped_is_the_stop(chat: Chat, kb: KnowledgeBase) -> None:
    """"屏幕共享已经关了" names screen sharing again, but it reports the stop: what to do next."""
    chat.say("有个客服让我开屏幕共享")
    move = chat.s.last_move
    assert move is not None
    assert render(kb, kb.moves[move].after) in chat.say("屏幕共享已经关了")


def test_fear_asked_as_a_question_gets_the_question_answered_after_a_calm_line(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "account_stolen")
    out = chat.say("要是有同学真转钱给他了 我要赔吗 会不会算我诈骗啊 慌死了")
    assert chat.last is not None and chat.last.emotion
    assert "别怕" in out and render(kb, kb.qa["sue"].by_scenario["account_stolen"]) in out


def test_a_question_that_sounds_like_a_goodbye_is_still_a_question(und: Understander) -> None:
    u = und.understand("还没报警 我现在就打110吗")
    s = Session(state="scenario", scenario="fraud_victim")
    assert decide(s, u, False) is not Act.social


def test_law_asked_out_of_scope_names_12348_not_the_menu(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "out_of_scope")
    out = chat.say("法律依据")
    assert "12348" in out and out != "\n".join(Dialog(kb).menu(Session()))


def test_a_topic_change_opener_is_not_the_command_to_go_on(und: Understander) -> None:
    """"算了 还有个事 …": "还有个事" opens a new topic; it is not "还有呢" (next page)."""
    u = und.understand("算了 还有个事 我朋友让我借他微信号用几天")
    assert u.intent != "cmd:next"


def test_a_situation_named_after_an_out_of_scope_question_is_entered(chat: Chat) -> None:
    """Out of scope there is no flow to stay in: a story that names a situation starts it,
    even when it is asked as a question ("老板让我把微信借给他用几天")."""
    _in(chat, "out_of_scope")
    chat.say("老板说让我把微信借给他用几天 抵一部分工资")
    assert chat.s.scenario == "account_rental"


def test_a_question_whose_home_is_another_situation_moves_the_flow_there(chat: Chat, kb: KnowledgeBase) -> None:
    """Mid fraud_victim, "我的微信在另一台设备登录了 不是我 是不是被盗了" is answered, and the
    next "然后呢" goes on with the stolen-account steps."""
    _in(chat, "fraud_victim")
    out = chat.say("我刚收到提醒说我的微信在另一台设备登录了 不是我 我是不是也被盗了")
    assert render(kb, kb.qa["am_i_stolen"].answer) in out
    assert chat.s.scenario == "account_stolen"


def test_a_frozen_account_with_an_unfreeze_offer_stays_frozen_and_gets_the_countermeasure(
        chat: Chat, kb: KnowledgeBase) -> None:
    """MOVE_KEEPS_SCENARIO: a fairly sure situation keeps its flow; the move's countermeasure comes with it."""
    out = chat.say("我支付宝跟微信都被冻了 网上找了个解冻的 让我先交1000保证金")
    assert chat.s.scenario == "account_frozen"
    assert render(kb, kb.moves["fee_first"].answer) in out


@pytest.mark.parametrize("text", ["我想贷款5万 平台说要先交3000保证金 交了马上放款", "短信说百万保障要到期 每月扣500 给了个电话"])
def test_a_promise_or_a_phone_number_given_is_not_money_paid(und: Understander, text: str) -> None:
    assert und.understand(text).scenario != "fraud_victim"


def test_paying_a_friend_who_asked_to_borrow_is_fraud_victim(und: Understander) -> None:
    u = und.understand("我同学wx找我借钱 说急用 我转了2k 结果打电话给他 他说号被盗了根本没借")
    assert u.scenario == "fraud_victim"


def test_a_fee_to_unfreeze_the_users_own_account_starts_account_frozen(chat: Chat) -> None:
    chat.say("我支付宝跟微信都被冻了 网上找了个解冻的 让我先交1000保证金")
    assert chat.s.scenario == "account_frozen"


def test_a_loan_scam_that_claims_a_freeze_stays_a_live_scam(chat: Chat) -> None:
    chat.say("网上贷款说我银行卡号填错了 账户冻结 要交3000解冻才能放款")
    assert chat.s.scenario == "scam_check"


def test_fear_with_a_what_now_question_gets_calm_and_the_current_step(chat: Chat, kb: KnowledgeBase) -> None:
    """"现在怎么办 我妈一直哭": the calm line first, and not a far-off curated answer (how to
    convince a relative) picked only because nothing is near."""
    _in(chat, "fraud_victim")
    out = chat.say("现在怎么办 我妈一直哭")
    convince = render(kb, kb.qa["convince_relative"].by_scenario.get("fraud_victim", kb.qa["convince_relative"].answer))
    assert out.startswith(render_text(kb, "calm")) and convince not in out and "没太明白" not in out


@pytest.mark.parametrize("text", ["我还要做什么吗", "接下来我要做什么"])
def test_what_now_asked_in_a_live_scam_gets_what_to_do(chat: Chat, kb: KnowledgeBase, text: str) -> None:
    """In scam_check a natural "what else should I do" gets the what-now list; the exact word
    下一步 still shows the next scam pattern, as the urgent reply offers."""
    _in(chat, "scam_check")
    assert render_text(kb, "live_after") in chat.say(text)
    assert render_text(kb, "live_after") not in chat.say("下一步")


def test_progress_with_thanks_still_answers_the_question(chat: Chat, kb: KnowledgeBase) -> None:
    """"冻结好了，谢谢你。手机卡要不要补办": the thanks wins the intent, but the ack must be
    followed by the curated answer to the question (on_progress falls back to the best qa reading)."""
    _in(chat, "account_stolen")
    out = chat.say("冻结好了，谢谢你啊。那我的手机卡要不要去营业厅补办")
    assert "已记下" in out and "补办" in out


def test_what_if_about_codes_is_not_the_code_asked_move(und: Understander) -> None:
    """"他要是拿卡收验证码": 要是 is "if", nobody asks the user for the code (code_asked trigger)."""
    assert "code_asked" not in und.understand("他要是拿我的卡收验证码改密码怎么办").moves
    assert "code_asked" in und.understand("客服要我说一下验证码").moves


def test_own_stolen_account_others_paid_stays_account_stolen(und: Understander) -> None:
    """"我的号被盗了 同事转了三千": the colleague paid the thief; the user owns a stolen account
    (matcher: OWN_STOLEN_RE keeps a fraud_victim clause from leading, and no paid switch)."""
    u = und.understand("我的微信号昨天被人盗了 好几个朋友收到借钱消息 有个同事已经转了两千过去 我先做什么")
    assert u.scenario == "account_stolen"
    assert und.understand("我同学wx找我借钱 说急用 我转了2k 结果打电话给他 他说号被盗了根本没借").scenario == "fraud_victim"


def test_thanks_with_zheme_and_a_goodbye_at_the_end_are_closings(und: Understander) -> None:
    """“这么多” is no question; a message that ends in 拜拜 is a goodbye whatever came before."""
    assert und.understand("好的 记住了 谢谢你 陪我聊了这么多 辛苦了").closing
    assert und.understand("多谢 我明天就去报案 有啥不明白的再来问你 再见").closing
    assert not und.understand("谢谢 那钱怎么追回来").closing


def test_a_plan_with_a_question_mark_is_not_a_close(und: Understander) -> None:
    """“我现在打110?” asks whether to call; it is not “我这就去打” said as a sign-off."""
    assert not und.understand("我现在就打110? 骗子说不能挂电话").closing
    assert und.understand("我现在就打110").closing


@pytest.mark.parametrize("text", ["谢谢你提醒 那我申诉要多长时间能解开", "那我申诉要多长时间能解开啊"])
def test_how_long_in_other_words_is_a_question_not_a_closing(und: Understander, text: str) -> None:
    """"多长时间" asks like "多久" (the cue and the after-thanks check see the raw text, not synonyms)."""
    u = und.understand(text)
    assert u.question and not u.closing


def test_user_asking_to_keep_it_from_family_is_not_the_keep_secret_move(und: Understander) -> None:
    """"能不能别让家里知道" is the user's own worry, not a scammer's "不许告诉家人"."""
    assert "keep_secret" not in und.understand("能不能别让家里知道").moves
    assert "keep_secret" in und.understand("他说别让家里知道").moves


def test_passing_money_on_to_a_friend_is_not_an_unfreeze_fee(und: Understander) -> None:
    """"收过一笔钱再转给他" is money relayed (跑分), not "再转一笔才能解冻"."""
    assert "fee_first" not in und.understand("上个月帮朋友收过一笔钱 再转给他 是这个吗").moves
    assert "fee_first" in und.understand("他说还要再转五千才能解冻").moves


def test_a_company_that_has_a_contract_is_not_a_forged_document(und: Understander) -> None:
    """"他说是正规公司，有合同的" argues for renting; a sent contract is still the fake_document move."""
    assert "fake_document" not in und.understand("他说是正规公司，有合同的，这样也不行吗").moves
    assert "fake_document" in und.understand("他给我发了个贷款合同 说要交钱").moves


def test_an_amount_told_after_reporting_does_not_send_the_user_to_110_again(chat: Chat, kb: KnowledgeBase) -> None:
    out = chat.say("我被骗了两千 已经报警了")
    assert render_text(kb, "amount_small_reported", amount=2000) in out
    assert render_text(kb, "amount_small", amount=2000).split("\n")[0] not in out


def test_an_answer_that_urges_the_step_just_reported_is_not_added(kb: KnowledgeBase) -> None:
    """"报警了 …": the ack must not be followed by an answer that says "马上打110报警"."""
    dialog = Dialog(kb)
    assert dialog._urges_again(["reported"], ["钱已经转出去了，马上打110报警"])
    assert not dialog._urges_again(["frozen"], ["钱已经转出去了，马上打110报警"])
    assert not dialog._urges_again(["reported"], ["报案回执要保存好"])
    assert all(re.compile(p) for f in kb.flags.values() for p in f.urges)


@pytest.mark.parametrize("text, command", [("然后呢 还要留些什么", Command.evidence), ("接下来呢？", Command.next)])
def test_a_go_on_opener_before_a_question_is_read_by_the_question(und: Understander, text: str, command: Command) -> None:
    """"然后呢 号怎么拿回来" asks the question; the connector alone would page to the next step."""
    u = und.understand(text)
    assert u.command is command or u.intent == f"cmd:{command.value}"


def test_a_go_on_opener_then_a_curated_question_gets_its_answer(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "account_stolen")
    out = chat.say("然后呢 微信号怎么找回来")
    assert "解冻" in out or "找回" in out


def test_a_move_told_inside_a_frozen_account_keeps_the_flow(chat: Chat) -> None:
    """"有人转错钱让我退" inside a frozen account is most often why it was frozen."""
    _in(chat, "account_frozen")
    out = chat.say("之前有个不认识的人转给我1500 说是转错了 要我退到他另一张卡")
    assert chat.s.scenario == "account_frozen"
    assert "退" in out and "96110" in out or "95017" in out


def test_a_bare_report_shows_the_next_thing_to_do(chat: Chat, kb: KnowledgeBase) -> None:
    """"冻好了" asks nothing: the ack and the next undone step, not "reply 下一步"."""
    _in(chat, "account_stolen")
    out = chat.say("冻好了")
    sc = kb.scenarios["account_stolen"]
    nxt = next(st for st in sc.steps if st.marks and st.marks != "frozen")
    assert "已记下" in out and render(kb, nxt.text).split("\n")[0] in out


def test_tired_of_it_is_not_a_thank_you(und: Understander) -> None:
    """"太麻烦了" is not "麻烦你了"."""
    assert not und.understand("我不想报警 太麻烦了").closing
    assert und.understand("麻烦你了").closing


def test_a_detail_nothing_else_matches_is_noted_with_what_to_do_with_it(chat: Chat, kb: KnowledgeBase) -> None:
    """"一共3笔 每笔299" mid-flow is a fact for the police, not "没看懂"."""
    _in(chat, "wallet_loss")
    out = chat.say("一共3笔 每笔299")
    assert render_text(kb, "detail_noted_money") in out and "没看懂" not in out
    assert und_detail(chat, "大概是上礼拜三晚上") and not und_detail(chat, "是上礼拜三晚上吗")


def und_detail(chat: Chat, text: str) -> bool:
    return chat.und.understand(text).detail


def test_self_blame_with_a_near_question_gets_the_answer_too() -> None:
    """"聊天记录要不要删 好丢人": a curated question this near is answered (the calm line goes
    first anyway); without a question the comfort alone stays."""
    s = Session(state="scenario", scenario="fraud_victim")
    asked = Understood(self_blame=True, emotion=True, question=True, intent="qa:delete_chat", intent_score=0.65)
    assert decide(s, asked, False) is Act.question
    told = Understood(self_blame=True, emotion=True, question=False, intent="qa:delete_chat", intent_score=0.65)
    assert decide(s, told, False) is Act.emotion


def test_a_bare_done_word_beside_a_report_is_not_the_question(und: Understander) -> None:
    u = und.understand("弄好了 冻上了 就是有个老同事已经给他转了800")
    assert u.flags and u.asked != "qa:call_first"


@pytest.mark.parametrize("text", ["那我找谁去解", "好 那我找谁问", "那我去找谁"])
def test_asking_whom_to_go_to_is_a_question_not_a_sign_off(und: Understander, text: str) -> None:
    """"那我找谁去解" asks who can lift it; read as "I'll go then" it got "好的，保重"."""
    u = und.understand(text)
    assert u.question and not u.closing


def test_asking_whom_to_go_to_in_a_frozen_account_names_who_froze_it(chat: Chat) -> None:
    _in(chat, "account_frozen")
    out = chat.say("那我找谁去解")
    assert "保重" not in out and ("开户银行" in out or "通知" in out)
    assert chat.und.understand("好的 我去找他").closing


def test_a_go_on_opener_after_a_report_does_not_hide_the_question(chat: Chat, kb: KnowledgeBase) -> None:
    """"冻好了 然后呢 我朋友会不会找我赔钱": the report is acked and the liability question
    answered, not paged past with the next scripted step."""
    _in(chat, "account_stolen")
    out = chat.say("冻结了 然后呢 我朋友会不会找我赔钱")
    assert "已记下" in out and "受害人" in out
    assert chat.und.understand("报警了 然后呢").intent == "cmd:next"


# ----------------------------------------------------------------------------- fix6-b: money-flow rules
def test_a_sum_of_three_wan_or_more_is_named_huge(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "fraud_victim")
    reply = chat.say("被骗走五万块")
    assert "数额巨大" in reply
    chat2 = Chat(kb, chat.und)
    _in(chat2, "fraud_victim")
    assert "数额巨大" not in chat2.say("被骗走五千块")


def test_a_report_with_what_next_gets_what_follows_the_report(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "fraud_victim")
    reply = chat.say("派出所已经报过案了 接下来俺还得干点啥")
    assert "reported" in chat.s.done
    assert "书面材料" in reply and "复议" in reply
    assert kb.flags["reported"].then_qa in kb.qa


def test_a_report_with_a_sum_says_what_the_sum_means(chat: Chat) -> None:
    _in(chat, "fraud_victim")
    reply = chat.say("报过警了 这四万是不是打水漂了")
    assert "reported" in chat.s.done
    assert "数额巨大" in reply and "马上打110" not in reply


@pytest.mark.parametrize("sid,word", [("fraud_victim", "书面材料"), ("scam_check", "挂断")])
def test_a_thanks_in_a_money_flow_closes_with_the_one_thing_to_keep(chat: Chat, sid: str, word: str) -> None:
    _in(chat, sid)
    reply = chat.say("好的 谢谢你")
    assert word in reply


def test_a_sum_said_beside_a_report_does_not_send_to_110_again(chat: Chat) -> None:
    _in(chat, "fraud_victim")
    reply = chat.say("已经报警了 四万块啊 那是我攒了好几年的")
    assert "reported" in chat.s.done
    assert "数额巨大" in reply and "马上打110" not in reply


@pytest.mark.parametrize("text", ["群里说先充50块返80 能做吗", "关注一个账号给两块钱 这种兼职行不行"])
def test_paid_likes_and_top_up_for_a_return_name_the_task_scam(und: Understander, text: str) -> None:
    assert "task_advance" in und.understand(text).moves


@pytest.mark.parametrize("sid", ["account_stolen", "wallet_loss", "out_of_scope"])
def test_a_thanks_in_a_flow_adds_its_closing_reminder(chat: Chat, kb: KnowledgeBase, sid: str) -> None:
    """A warm close in a flow carries that situation's one reminder (receipt, evidence, 12348)."""
    _in(chat, sid)
    tip = kb.scenarios[sid].closing
    assert tip
    out = chat.say("好的 多谢")
    assert "不客气" in out and render(kb, tip) in out


@pytest.mark.parametrize("text", ["行 那我这就去派出所了 谢谢", "好 听你的 交给民警 谢了", "嗯嗯 我明天上午去报案 谢谢你"])
def test_a_sign_off_for_the_police_station_says_what_to_bring(chat: Chat, kb: KnowledgeBase, text: str) -> None:
    _in(chat, "account_stolen")
    u = chat.und.understand(text)
    assert u.closing and u.police_visit
    out = chat.say(text)
    assert render_text(kb, "close_police") in out and "书面材料" in out


@pytest.mark.parametrize("text", ["谢谢你 挺耐心的", "好的 我去跟我妈说一声"])
def test_a_sign_off_that_is_not_a_police_visit(und: Understander, text: str) -> None:
    assert not und.understand(text).police_visit


@pytest.mark.parametrize(("text", "qa_id"), [
    ("我表姐点开了盗号的人用我微信发的链接 会出事吗", "friend_clicked_link"),
    ("同学收到我号发的借钱消息 他没上当", "friend_got_message"),
    ("不想去报警了 干脆把微信号注销了得了", "cancel_wechat"),
])
def test_stolen_account_follow_ups_about_friends_and_cancelling(chat: Chat, kb: KnowledgeBase, text: str, qa_id: str) -> None:
    _in(chat, "account_stolen")
    out = chat.say(text)
    assert render(kb, kb.qa[qa_id].answer).splitlines()[0] in out


def test_a_stolen_account_without_a_loss_is_still_worth_reporting(chat: Chat) -> None:
    """"没丢钱就不报了吧" with a stolen account: report it as the victim, not a money-only answer."""
    _in(chat, "account_stolen")
    out = chat.say("钱倒是没少 那是不是就不用报警了")
    assert "受害人" in out and "110" in out


def test_a_wallet_loss_that_a_family_member_may_have_spent_is_checked_first(chat: Chat) -> None:
    _in(chat, "wallet_loss")
    out = chat.say("我外甥前几天玩过我手机 会不会是他买的东西 这还要报警吗")
    assert "核实" in out and "亲属卡" in out and "110" in out


def test_a_stranger_small_transfer_is_not_sent_back(chat: Chat) -> None:
    _in(chat, "wallet_loss")
    out = chat.say("有个不认识的人给我转了0.01 要我退给他吗")
    assert "别退" in out and "验证" in out


def test_asking_for_a_human_names_the_free_legal_line(chat: Chat) -> None:
    out = chat.say("我不跟机器说 给我找个真人")
    assert "12348" in out and "110" in out


# ----------------------------------------------------------------------------- round 6: leak / frozen / rental

@pytest.mark.parametrize("sid", ["info_leak", "account_frozen", "account_rental"])
def test_a_thanks_in_a_situation_with_a_closing_adds_its_reminder(chat: Chat, kb: KnowledgeBase, sid: str) -> None:
    sc = kb.scenarios[sid]
    assert sc.closing
    _in(chat, sid)
    out = chat.say("好的 谢谢你")
    assert render(kb, sc.closing) in out
    assert "有新情况" in out  # still the warm close around it


def test_a_thanks_outside_any_flow_is_the_plain_close(chat: Chat, kb: KnowledgeBase) -> None:
    out = chat.say("谢谢")
    assert out.startswith("不客气。") and "\n" in out
    assert not any(sc.closing and render(kb, sc.closing) in out for sc in kb.scenarios.values())


def test_the_frozen_first_reply_says_do_not_pay(chat: Chat) -> None:
    out = chat.say("我的微信支付突然被限制了 说涉嫌违规 我什么都没干")
    assert chat.s.scenario == "account_frozen"
    assert re.search("别付|不要付", out) and re.search("别交|不要交", out)


@pytest.mark.parametrize("text,cited", [
    ("卖我信息的那个商家 要不要赔我的损失", "第六十九条"),
    ("我的照片算不算个人信息", "第一千零三十四条"),
])
def test_leak_compensation_and_scope_questions(chat: Chat, text: str, cited: str) -> None:
    _in(chat, "info_leak")
    assert cited in chat.say(text)


def test_the_renting_answer_covers_contracts_and_any_count(chat: Chat) -> None:
    _in(chat, "account_rental")
    out = chat.say("对方说是正规公司 还跟我签了合同 这也违法吗")
    assert "合同" in out and "不管" in out


@pytest.mark.parametrize("text", ["是不是我活该 这么蠢", "我活该被骗吧"])
def test_calling_oneself_deserving_it_is_self_blame(und: Understander, text: str) -> None:
    assert und.understand(text).self_blame


def test_not_knowing_what_the_renter_did_is_no_excuse(chat: Chat) -> None:
    _in(chat, "account_rental")
    out = chat.say("他说就是拿去加好友发广告 不干坏事 这也违法吗")
    assert "明知" in out and "第三十一条" in out


def test_a_closing_follows_the_user_into_a_live_scam(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "info_leak")
    chat.say("刚才有个自称客服的打电话 让我开共享屏幕帮我退钱")
    assert chat.s.scenario == "scam_check"
    assert render(kb, kb.scenarios["scam_check"].closing) in chat.say("挂了 好险 谢谢你")
    # a situation with no reminder of its own keeps the one of the situation the user came from
    quiet = kb.model_copy(update={"scenarios": {**kb.scenarios, "scam_check": kb.scenarios["scam_check"].model_copy(
        update={"closing": ""})}})
    s = chat.s.model_copy(update={"state": "scenario"})
    assert render(kb, kb.scenarios["info_leak"].closing) in Dialog(quiet)._left(s)


def test_the_general_sue_answer_names_the_leaking_business_liability(kb: KnowledgeBase) -> None:
    assert "{law:pipl_69}" in kb.qa["sue"].answer


def test_verified_accounts_in_a_frozen_flow_name_helping_crime(chat: Chat) -> None:
    _in(chat, "account_frozen")
    out = chat.say("我帮人验证过的那两个号会被拿去干嘛")
    assert "第二百八十七条之二" in out and "如实" in out


def test_a_situation_named_after_an_off_topic_question_starts_it(chat: Chat) -> None:
    """After a divorce question there is no flow to keep: "公司让我把微信号借给他们用" starts
    account_rental (with its urgent reply), while a command still works as a command."""
    chat.say("我想问下离婚财产怎么分")
    assert chat.s.scenario == "out_of_scope"
    chat.say("哦对了 公司让我把微信号借给他们做客户群 说工作需要 这个可以吗")
    assert chat.s.scenario == "account_rental"
    chat.say("我想问下离婚财产怎么分")
    out = chat.say("人工 我要人工")
    assert chat.s.scenario == "out_of_scope" and "人工" in out and "先停下" not in out


def test_money_taken_during_a_live_scam_is_fraud_not_wallet_loss(chat: Chat) -> None:
    """"来不及了 他操作转走了5000" in scam_check: the scam took it (report to 110 as fraud)."""
    _in(chat, "scam_check")
    out = chat.say("来不及了 他操作转走了5000")
    assert chat.s.scenario == "fraud_victim" and "110" in out


def test_getting_money_back_after_reporting_does_not_send_the_user_to_110_again(chat: Chat) -> None:
    _in(chat, "fraud_victim")
    chat.say("已经报警了")
    out = chat.say("那钱还能要回来吗")
    assert "已经报了的" in out and not re.search("(?:马上|立即|立刻|赶紧|先)(?:打\\s*110|报警)", out)


def test_a_scammers_card_numbers_kept_as_evidence_are_not_the_card_number_move(und: Understander) -> None:
    """Screenshots of the scammer's (or several) card numbers are evidence, not the user's card given."""
    for text in ["民警问收款账户 我只有一堆不同卡号的截图", "我有对方的卡号 能冻结吗", "骗子的卡我记下了卡号"]:
        assert "card_number" not in und.understand(text).moves
    assert "card_number" in und.understand("客服让我报一下卡号").moves


@pytest.mark.parametrize("text", ["报了 显示已提交", "报了！"])
def test_a_short_bare_reported_is_progress(und: Understander, text: str) -> None:
    assert "reported" in und.understand(text).flags


@pytest.mark.parametrize("text", ["报了有用吗", "报了 警察让我先别动那笔钱 说可能要冻结 我微信会不会被封"])
def test_reported_with_a_question_or_a_story_is_not_the_bare_flag(und: Understander, text: str) -> None:
    assert "reported" not in und.understand(text).flags


def test_a_relative_confirmed_safe_is_told_it_was_an_impersonation(chat: Chat, kb: KnowledgeBase) -> None:
    chat.say("刚才来电话说是我孙女 在外地出事了要钱")
    assert chat.s.scenario == "scam_check"
    out = chat.say("打给她妈妈了 孩子好好在学校 那个电话是假的")
    assert render(kb, kb.qa["relative_scam_confirmed"].answer) in out


def test_hanging_up_on_a_fake_officer_names_what_to_bring_to_the_police(chat: Chat, kb: KnowledgeBase) -> None:
    """After "挂了" the next step for someone who already paid is the report, with its evidence."""
    for move in ("police_impersonation", "pressure", "keep_secret"):
        assert "转账凭证" in kb.moves[move].after and "报警" in kb.moves[move].after


# ----------------------------------------------------------------------------- round 7: stolen / wallet / out of scope

def test_a_one_fen_transfer_written_with_a_digit_is_the_small_test(chat: Chat) -> None:
    _in(chat, "wallet_loss")
    out = chat.say("支付宝也有陌生人打来1分钱 备注写着测试 我该退吗")
    assert "别退" in out and "测试" in out


def test_telling_where_the_money_went_is_not_a_safe_account_request(chat: Chat) -> None:
    """"钱是转到…账户" describes what happened; it is not someone asking for a transfer."""
    _in(chat, "account_stolen")
    out = chat.say("骗子拿我号借的钱是转到别人账户的 这事要我负责吗")
    assert "安全账户" not in out and "受害" in out


@pytest.mark.parametrize(("text", "must"), [
    ("我知道是哪个偷的 想去他家堵他 不还钱就揍他", ("动手", "110")),
    ("民警问收款方是什么人 我们不认识", ("交易单号", "商户")),
    ("前天有人冒充快递让我把短信码念给他 我念了", ("验证码", "支付密码")),
])
def test_wallet_loss_follow_ups(chat: Chat, text: str, must: tuple[str, ...]) -> None:
    _in(chat, "wallet_loss")
    out = chat.say(text)
    assert all(m in out for m in must), out


def test_the_wallet_small_amount_answer_leaves_the_filing_decision_to_the_police(kb: KnowledgeBase) -> None:
    assert "{law:xsf_112}" in kb.qa["small_amount"].by_scenario["wallet_loss"]


def test_being_told_to_click_a_link_gets_the_link_warning(chat: Chat) -> None:
    out = chat.say("收到短信说社保要停 让我点链接登录才能恢复")
    assert "别点" in out


def test_the_secure_account_answer_says_report_and_unfreeze_last(kb: KnowledgeBase) -> None:
    a = kb.qa["secure_account"].answer
    assert "{hotline:110}" in a and "{proc:unfreeze_account}" in a
    assert "投诉" in kb.qa["secure_account"].by_scenario["wallet_loss"]



def test_a_report_that_is_itself_the_question_gets_the_answer(chat: Chat, und: Understander) -> None:
    """"冻结了俺自己还能用不": the clause that reports also asks; the rest of the message
    ("俺还要跟闺女视频呢") is not the question."""
    u = und.understand("冻结了俺自己还能用不 俺还要跟闺女视频呢")
    assert u.flags == ["frozen"] and u.asked == u.intent and (u.intent or "").startswith("qa:")
    _in(chat, "account_stolen")
    out = chat.say("冻结了俺自己还能用不 俺还要跟闺女视频呢")
    assert "已记下" in out and "暂停" in out


@pytest.mark.parametrize("move,text", [
    ("fee_first", "有个人说走特殊通道能帮我解封 要收我三千"),
    ("fee_first", "网上有人说交1500就能三天帮你解冻"),
    ("fee_first", "招聘的说我不去上班就得赔培训费"),
    ("loan_offer", "借款平台说放款前要先交一笔工本费"),
])
def test_paid_unfreezing_training_fees_and_loan_fees_are_fee_first_moves(und: Understander, move: str,
                                                                        text: str) -> None:
    assert move in und.understand(text).moves


@pytest.mark.parametrize("text,qa", [
    ("申诉的时候要找朋友辅助验证 我让我姐帮行不行", "qa:appeal_friend_verify"),
    ("12321一直打不通 还能去哪举报", "qa:what_12321"),
    ("对方不知道叫啥 也没有他微信号 怎么投诉他", "qa:complain_unknown_account|qa:complain_account"),
    ("我们店的顾客资料漏出去了 要不要告诉顾客", "qa:processor_notify"),
    ("有人打电话说加微信能免费领按摩椅 要加吗", "qa:free_gift_add"),
    ("申诉理由要怎么写才好", "qa:appeal_prepare"),
    ("银行说是我自己同意扣的钱 不肯管", "qa:passed_around"),
    ("以前把微信借给同事用过几天 是不是这个原因", "qa:frozen_rental_link"),
])
def test_later_rounds_questions_reach_their_answer(und: Understander, text: str, qa: str) -> None:
    u = und.understand(text)
    assert {u.intent, u.asked} & set(qa.split("|")), (u.intent, u.alternatives[:3])


def test_a_bare_what_happens_is_no_renting_penalty(kb: KnowledgeBase, und: Understander) -> None:
    assert "会怎样" not in kb.qa["rental_penalty"].paraphrases
    assert und.understand("他用我的号给我爸发了个链接 我爸点开了 会咋样").intent != "qa:rental_penalty"


def test_frozen_urgent_names_paid_advertising(kb: KnowledgeBase) -> None:
    assert "换米" in kb.scenarios["account_frozen"].urgent


def test_paying_an_unfreezer_is_fee_first_and_refunding_income_is_rental_money(
        kb: KnowledgeBase, und: Understander) -> None:
    assert "fee_first" in und.understand("有个人说他有关系 给他五百就能帮我解封").moves
    assert und.understand("已经退了赚的几千块 这样能行吗").intent == "qa:rental_money"


def test_hanging_up_and_asking_what_to_bring_gets_both(chat: Chat) -> None:
    """"挂了 我们现在就去派出所 要带什么": what to do now it has stopped, and the list to bring
    (the question is in the rest of the message, beside the report word)."""
    _in(chat, "scam_check")
    chat.say("他让我开屏幕共享")
    out = chat.say("挂了 我们现在就去派出所 要带什么")
    assert "身份证" in out and "聊天记录" in out


def test_a_report_with_an_amount_asked_about_says_what_the_amount_means(chat: Chat) -> None:
    """"我报了 18000能立案不": the sum is over the 3000 元 line; it is said, without 110 again."""
    _in(chat, "fraud_victim")
    out = chat.say("我报了 18000能立案不")
    assert "3000" in out and "已记下" in out
    assert not re.search("(?:马上|立即|立刻|赶紧|先)(?:打\\s*110|报警)", out)


def test_a_question_with_a_new_sum_also_says_what_the_sum_means(chat: Chat) -> None:
    """"被骗的两万能追回来吗" asked mid-flow: the answer, and what 两万 means, once."""
    _in(chat, "fraud_victim")
    out = chat.say("被骗的两万能追回来吗")
    assert "追回" in out and "数额较大" in out
    assert "数额较大" not in chat.say("两万能追回来吗")


def test_small_talk_mid_flow_says_what_the_bot_covers_not_didnt_understand(chat: Chat, kb: KnowledgeBase) -> None:
    _in(chat, "account_stolen")
    out = chat.say("今天天气咋样")
    assert "没看懂" not in out and "没太明白" not in out and "12348" in out and "微信号被盗" in out
    assert chat.s.scenario == "account_stolen"


@pytest.mark.parametrize("text,fires", [("儿子三年没给过俺一分钱养老钱 俺想告他", False), ("一分钱都没给我", False),
                                        ("zfb也收到陌生人转的1分钱", True), ("他给我转了1毛钱", True)])
def test_a_penny_is_a_test_transfer_only_when_it_was_sent(und: Understander, text: str, fires: bool) -> None:
    """"没给过俺一分钱" is a complaint (a son who pays no support), not a stranger's 0.01 probe."""
    assert ("test_transfer" in und.understand(text).moves) is fires


def test_asking_for_a_person_is_never_read_as_a_story(chat: Chat) -> None:
    out = chat.say("转人工 俺要跟真人说话")
    assert "先停下" not in out and "人工" in out


@pytest.mark.parametrize("text,closes", [("嗯 我都记住了", True), ("晓得了 明早我就去银行", True),
                                         ("好 以后陌生链接我再也不点了", True), ("ok 了解", True),
                                         ("以后还能不能用", False), ("记下了 明天去哪办", False)])
def test_a_plain_acknowledgement_or_a_never_again_is_a_close(und: Understander, text: str, closes: bool) -> None:
    """"中 俺都记下了", "唉 以后再也不碰了": the user is done; a goodbye, not 没看懂."""
    assert und.understand(text).closing is closes


def test_a_market_vendor_whose_card_froze_is_a_frozen_account(und: Understander) -> None:
    assert und.understand("我摆地摊用收款码收钱 今天卡突然被冻住了").scenario == "account_frozen"


def test_frozen_answers_say_what_to_bring_and_to_take_a_lent_account_back(kb: KnowledgeBase) -> None:
    assert "身份证" in kb.qa["appeal_how"].answer
    assert "收回" in kb.qa["frozen_rental_link"].answer and "密码" in kb.qa["frozen_rental_link"].answer


def test_a_stolen_account_victim_afraid_the_police_wont_bother_hears_they_must_accept(chat: Chat) -> None:
    _in(chat, "account_stolen")
    assert "应当接受" in chat.say("这么点事 派出所会不会嫌麻烦不管")


def test_giving_up_a_stolen_account_still_gets_told_to_freeze_it(chat: Chat) -> None:
    """Leaving a stolen account alone lets the thief keep cheating in the user's name."""
    _in(chat, "account_stolen")
    out = chat.say("号我不想要了 重新弄个新号算了")
    assert "冻结" in out and "冒用" in out


def test_hanging_up_after_paying_a_safe_account_does_not_say_nothing_was_lost(chat: Chat) -> None:
    """A mother who already sent 20000 to a "安全账户" hangs up: the next step is 110 for the
    money, not "没转钱就没有损失" (that move's after-text once assumed nothing was paid)."""
    chat.say("我妈刚给自称公安的人转了两万 说是安全账户")
    out = chat.say("挂了")
    first = out.split("\n")[0]
    assert "110" in first and not first.startswith("好，没转钱")
