"""The one task that owns delivery: the engine's command pipe (FIFO) and the spool.

Request handlers call ``Delivery.submit(lines)`` and get an answer only when every line is in the engine's pipe or
on disk in the spool: that is what a 2xx promises. Nothing else writes to the pipe.

Pipe facts (engine.md, pipe(7)): the FIFO is opened ``O_WRONLY|O_NONBLOCK`` so nothing ever blocks the loop;
ENXIO = engine not running, ENOENT = no FIFO, EAGAIN = pipe full, EPIPE = reader gone. Writes of at most
PIPE_BUF bytes are atomic, so lines are packed into writes of whole lines up to PIPE_BUF and never interleave with
other writers; a longer line is written alone, finishing any partial write before anything else.

Order: while anything is spooled, new lines are appended behind it, and the spool drains into the pipe first.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import EngineUnavailable, SpoolFull
from bridge.spool import FsyncPolicy, Spool

log = logging.getLogger("naemon_bridge.delivery")

PIPE_BUF = 4096
_BACKOFF_BUSY = (0.005, 0.25)  # pipe full: the engine is reading, just behind
_BACKOFF_DOWN = (0.1, 2.0)  # engine not reading at all: bounded, so its return is seen within 2 s
PROBE_INTERVAL = 2.0  # how often an idle bridge checks that the engine still reads its pipe


class PipeUnavailable(Exception):
    """The engine does not read its pipe now (``reason`` says why); lines must wait in the spool."""

    def __init__(self, reason: str, *, down: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.down = down


class CommandPipe:
    """The engine's command FIFO, opened without blocking and reopened when the engine comes back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._inode: int | None = None
        self._checked_at = 0.0

    def _open(self) -> int:
        now = time.monotonic()
        if self._fd is not None and now - self._checked_at > 1.0:
            # The FIFO may have been removed or recreated (new inode) while we held the old one.
            self._checked_at = now
            try:
                if os.stat(self.path).st_ino != self._inode:
                    self.close()
            except OSError:
                self.close()
        if self._fd is None:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                raise PipeUnavailable(_describe(exc, self.path), down=True) from None
            info = os.fstat(fd)
            if not stat.S_ISFIFO(info.st_mode):
                os.close(fd)
                raise PipeUnavailable(f"{self.path} is not a FIFO (is engine.command_file right?)", down=True)
            self._fd, self._inode, self._checked_at = fd, info.st_ino, now
        return self._fd

    def retarget(self, path: Path) -> None:
        """Write to another FIFO from the next write on (a reload changed engine.command_file)."""
        if Path(path) != self.path:
            self.close()
            self.path = Path(path)

    def probe(self) -> str | None:
        """Whether the engine reads its pipe now: None if it does, else why not.

        Reopening is the only way to ask without writing: a FIFO open for writing with no reader fails (ENXIO),
        while a descriptor held since before the engine stopped would not notice until the next write.
        """
        self.close()
        try:
            self._open()
        except PipeUnavailable as exc:
            return exc.reason
        return None

    def write(self, data: bytes) -> int:
        """Write what fits now; returns the bytes written (0 when the pipe is full)."""
        fd = self._open()
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self.close()
            raise PipeUnavailable(_describe(exc, self.path), down=True) from None

    async def wait_writable(self, timeout: float) -> None:
        fd = self._open()
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def writable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(fd, writable)
        try:
            await asyncio.wait_for(ready, timeout)
        except TimeoutError:
            pass
        finally:
            loop.remove_writer(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _describe(exc: OSError, path: Path) -> str:
    meaning = {errno.ENXIO: "the engine is not reading it", errno.ENOENT: "it does not exist",
               errno.EPIPE: "the engine closed it", errno.EACCES: "permission denied"}
    return f"{path}: {meaning.get(exc.errno or 0, exc.strerror or str(exc))}"


def pack(lines: Sequence[bytes]) -> list[list[bytes]]:
    """Group lines into writes of whole lines of at most PIPE_BUF bytes; a longer line stands alone."""
    writes: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        length = len(line) + 1
        if current and size + length > PIPE_BUF:
            writes.append(current)
            current, size = [], 0
        current.append(line)
        size += length
        if size > PIPE_BUF:
            writes.append(current)
            current, size = [], 0
    if current:
        writes.append(current)
    return writes


@dataclass(frozen=True, slots=True)
class DeliveryHealth:
    engine_reachable: bool
    spool_results: int
    spool_bytes: int
    spool_max_bytes: int
    oldest_age_s: float | None

    @property
    def spool_fill(self) -> float:
        return self.spool_bytes / self.spool_max_bytes


_Waiting = tuple[Sequence[bytes], asyncio.Future[None]]


class Delivery:
    """Owns the pipe and the spool; see the module doc. Start with ``start()``, end with ``stop()``."""

    def __init__(self, pipe: CommandPipe, spool: Spool, *, max_spool_bytes: int, fsync_interval: float = 1.0,
                 probe_interval: float = PROBE_INTERVAL, clock: Callable[[], float] = time.time,
                 on_delivered: Callable[[int], object] = lambda count: None) -> None:
        self.pipe = pipe
        self.spool = spool
        self.max_spool_bytes = max_spool_bytes
        self.engine_reachable = False
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
        self._spooled_while_down = 0

    async def start(self) -> None:
        await asyncio.to_thread(self.spool.open)
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
        self.pipe.close()
        await asyncio.to_thread(self.spool.close)

    async def submit(self, lines: Sequence[bytes]) -> None:
        """Return once every line is in the engine's pipe or in the spool; raise EngineUnavailable else."""
        if self._task is None or self._task.done() or self._stopping:
            raise EngineUnavailable("the bridge is shutting down")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((lines, future))
        self._wakeup.set()
        # Shielded: a client that hangs up does not cancel the delivery of what it sent.
        await asyncio.shield(future)

    def configure(self, *, max_spool_bytes: int, fsync: FsyncPolicy, fsync_interval: float) -> None:
        """New spool limits and fsync policy (a reload); applies to the next append."""
        self.max_spool_bytes = max_spool_bytes
        self.spool.fsync = fsync
        self._fsync_interval = fsync_interval

    def health(self) -> DeliveryHealth:
        oldest = self.spool.oldest_appended_at
        return DeliveryHealth(
            engine_reachable=self.engine_reachable, spool_results=self.spool.pending_results,
            spool_bytes=self.spool.pending_bytes, spool_max_bytes=self.max_spool_bytes,
            oldest_age_s=round(max(0.0, self._clock() - oldest), 3) if oldest is not None else None)

    # -- the task ------------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            if not self._waiting and not self._stopping:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self._timeout())
                except TimeoutError:
                    pass
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
            deadlines.append(self._retry_at)
        if self._next_sync is not None:
            deadlines.append(self._next_sync)
        return max(0.0, min(deadlines) - now)

    def _probe(self) -> None:
        self._next_probe = time.monotonic() + self._probe_interval
        reason = self.pipe.probe()
        if reason is None:
            self._mark_up()
        else:
            self._mark_down(reason)

    async def _deliver(self, items: list[_Waiting]) -> None:
        spooled: list[Sequence[bytes]] = []
        refused: list[_Waiting] = []
        if self.spool.pending_results:
            whole = items  # order: nothing overtakes what is spooled
        else:
            flat = [line for lines, _ in items for line in lines]
            written = await self._write(flat)
            whole = []
            for item in items:
                lines = item[0]
                if written >= len(lines):
                    written -= len(lines)
                elif written:
                    spooled.append(lines[written:])  # the rest of a request begun in the pipe always goes on
                    written = 0
                else:
                    whole.append(item)
        room = self.max_spool_bytes - self.spool.pending_bytes - Spool.size_of(spooled)
        for item in whole:
            size = Spool.size_of([item[0]])
            if size <= room:
                spooled.append(item[0])
                room -= size
            else:
                refused.append(item)
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
        if refused:
            log.warning("spool full (%d of %d bytes): refused %d requests", self.spool.pending_bytes,
                        self.max_spool_bytes, len(refused))
        for _, future in items:
            if future.done():
                continue
            if any(future is f for _, f in refused):
                future.set_exception(SpoolFull(
                    f"the engine is not reading and the spool is full ({self.spool.pending_bytes} of "
                    f"{self.max_spool_bytes} bytes): nothing of this request was accepted; retry later"))
            else:
                future.set_result(None)

    async def _drain_spool(self) -> None:
        while self.spool.pending_results:
            batch = await asyncio.to_thread(self.spool.read_batch)
            lines = batch.lines
            written = await self._write(lines)
            await asyncio.to_thread(self.spool.commit, batch, written)
            if written < len(lines) or self._waiting or self._stopping:
                return  # the pipe is full or gone (backoff set), or requests wait: answer them first

    async def _write(self, lines: Sequence[bytes]) -> int:
        """Write lines to the pipe in order; returns how many made it (the rest must be spooled)."""
        done = 0
        try:
            for group in pack(lines):
                data = b"".join(line + b"\n" for line in group)
                if len(data) <= PIPE_BUF:
                    if self.pipe.write(data) == 0:
                        self._set_backoff(_BACKOFF_BUSY)
                        return done
                elif not await self._write_long(data):
                    self._set_backoff(_BACKOFF_BUSY)
                    return done
                done += len(group)
                self._on_delivered(len(group))
        except PipeUnavailable as exc:
            self._mark_down(exc.reason)
            self._set_backoff(_BACKOFF_DOWN)
            return done
        self._mark_up()
        self._backoff = 0.0
        return done

    async def _write_long(self, data: bytes) -> bool:
        """A line longer than PIPE_BUF: once a part is in, the rest must follow before anything else."""
        written = self.pipe.write(data)
        if written == 0:
            return False
        while written < len(data):
            await self.pipe.wait_writable(1.0)
            written += self.pipe.write(data[written:])
        return True

    def _set_backoff(self, bounds: tuple[float, float]) -> None:
        """The pipe took nothing more: wait before the next try, longer each time, within ``bounds``."""
        low, high = bounds
        self._backoff = min(high, max(low, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff

    def _mark_down(self, reason: str) -> None:
        self.engine_reachable = False
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._spooled_while_down = 0
            log.warning("engine stopped reading its command pipe (%s): results go to the spool in %s", reason,
                        self.spool.directory)

    def _mark_up(self) -> None:
        self.engine_reachable = True
        if self._down_since is not None:
            log.info("engine reads its command pipe again after %.1f s; %d results were spooled meanwhile",
                     time.monotonic() - self._down_since, self._spooled_while_down)
            self._down_since = None
