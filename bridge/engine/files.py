"""The engine's files as the bridge reads them: ``objects.cache`` and ``status.dat``, each re-read when it changes.

The engine rewrites ``objects.cache`` at every start and ``status.dat`` every ``status_update_interval``; the
parsers (``bridge.core.objects``) run in a thread so a large file never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import aiofiles

from bridge.core.objects import EngineStatus, KnownObjects, parse_objects_cache, parse_status

log = logging.getLogger("naemon_bridge.objects")


T = TypeVar("T")


class WatchedFile(Generic[T]):
    """A parsed file, re-parsed when its inode, size or mtime changes, looked at most every ``min_interval`` s.

    Only the first read waits for the parse. After that, a request gets the last parsed value at once, and a due
    check re-reads the file in the background: the engine rewrites status.dat every few seconds, and at 100,000
    objects parsing it takes seconds, which no request should wait for.

    A file that is missing or unreadable gives ``None`` (logged once per change of condition, with ``meanwhile``:
    what the bridge does without it). Without the objects cache the bridge accepts any name, rather than refusing
    every result while the engine is down.
    """

    def __init__(self, path: Path, parse: Callable[[str], T], *, meanwhile: str = "", min_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, long_lived: bool = False) -> None:
        self.path = path
        self._long_lived = long_lived
        self._parse = parse
        self._meanwhile = f": {meanwhile}" if meanwhile else ""
        self._min_interval = min_interval
        self._clock = clock
        self._signature: tuple[int, int, int] | None = None
        self._value: T | None = None
        self._checked_at: float | None = None
        self._problem: str | None = None
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[None] | None = None

    async def get(self) -> T | None:
        if self._checked_at is None:
            async with self._lock:  # the first read: everyone waits for the one parse
                if self._checked_at is None:
                    await self._refresh()
                    self._checked_at = self._clock()
            return self._value
        if self._refreshing is None and self._clock() - self._checked_at >= self._min_interval:
            self._checked_at = self._clock()
            self._refreshing = asyncio.create_task(self._refresh(), name=f"re-read {self.path}")
            self._refreshing.add_done_callback(self._refreshed)
        return self._value

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._refreshing = None
        if not task.cancelled() and task.exception() is not None:
            log.error("cannot parse %s: %s", self.path, task.exception())

    async def refreshed(self) -> T | None:
        """The value once any background re-read has finished (for tests and tools)."""
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)
        return self._value

    async def _refresh(self) -> None:
        try:
            stat = os.stat(self.path)
            signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
            if signature == self._signature:
                return
            async with aiofiles.open(self.path, encoding="utf-8", errors="replace") as handle:
                text = await handle.read()
            self._value = await asyncio.to_thread(self._parse, text)
            self._signature = signature
            if self._long_lived:
                keep_out_of_full_collections()
            if self._problem is not None:
                log.info("%s is readable again", self.path)
            self._problem = None
        except OSError as exc:
            problem = exc.strerror or str(exc)
            if problem != self._problem:
                log.warning("cannot read %s (%s)%s", self.path, problem, self._meanwhile)
            self._problem = problem
            self._value = None
            self._signature = None


def keep_out_of_full_collections() -> None:
    """Move what lives now out of the cyclic collector's reach (``gc.freeze``), garbage collected first so none is
    kept with it. Measured at 1,000,000 objects: a full collection walks the objects cache and the freshness table
    and stalls the loop ~270 ms of CPU (777 ms on a busy machine), every few hundred thousand new objects; frozen,
    23 ms. Called after a new objects cache is parsed and the freshness table follows it: rare, and then one
    collection instead of many. The tables hold no reference cycles, so whatever of them is dropped later is still
    freed (by reference counting)."""
    gc.collect()
    gc.freeze()


OBJECTS_CACHE_MISSING = "host and service names are not checked until it is back"
# The engine removes status.dat when it stops (objects.cache stays): names are never checked against status.dat.
STATUS_FILE_MISSING = ("Alignak _feedback has no current states or check flags until it is back (the engine removes "
                       "it while it is stopped); host and service names are checked against engine.objects_cache, "
                       "not this file")


class EngineFiles:
    """The engine's objects cache and status file, each optional, each re-read when it changes."""

    def __init__(self, objects_cache: Path | None, status_file: Path | None) -> None:
        self._objects: WatchedFile[KnownObjects] | None = None
        self._status: WatchedFile[EngineStatus] | None = None
        self.update(objects_cache, status_file)

    def update(self, objects_cache: Path | None, status_file: Path | None) -> None:
        """Follow other paths (a reload); a path that stays keeps its parsed file."""
        if objects_cache != (self._objects.path if self._objects else None):
            self._objects = WatchedFile(objects_cache, parse_objects_cache, meanwhile=OBJECTS_CACHE_MISSING,
                                        long_lived=True) if objects_cache else None
        if status_file != (self._status.path if self._status else None):
            self._status = WatchedFile(status_file, parse_status, meanwhile=STATUS_FILE_MISSING) \
                if status_file else None

    async def objects(self) -> KnownObjects | None:
        return await self._objects.get() if self._objects else None

    async def status(self) -> EngineStatus | None:
        return await self._status.get() if self._status else None
