"""Every scenario's flow and every global command, through the real pipeline and Redis."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from bot.pipeline import Pipeline
from bot.store.sessions import conversation_id
from knowledge.render import law_citation, render
from knowledge.schema import SCENARIO_IDS, KnowledgeBase

from .helpers import FakeClock, joined, number, say, text_of


@pytest.mark.parametrize("index,sid", list(enumerate(SCENARIO_IDS, 1)))
async def test_menu_number_gives_the_urgent_reply_with_its_hotline(
    pipeline: Pipeline, kb: KnowledgeBase, index: int, sid: str
) -> None:
    menu = await say(pipeline, "你好")
    assert menu.state == "menu"
    assert kb.scenarios[sid].menu_label in joined(menu)
    out = await say(pipeline, str(index))
    assert out.scenario == sid and out.state == "scenario"
    first = out.replies[0].text
    assert first.startswith(render(kb, kb.scenarios[sid].urgent).splitlines()[0])
    for hid in kb.scenarios[sid].urgent_hotlines:
        assert number(kb, hid) in first


@pytest.mark.parametrize("sid", SCENARIO_IDS)
async def test_next_walks_every_step_then_says_what_is_left(pipeline: Pipeline, kb: KnowledgeBase, sid: str) -> None:
    await say(pipeline, "菜单")
    await say(pipeline, str(SCENARIO_IDS.index(sid) + 1))
    sc = kb.scenarios[sid]
    for st in sc.steps:
        out = await say(pipeline, "下一步")
        assert render(kb, st.text) in joined(out)
    end = await say(pipeline, "下一步")
    assert sc.title in joined(end)
    assert all(len(r.text) <= 400 for r in end.replies)


@pytest.mark.parametrize("sid", [s for s in SCENARIO_IDS if s != "out_of_scope"])
async def test_law_command_quotes_the_registry_text_exactly(pipeline: Pipeline, kb: KnowledgeBase, sid: str) -> None:
    await say(pipeline, str(SCENARIO_IDS.index(sid) + 1))
    plain = await say(pipeline, "法律依据")
    assert len(plain.replies) == 1 and len(plain.replies[0].text) <= 400  # one phone screen
    out = joined(plain)
    for lid in kb.scenarios[sid].laws:
        assert law_citation(kb, lid) in out  # every exact citation…
        assert kb.laws[lid].text not in out  # …but not the statute text
    assert text_of(kb, "legal_note") in out
    verbatim = joined(await say(pipeline, "条文原文发我看看"))  # the text itself on request
    for lid in kb.scenarios[sid].laws:
        assert kb.laws[lid].text in verbatim
        assert law_citation(kb, lid) in verbatim


async def test_hotlines_evidence_human_and_back(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    await say(pipeline, "3")  # fraud_victim
    sc = kb.scenarios["fraud_victim"]
    hot = joined(await say(pipeline, "热线"))
    for hid in sc.hotlines:
        if kb.hotlines[hid].status.value != "unverified":
            assert number(kb, hid) in hot
    ev = joined(await say(pipeline, "证据"))
    for item in sc.evidence:
        assert render(kb, item) in ev
    human = joined(await say(pipeline, "人工"))
    assert number(kb, "110") in human
    step1 = await say(pipeline, "下一步")
    assert render(kb, sc.steps[0].text) in joined(step1)
    back = await say(pipeline, "上一步")
    assert render(kb, sc.urgent) in joined(back)


async def test_free_text_goes_straight_to_its_scenario(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    out = await say(pipeline, "我微信号被人盗了，他在用我的号找我朋友借钱")
    assert out.scenario == "account_stolen"
    assert "冻结" in out.replies[0].text


async def test_unknown_input_inside_a_scenario_gets_a_reprompt(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    entered = await say(pipeline, "2")
    out = await say(pipeline, "asdfgh qwerty")
    assert out.state == "scenario" and out.scenario == entered.scenario == SCENARIO_IDS[1]
    # the place is kept, and the short question names it (issue 10: not the command list)
    assert joined(out) == text_of(kb, "unclear_midflow", title=kb.scenarios[SCENARIO_IDS[1]].title)


async def test_empty_and_emoji_only_get_a_helpful_answer(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    for text in ("", "   ", "😭😭😭", "\x00\x01"):
        out = await say(pipeline, text)
        assert joined(out) == text_of(kb, "empty")


async def test_progress_is_remembered_and_done_steps_are_skipped(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    sc = kb.scenarios["account_stolen"]
    marked = [st for st in sc.steps if st.marks]
    assert marked, "account_stolen should track at least one step"
    await say(pipeline, "1")
    flag = marked[0].marks
    assert flag is not None
    phrase = {"frozen": "我已经冻结了", "reported": "我已经报警了", "friends_warned": "已经通知亲友了"}.get(flag, "已经冻结了")
    ack = joined(await say(pipeline, phrase))
    assert kb.flags[flag].label in ack
    seen = joined(await say(pipeline, "下一步"))
    for _ in sc.steps:
        seen += joined(await say(pipeline, "下一步"))
    assert render(kb, marked[0].text) not in seen


async def test_returning_user_is_asked_to_continue(make_pipeline, kb: KnowledgeBase) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    pipeline = make_pipeline(resume_after_s=10, clock=clock)
    await say(pipeline, "4")
    clock.advance(9)
    assert (await say(pipeline, "嗯那个")).state != "resume"  # not idle long enough
    clock.advance(3600)
    out = await say(pipeline, "嗯那个")
    assert out.state == "resume"
    assert kb.scenarios["info_leak"].title in joined(out)
    cont = await say(pipeline, "继续")
    assert render(kb, kb.scenarios["info_leak"].urgent) in joined(cont)


@pytest.mark.parametrize("text,key,amount", [("被骗了两千块钱，刷单的", "amount_small", 2000),
                                             ("刷单被骗了8000块怎么办", "amount_big", 8000),
                                             ("刷单被骗了5万块怎么办", "amount_huge", 50000)])
async def test_amount_is_explained(pipeline: Pipeline, kb: KnowledgeBase, text: str, key: str, amount: int) -> None:
    out = await say(pipeline, text)
    assert out.scenario == "fraud_victim"
    assert any("3000" in r.text for r in out.replies)
    assert text_of(kb, key, amount=amount) in joined(out)


async def test_secret_is_warned_first_and_never_stored(pipeline: Pipeline, kb: KnowledgeBase, redis: Redis) -> None:
    out = await say(pipeline, "客服让我把验证码 839201 发给他，我发了", msg_id="secret-1")
    assert out.replies[0].text == text_of(kb, "secret_warning", what="验证码")
    for key in await redis.keys("*"):
        if await redis.type(key) == b"string":
            assert b"839201" not in (await redis.get(key) or b"")


async def test_group_and_private_sessions_are_apart(pipeline: Pipeline) -> None:
    await say(pipeline, "5", user="same")
    group = await say(pipeline, "@反诈助手 菜单", user="same", room_id="r1", mentioned=True)
    assert group.state == "group"
    private = await say(pipeline, "下一步", user="same")
    assert private.scenario == "account_rental"


@pytest.mark.parametrize("answer,amount", [("2000", 2000), ("两千块", 2000), ("大概3万", 30000), ("800", 800)])
async def test_the_amount_asked_for_is_understood(pipeline: Pipeline, kb: KnowledgeBase, answer: str, amount: int) -> None:
    await say(pipeline, "3")  # fraud_victim asks how much was lost
    out = await say(pipeline, answer)
    key = "amount_huge" if amount >= 30000 else "amount_big" if amount >= 3000 else "amount_small"
    assert joined(out) == text_of(kb, key, amount=amount) + "\n" + text_of(kb, "legal_note")


async def test_progress_in_the_first_message_is_kept(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    out = await say(pipeline, "我被骗了两千，已经报警了，也把对方拉黑了")
    assert out.scenario == "fraud_victim"
    assert kb.flags["reported"].label in joined(out)
    walked = ""
    for _ in kb.scenarios["fraud_victim"].steps:
        walked += joined(await say(pipeline, "下一步"))
    left = [st.title for st in kb.scenarios["fraud_victim"].steps if st.marks == "reported"]
    assert all(f"还需要做：{t}" not in walked for t in left)


async def test_yes_to_the_resume_question_continues(make_pipeline, kb: KnowledgeBase) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    pipeline = make_pipeline(resume_after_s=10, clock=clock)
    await say(pipeline, "6")
    clock.advance(3600)
    assert (await say(pipeline, "嗯那个")).state == "resume"
    out = await say(pipeline, "是的")
    assert render(kb, kb.scenarios["account_frozen"].urgent) in joined(out)


async def test_clarify_only_accepts_its_own_options(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    from dialogs.session import Session

    conv = conversation_id("http", "u1", None)
    s = Session(state="clarify", offered=["wallet_loss", "fraud_victim"])
    await pipeline.store.redis.set(pipeline.store.keys(conv, None)[1], s.model_dump_json())
    out = await say(pipeline, "3")
    assert out.state == "clarify" and joined(out) == text_of(kb, "menu_reprompt")


async def test_gibberish_gets_the_menu_not_a_random_question(pipeline: Pipeline) -> None:
    assert (await say(pipeline, "asdfgh qwerty zxcv")).state == "menu"


async def test_a_bare_number_mid_flow_goes_on_instead_of_not_understood(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    await say(pipeline, str(SCENARIO_IDS.index("fraud_victim") + 1))
    out = await say(pipeline, "1")  # nothing numbered was offered: "1" is not 没看懂
    assert out.scenario == "fraud_victim" and out.state == "scenario"
    assert render(kb, kb.scenarios["fraud_victim"].steps[0].text) in joined(out)


async def test_a_short_feeling_mid_flow_is_calmed_and_keeps_the_place(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    await say(pipeline, str(SCENARIO_IDS.index("account_stolen") + 1))
    out = await say(pipeline, "我心里好慌啊")
    assert out.scenario == "account_stolen" and out.state == "scenario"
    assert joined(out).startswith(text_of(kb, "calm"))
    assert text_of(kb, "unclear_midflow", title=kb.scenarios["account_stolen"].title) not in joined(out)


async def test_saying_the_move_was_already_done_repeats_its_countermeasure(pipeline: Pipeline, kb: KnowledgeBase) -> None:
    await say(pipeline, "有个客服打电话让我下个会议软件开屏幕共享")
    out = await say(pipeline, "已经开了")
    assert joined(out) == render(kb, kb.moves["screen_share"].answer)
