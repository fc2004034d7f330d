"""The one task that owns delivery: the transport into the engine (its FIFO or Naemon's query handler) and the
spool. Request handlers call ``Delivery.submit(lines)`` and get an answer only when every line is in the engine
or on disk in the spool: that is what a 2xx promises. Nothing else writes to the engine.

Order: while anything is spooled, new lines are appended behind it, and the spool drains into the engine first.
A pipe that is full while the engine still reads is waited out (``busy_wait``, engine.busy_wait) before anything
is spooled — and never longer: an engine that has stopped (SIGSTOP, a hang) keeps its pipe open but full, and a line
that cannot go in whole within ``busy_wait`` goes to the spool with everything behind it, its request answered. A
full pipe is then watched (the kernel says when it has room), not polled, and ``health()`` says how long it has
accepted nothing while lines wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bridge.core.errors import EngineUnavailable, SpoolFull
from bridge.core.values import FsyncPolicy
from bridge.engine.spool import Spool, SpoolBatch
from bridge.engine.transport import Transport, Written

log = logging.getLogger("naemon_bridge.delivery")

# Engine not reading at all, while results wait in the spool: the batch being drained is kept in memory, so a try
# is only the transport's reconnect — one failing open() of the FIFO or connect() of the query handler's socket
# (microseconds), a look at the NATS connection's state (an edge) — and the ceiling is kept low: a restarted
# engine gets the spool within a tenth of a second. (With 2 s the drain bench row spent about as long waiting for
# the next try as writing: 46 % of the raw writer.) With nothing spooled, the idle probe (PROBE_INTERVAL) notices.
_BACKOFF_DOWN = (0.02, 0.1)
_FULL_PIPE_RECHECK = 1.0  # seconds between tries of a full pipe should its becoming writable go unnoticed
PROBE_INTERVAL = 2.0  # how often an idle bridge checks that the engine still reads its pipe
CURSOR_INTERVAL = 0.25  # at most this long between spool cursor writes while a batch drains into a full pipe


@dataclass(frozen=True, slots=True)
class DeliveryHealth:
    engine_reachable: bool
    spool_results: int
    spool_bytes: int
    spool_max_bytes: int
    oldest_age_s: float | None
    engine_problem: str | None = None  # why the engine does not read its pipe, while it does not
    stalled_s: float | None = None  # seconds the pipe has accepted nothing while lines wait; None: nothing waits

    @property
    def spool_fill(self) -> float:
        return self.spool_bytes / self.spool_max_bytes


_Waiting = tuple[Sequence[bytes], "asyncio.Future[dict[int, str]]"]


class Delivery:
    """Owns the pipe and the spool; see the module doc. Start with ``start()``, end with ``stop()``."""

    def __init__(self, transport: Transport, spool: Spool, *, max_spool_bytes: int, fsync_interval: float = 1.0,
                 busy_wait: float = 1.0, probe_interval: float = PROBE_INTERVAL, clock: Callable[[], float] = time.time,
                 on_delivered: Callable[[int], object] = lambda count: None) -> None:
        self.transport = transport
        self.spool = spool
        self.max_spool_bytes = max_spool_bytes
        self.busy_wait = busy_wait
        self.engine_reachable = False
        self.reachability_since = clock()  # when engine_reachable last changed (the status page's "since")
        self.last_delivered: tuple[float, bytes] | None = None  # the last line the engine took, and when
        self._fsync_interval = fsync_interval
        self._probe_interval = probe_interval
        self._clock = clock
        self._on_delivered = on_delivered  # told how many lines reached the pipe (metrics)
        self._waiting: deque[_Waiting] = deque()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._backoff = 0.0
        self._retry_at = 0.0  # when to try the pipe again while lines wait in the spool
        self._next_probe = 0.0
        self._next_sync: float | None = None
        self._down_since: float | None = None
        self._down_reason: str | None = None
        self._spooled_while_down = 0
        self._pipe_full = False  # the last write found the pipe full: the idle wait watches it for room
        self._blocked_since: float | None = None  # since when lines wait and the pipe has accepted nothing
        # What of the last batch read from the spool is not delivered yet: a full pipe takes a few pages of a
        # batch at a time, and reading the batch anew at each would check and decode it again every time.
        self._draining: SpoolBatch | None = None
        self._uncommitted: tuple[SpoolBatch, int] | None = None  # a batch and how many of its lines are delivered
        self._committed_at = 0.0

    async def start(self) -> None:
        await asyncio.to_thread(self.spool.open)
        self._committed_at = time.monotonic()
        self._probe()
        self._task = asyncio.create_task(self._run(), name="naemon-bridge delivery")

    async def stop(self, timeout: float | None = None) -> None:
        """Deliver or spool everything already submitted, then end the task (cancelled after ``timeout`` s)."""
        if self._task is None:
            return
        self._stopping = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.error("delivery did not finish within %s s of the stop; %d requests left unanswered",
                      timeout, len(self._waiting))
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._task = None
        await self._commit()  # a batch partly delivered when the task stopped (or was cancelled)
        self.transport.close()
        await asyncio.to_thread(self.spool.close)

    async def submit(self, lines: Sequence[bytes]) -> dict[int, str]:
        """Return once every line is in the engine or in the spool; raise EngineUnavailable else.

        Returns the engine's reasons for the lines (by index) it refused on the spot: only Naemon's query handler
        tells, and only while nothing waits in the spool.
        """
        if self._task is None or self._task.done() or self._stopping:
            raise EngineUnavailable("the bridge is shutting down")
        future: asyncio.Future[dict[int, str]] = asyncio.get_running_loop().create_future()
        self._waiting.append((lines, future))
        self._wakeup.set()
        # Once queued, the lines go whatever becomes of this request: a cancelled wait (a client hanging up, a
        # shutdown) cancels only the future, which the task then skips (it checks done() before answering).
        return await future

    def configure(self, *, max_spool_bytes: int, fsync: FsyncPolicy, fsync_interval: float,
                  busy_wait: float) -> None:
        """New spool limits, fsync policy and busy wait (a reload); applies to the next delivery."""
        self.max_spool_bytes = max_spool_bytes
        self.busy_wait = busy_wait
        self.spool.fsync = fsync
        self._fsync_interval = fsync_interval

    def health(self) -> DeliveryHealth:
        # The spool's commit runs in a thread and resets its oldest time last: no results, no age.
        oldest = self.spool.oldest_appended_at if self.spool.pending_results else None
        waiting = bool(self.spool.pending_results or self._waiting or self.transport.unfinished)
        stalled = round(time.monotonic() - self._blocked_since, 3) \
            if waiting and self._blocked_since is not None else None
        return DeliveryHealth(
            engine_reachable=self.engine_reachable, spool_results=self.spool.pending_results,
            spool_bytes=self.spool.pending_bytes, spool_max_bytes=self.max_spool_bytes,
            oldest_age_s=round(max(0.0, self._clock() - oldest), 3) if oldest is not None else None,
            engine_problem=None if self.engine_reachable else self._down_reason, stalled_s=stalled)

    # -- the task ------------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            if not self._waiting and not self._stopping:
                await self._idle(self._timeout())
            self._wakeup.clear()
            items = list(self._waiting)
            self._waiting.clear()
            if self.spool.pending_results:
                if time.monotonic() >= self._retry_at or self._stopping:
                    await self._drain_spool()
            elif time.monotonic() >= self._next_probe:
                self._probe()
            if items:
                await self._deliver(items)
            if self._next_sync is not None and (time.monotonic() >= self._next_sync or self._stopping):
                await asyncio.to_thread(self.spool.sync)
                self._next_sync = None
            if self._stopping and not self._waiting:
                if self.spool.pending_results:
                    log.info("stopping with %d results in the spool; they are delivered at the next start",
                             self.spool.pending_results)
                return

    def _timeout(self) -> float:
        now = time.monotonic()
        deadlines = [self._next_probe]
        if self.spool.pending_results:
            # A full pipe is watched by _idle; the timer is only a fallback should the kernel's word be missed.
            deadlines.append(now + _FULL_PIPE_RECHECK if self._pipe_full else self._retry_at)
        if self._next_sync is not None:
            deadlines.append(self._next_sync)
        return max(0.0, min(deadlines) - now)

    async def _idle(self, timeout: float) -> None:
        """Wait for a request, the next deadline, or — while spooled lines wait on a full pipe — room in it."""
        if not (self._pipe_full and self.spool.pending_results):
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout)
            except TimeoutError:
                pass
            return
        waits: list[asyncio.Task[object]] = [asyncio.ensure_future(self._wakeup.wait()),
                                             asyncio.ensure_future(self.transport.wait_ready(timeout))]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            # Let them finish here: a watcher still registered on the pipe would be removed by its own late
            # cleanup after the next one was registered.
            await asyncio.gather(*waits, return_exceptions=True)

    def _probe(self) -> None:
        self._next_probe = time.monotonic() + self._probe_interval
        reason = self.transport.probe()
        if reason is None:
            self._mark_up()
        else:
            self._mark_down(reason)

    async def _deliver(self, items: list[_Waiting]) -> None:
        spooled: list[Sequence[bytes]] = []
        full: list[_Waiting] = []
        refusals: dict[int, dict[int, str]] = {}  # item -> its line index -> the engine's reason
        whole: list[tuple[int, _Waiting]] = list(enumerate(items))
        if not self.spool.pending_results:  # else: nothing overtakes what is spooled
            flat = [line for lines, _ in items for line in lines]
            written = await self._write_patiently(flat)
            if written.partial:
                left = len(flat) - written.prefix
                log.warning("the engine's command pipe stayed full for %s s with a line of %d bytes partly in it "
                            "(the engine does not read): it and the %d lines behind it go to the spool; the rest "
                            "of it goes in first when the engine reads", self.busy_wait,
                            len(flat[written.prefix]), left - 1)
            whole, start = [], 0
            for number, item in enumerate(items):
                lines = item[0]
                taken = written.taken[start:start + len(lines)]
                refusals[number] = {i - start: written.refusals[i] for i in range(start, start + len(lines))
                                    if i in written.refusals}
                if not any(taken):
                    whole.append((number, item))
                elif not all(taken):  # the rest of a request begun in the engine always goes on
                    spooled.append([line for line, done in zip(lines, taken, strict=True) if not done])
                start += len(lines)
        room = self.max_spool_bytes - self.spool.pending_bytes - Spool.size_of(spooled)
        for _, item in whole:
            size = Spool.size_of([item[0]])
            if size <= room:
                spooled.append(item[0])
                room -= size
            else:
                full.append(item)
        if spooled:
            try:
                await asyncio.to_thread(self.spool.append, spooled)
            except OSError as exc:
                log.error("cannot write the spool in %s: %s", self.spool.directory, exc)
                failure = EngineUnavailable(f"the engine is not reading and the spool cannot be written: "
                                            f"{exc.strerror or exc}")
                for _, future in items:
                    if not future.done():
                        future.set_exception(failure)
                return
            if self.spool.fsync is FsyncPolicy.INTERVAL and self._next_sync is None:
                self._next_sync = time.monotonic() + self._fsync_interval
            if self._down_since is not None:
                self._spooled_while_down += sum(len(lines) for lines in spooled)
        if full:
            log.warning("spool full (%d of %d bytes): refused %d requests", self.spool.pending_bytes,
                        self.max_spool_bytes, len(full))
        for number, (_, future) in enumerate(items):
            if future.done():
                continue
            if any(future is f for _, f in full):
                future.set_exception(SpoolFull(
                    f"the engine is not reading and the spool is full ({self.spool.pending_bytes} of "
                    f"{self.max_spool_bytes} bytes): nothing of this request was accepted; retry later"))
            else:
                future.set_result(refusals.get(number, {}))

    async def _drain_spool(self) -> None:
        while self.spool.pending_results:
            batch = self._draining
            if batch is None:
                batch = await asyncio.to_thread(self.spool.read_batch)
            self._draining = None
            lines = batch.lines
            written = await self._write(lines)
            for index, reason in written.refusals.items():  # nobody waits for these answers any more
                log.error("the engine refused a spooled line: %s: %s", reason,
                          lines[index][:200].decode(errors="replace"))
            # Only the unbroken run from the start is marked delivered; with several query-handler connections a
            # line after a gap may go again later (at least once).
            rest = batch.after(written.prefix)
            self._draining = rest if rest.entries else None
            base, delivered = self._uncommitted or (batch, 0)
            self._uncommitted = (base, delivered + written.prefix)
            # The cursor (a file, fsynced with spool.fsync = always) is written when the batch is done, the engine
            # is gone, the task stops, or CURSOR_INTERVAL has passed — not at each of the hundreds of times a full
            # pipe takes a few pages: a crash meanwhile delivers those lines again (at least once), never fewer.
            if self._draining is None or (written.stopped is not None and written.stopped.down) or \
                    self._stopping or time.monotonic() - self._committed_at >= CURSOR_INTERVAL:
                await self._commit()
            # The engine is gone (backoff set) or its pipe is full (the idle wait watches it: waiting here would
            # hold the requests that arrive meanwhile, which must reach the spool within busy_wait), or requests
            # wait: answer them first.
            if written.stopped is not None or self._waiting or self._stopping:
                return

    async def _commit(self) -> None:
        """Mark what of the kept batch reached the engine as delivered in the spool (its cursor on disk)."""
        uncommitted, self._uncommitted = self._uncommitted, None
        if uncommitted is not None and uncommitted[1]:
            await asyncio.to_thread(self.spool.commit, *uncommitted)
        self._committed_at = time.monotonic()

    async def _write_patiently(self, lines: Sequence[bytes]) -> Written:
        """Write, and while the engine is only busy (its pipe full, but it reads), wait for room for up to
        ``busy_wait`` s before the rest goes to the spool. Nagios empties its pipe in bursts: spooling at every full
        pipe would send most lines through the disk (and an fsync) while the engine is keeping up."""
        written = await self._write(lines)
        deadline = time.monotonic() + self.busy_wait
        while written.stopped is not None and not written.stopped.down and not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await self.transport.wait_ready(left)
            pending = [index for index, taken in enumerate(written.taken) if not taken]
            more = await self._write([lines[index] for index in pending])
            for position, index in enumerate(pending):
                written.taken[index] = more.taken[position]
                if position in more.refusals:
                    written.refusals[index] = more.refusals[position]
            written.stopped, written.partial = more.stopped, more.partial
            written.accepted = written.accepted or more.accepted
        return written

    async def _write(self, lines: Sequence[bytes]) -> Written:
        """Hand lines to the transport; note the engine's state and what reached it."""
        written = await self.transport.write(lines)
        taken = sum(written.taken)
        if taken:
            self._on_delivered(taken)
            last = next(index for index in range(len(lines) - 1, -1, -1) if written.taken[index])
            self.last_delivered = (self._clock(), lines[last])
        stopped = written.stopped
        now = time.monotonic()
        if stopped is None:
            self._blocked_since = None
        elif taken or written.accepted or self._blocked_since is None:
            self._blocked_since = now  # lines are left; the engine's silence is counted from its last byte
        self._pipe_full = stopped is not None and not stopped.down
        if stopped is None:
            self._mark_up()
            self._backoff = 0.0
        elif stopped.down:
            self._mark_down(stopped.reason)
            self._set_backoff(_BACKOFF_DOWN)
        else:
            self._retry_at = 0.0  # busy, not gone: the idle wait watches for room in the pipe rather than a timer
        return written

    def _set_backoff(self, bounds: tuple[float, float]) -> None:
        """The pipe took nothing more: wait before the next try, longer each time, within ``bounds``."""
        low, high = bounds
        self._backoff = min(high, max(low, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff

    def _mark_down(self, reason: str) -> None:
        if self.engine_reachable:
            self.reachability_since = self._clock()
        self.engine_reachable = False
        self._down_reason = reason
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._spooled_while_down = 0
            log.warning("%s (%s): results go to the spool in %s", self.transport.stopped_text, reason,
                        self.spool.directory)

    def _mark_up(self) -> None:
        if not self.engine_reachable:
            self.reachability_since = self._clock()
        self.engine_reachable = True
        if self._down_since is not None:
            log.info("%s after %.1f s; %d results were spooled meanwhile", self.transport.resumed_text,
                     time.monotonic() - self._down_since, self._spooled_while_down)
            self._down_since = None
