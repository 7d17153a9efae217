"""RoomStore.carry_out on a real server: a group decision's writes and gates in one script."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.store.rooms import AlertCooldown, BudgetLeft, FirstTime, Increment, RoomStore, SetFlag, Step

ROOM = "10001@chatroom"


async def test_writes_happen_whatever_the_budget_and_if_sent_only_when_said(redis: Redis) -> None:
    rooms = RoomStore(redis)
    say = Step(gates=(), if_sent=(Increment("n_alerts"),))
    assert await rooms.carry_out("t", ROOM, [Increment("n_mentions")], [say], budget=1) == [True]
    assert await rooms.carry_out("t", ROOM, [Increment("n_mentions")], [say], budget=1) is None  # budget spent
    st = await rooms.get("t", ROOM)
    assert (st.n_mentions, st.n_alerts) == (2, 1)
    assert 0 < await redis.ttl(f"{rooms._base('t', ROOM)}:room") <= 180 * 24 * 3600


async def test_gates_run_in_order_and_a_failed_one_claims_nothing_after_it(redis: Redis) -> None:
    rooms = RoomStore(redis)
    alert = Step(gates=(BudgetLeft(10), AlertCooldown("account_trading", 1800, 120)))
    quiet = Step(gates=(), speaks=False)
    assert await rooms.carry_out("t", ROOM, [], [quiet, alert], budget=1) == [True, True]
    # the same pattern again: the cooldown says no; an ungated part in the same decision still goes out
    assert await rooms.carry_out("t", ROOM, [], [Step(gates=()), alert], budget=5) == [True, False]
    other = Step(gates=(BudgetLeft(1), AlertCooldown("other_pattern", 1800, 0)))
    assert await rooms.carry_out("t", "r2", [], [other], budget=1) == [True]
    # budget checked first: a warning held back by it leaves the cooldown unclaimed
    blocked = Step(gates=(BudgetLeft(1), AlertCooldown("third_pattern", 1800, 0)))
    assert await rooms.carry_out("t", "r2", [], [blocked], budget=None) == [False]
    await redis.delete(f"{rooms._base('t', 'r2')}:rate")  # a minute later
    assert await rooms.carry_out("t", "r2", [], [blocked], budget=None) == [True]
    assert await redis.get(f"{rooms._base('t', 'r2')}:rate") is None  # budget=None spends nothing


async def test_first_time_passes_once_and_settings_are_written(redis: Redis) -> None:
    rooms = RoomStore(redis)
    intro = Step(gates=(FirstTime("intro"),))
    assert await rooms.carry_out("t", ROOM, [], [intro], budget=None) == [True]
    assert await rooms.carry_out("t", ROOM, [], [intro], budget=None) == [False]
    assert await rooms.carry_out("t", ROOM, [SetFlag("keywords", True)], [], budget=None) == []
    assert (await rooms.get("t", ROOM)).keywords is True
