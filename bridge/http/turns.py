"""Sharing the event loop's turns between big requests.

One loop turn runs every callback that became ready before it, then the loop polls its sockets. Under load the
requests of all connections become ready together, so one turn parsed and validated every one of them (32 bodies
of 1,000 results: ~150 ms) before the loop read any socket again: the rest of a body that had not arrived whole
waited that long, and its request missed the delivery of its round and waited for the next (issue 22's p99).
``take_turn`` lets a request's heavy work (parsing and validating its body) begin at once only while the current
turn has spent less than ``TURN_BUDGET`` seconds on such work and nobody waits; otherwise the request waits its
turn, first come first served, one a loop turn, with a poll of the sockets in between. Nothing is reordered within
a request, and validation still comes before anything is written."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque

TURN_BUDGET = 0.005  # seconds of heavy request work one loop turn runs before it polls the sockets again


class _Turns:
    """One event loop's account: what its current turn has spent, and who waits."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.spent = 0.0
        self.reset_pending = False
        self.waiting: deque[asyncio.Future[None]] = deque()

    def schedule_reset(self) -> None:
        if not self.reset_pending:
            self.reset_pending = True
            self.loop.call_soon(self.new_turn)  # runs in the next turn, after the loop has polled

    def new_turn(self) -> None:
        """Nothing spent yet in this turn; the first waiter goes (it runs in the next turn, after a poll)."""
        self.spent, self.reset_pending = 0.0, False
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():  # a cancelled wait (the client went away) is skipped
                waiter.set_result(None)
                self.spent = TURN_BUDGET  # arrivals until it has run queue behind it
                self.schedule_reset()
                return


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = weakref.WeakKeyDictionary()


def _turns() -> _Turns:
    loop = asyncio.get_running_loop()
    turns = _LOOPS.get(loop)
    if turns is None:
        turns = _LOOPS[loop] = _Turns(loop)
    return turns


async def take_turn() -> None:
    """Return when this request's heavy work may run: now, or once those before it have had their turn."""
    turns = _turns()
    if turns.spent < TURN_BUDGET and not turns.waiting:
        return
    waiter: asyncio.Future[None] = turns.loop.create_future()
    turns.waiting.append(waiter)
    turns.schedule_reset()
    await waiter


def spent(started: float) -> None:
    """Count the heavy work done since ``started`` (``time.perf_counter()``) against the current turn."""
    turns = _turns()
    turns.spent += time.perf_counter() - started
    turns.schedule_reset()
