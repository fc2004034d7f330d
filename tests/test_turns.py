"""bridge.http.turns: once a loop turn has spent its budget on heavy request work, the requests after it wait
their turn first come first served, one a loop turn, and a request that goes away does not hold up the others."""

from __future__ import annotations

import asyncio
import time

from bridge.http import turns


async def _requests(names: list[str], cancel: str | None = None) -> list[tuple[str, int]]:
    turn = 0
    ran: list[tuple[str, int]] = []

    def count_turns() -> None:
        nonlocal turn
        turn += 1
        asyncio.get_running_loop().call_soon(count_turns)

    async def request(name: str) -> None:
        await turns.take_turn()
        ran.append((name, turn))
        turns.spent(time.perf_counter() - turns.TURN_BUDGET)  # as if it had worked a whole budget

    asyncio.get_running_loop().call_soon(count_turns)
    tasks = {name: asyncio.create_task(request(name)) for name in names}
    await asyncio.sleep(0)
    if cancel is not None:
        tasks[cancel].cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    return ran


def test_heavy_requests_run_one_a_turn_in_the_order_they_came() -> None:
    ran = asyncio.run(_requests(["a", "b", "c", "d"]))
    assert [name for name, _ in ran] == ["a", "b", "c", "d"]
    assert len({turn for _, turn in ran}) == 4, ran  # each in a turn of its own: the loop polled in between


def test_a_request_that_goes_away_while_it_waits_holds_up_nobody() -> None:
    ran = asyncio.run(_requests(["a", "b", "c"], cancel="b"))
    assert [name for name, _ in ran] == ["a", "c"]


def test_each_loop_keeps_its_own_account() -> None:
    # A loop closed while its turn was spent must not leave the next loop's requests waiting.
    asyncio.run(_requests(["a", "b"]))
    assert [name for name, _ in asyncio.run(_requests(["x", "y"]))] == ["x", "y"]
