"""Freshness bookkeeping: when each host and service last reported, against its threshold.

Pure: the clock is injected and nothing here does I/O (``FreshnessMonitor`` in ``bridge.engine.monitor`` runs the
sweeps, submits stale results and persists the table). A deadline heap keeps a sweep proportional to the objects
that fall due, not to all that are tracked.

Thresholds, first that applies: the ``ttl`` the object's last result carried (Icinga 2's process-check-result),
then the engine's own (``check_freshness 1`` with a ``freshness_threshold``, or the
engine's automatic rule when that is 0), then the first ``[[freshness.rules]]`` that matches, then
``[freshness] default_threshold``. An object with none is listed once it reports but never goes stale.
"""

from __future__ import annotations

import heapq
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bridge.core.objects import EngineStatus, KnownObjects, ObjectInfo
from bridge.core.values import Command, HostState, ServiceState

Key = tuple[str, str | None]  # (host, service or None for the host itself)
# A deadline heap item: (deadline, sequence number, key). The sequence number is unique, so the heap never
# compares keys: (host, None) and (host, "svc") fall due together on every first start, and None < "svc" raises.
HeapItem = tuple[float, int, Key]

# The engine's automatic threshold adds this to the check interval (additional_freshness_latency, default 15 s).
ADDITIONAL_FRESHNESS_LATENCY = 15
MIN_RESUBMIT_SECONDS = 60
SETTLE_LIMIT = 2000  # heap items ``due()`` settles before it leaves the rest to a sweep (~1 ms of work)
# Alignak's freshness_state: the state letter a stale result carries, by object kind and state. The kind is part
# of the key because the two IntEnums are equal across kinds (ServiceState.CRITICAL == HostState.UNREACHABLE == 2):
# keyed by state alone, a stale CRITICAL service read "x" and a WARNING one "d".
STALE_LETTERS: dict[tuple[str, int], str] = {
    ("host", HostState.UP): "o", ("host", HostState.DOWN): "d", ("host", HostState.UNREACHABLE): "x",
    ("service", ServiceState.OK): "o", ("service", ServiceState.WARNING): "w",
    ("service", ServiceState.CRITICAL): "c", ("service", ServiceState.UNKNOWN): "u"}


@dataclass(frozen=True, slots=True)
class FreshnessRule:
    """``host`` and ``service`` globs. Without ``service`` the rule is for host objects; ``service = "*"``
    matches every service of the matching hosts."""

    threshold: int
    host: str = "*"
    service: str | None = None

    def matches(self, key: Key) -> bool:
        host, service = key
        if not fnmatchcase(host, self.host):
            return False
        return self.service is None if service is None else \
            self.service is not None and fnmatchcase(service, self.service)


@dataclass(slots=True)
class Entry:
    last_result: float  # the result's own time; for an object that never reported, when tracking began
    reported: bool = False
    state: int | None = None
    threshold: float | None = None
    engine_checks: bool = False  # the engine checks this object's freshness itself: report, never submit
    stale: bool = False
    stale_submitted_at: float | None = None
    deadline: float | None = None  # when it goes stale, or is due for another stale result
    heap_seq: int | None = None  # the sequence number of its one live heap item; older items are skipped
    # The deadline its live heap item carries. A result only moves a deadline later: the item stays, and when it
    # comes up it is moved on to the deadline then, so a result costs no heap push and leaves no dead item behind.
    queued: float | None = None


@dataclass(frozen=True, slots=True)
class StaleEvent:
    key: Key
    age: float
    threshold: float


@dataclass(frozen=True, slots=True)
class Row:
    host_name: str
    service_description: str | None
    last_result: int | None
    age_s: int
    threshold_s: int | None
    state: int | None
    stale: bool
    engine_checks: bool


def engine_threshold(info: ObjectInfo, is_service: bool, interval_length: int) -> int | None:
    """The engine's threshold for an object it checks for freshness, its automatic rule included (engine.md)."""
    if not info.check_freshness:
        return None
    if info.freshness_threshold > 0:
        return info.freshness_threshold
    interval = info.check_interval if is_service or info.check_interval else info.retry_interval
    return int(interval * interval_length) + ADDITIONAL_FRESHNESS_LATENCY


def human_duration(seconds: float) -> str:
    """``26h 4m``, ``5m 3s``, ``42s``: what a stale output says."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def interned_key(host: str, service: str | None) -> Key:
    """The key an object is kept under, its names interned: one host name for all its services, one string per
    service description however many results brought it (each request's JSON parse makes new strings)."""
    return sys.intern(host), None if service is None else sys.intern(service)


class FreshnessTable:
    def __init__(self, clock: Callable[[], float], *, rules: Sequence[FreshnessRule] = (),
                 default_threshold: int | None = None, submit_stale: bool = False, interval_length: int = 60
                 ) -> None:
        self._clock = clock
        self.rules = tuple(rules)
        self.default_threshold = default_threshold
        self.submit_stale = submit_stale
        self.interval_length = interval_length
        self.started_at = clock()
        self._entries: dict[Key, Entry] = {}
        self._heap: list[HeapItem] = []
        self._sequence = itertools.count()
        self.stale_count = 0
        self._ttls: dict[Key, float] = {}  # a sender's own threshold for an object (Icinga 2's ttl)

    def configure(self, *, rules: Sequence[FreshnessRule], default_threshold: int | None, submit_stale: bool,
                  interval_length: int) -> None:
        """New settings (a reload); thresholds are recomputed at the next ``apply_engine``."""
        self.rules, self.default_threshold = tuple(rules), default_threshold
        self.submit_stale, self.interval_length = submit_stale, interval_length

    def __len__(self) -> int:
        return len(self._entries)

    def now(self) -> float:
        return self._clock()

    # -- thresholds ----------------------------------------------------------------------------------------------
    def _threshold(self, key: Key, info: ObjectInfo | None) -> tuple[float | None, bool]:
        ttl = self._ttls.get(key)
        if ttl is not None:  # the sender said how long its result holds: that, whatever else would apply
            return ttl, False
        if info is not None:
            engine = engine_threshold(info, key[1] is not None, self.interval_length)
            if engine is not None:
                return engine, True
        for rule in self.rules:
            if rule.matches(key):
                return rule.threshold, False
        return self.default_threshold, False

    def apply_engine(self, known: KnownObjects | None, status: EngineStatus | None) -> None:
        """(Re)compute every threshold from the engine's objects and globals; track every object that has one."""
        service_globals, host_globals = True, False  # the engine's defaults (engine.md)
        if status is not None and status.program:
            service_globals = status.program.get("check_service_freshness", "1") == "1"
            host_globals = status.program.get("check_host_freshness", "0") == "1"
        infos: dict[Key, ObjectInfo] = {}
        if known is not None:
            infos.update(((h, None), i) for h, i in known.hosts.items())
            infos.update(known.services.items())
        candidates = set(infos) | set(self._entries)
        if known is None and status is not None:  # no objects cache: the objects status.dat lists
            candidates |= {(h, None) for h in status.hosts} | set(status.services)
        now = self._clock()
        for key in candidates:
            info = infos.get(key)
            threshold, engine = self._threshold(key, info)
            entry = self._entries.get(key)
            if entry is None:
                if threshold is None:
                    continue
                checked = None
                if status is not None:
                    checked = status.hosts.get(key[0]) if key[1] is None else status.services.get((key[0], key[1]))
                seen = checked if checked is not None and checked.has_been_checked else None
                entry = Entry(last_result=seen.last_check if seen else self.started_at, reported=seen is not None,
                              state=seen.current_state if seen else None)
                self._entries[key] = entry
            entry.threshold = threshold
            entry.engine_checks = engine and (service_globals if key[1] is not None else host_globals)
            self._schedule(key, entry, now)
        self._rebuild_heap()

    # -- results -------------------------------------------------------------------------------------------------
    def record(self, host: str, service: str | None, state: int, timestamp: float) -> None:
        key = (host, service)
        entry = self._entries.get(key)
        if entry is None:
            key = interned_key(host, service)
            threshold, _ = self._threshold(key, None)
            entry = self._entries[key] = Entry(last_result=timestamp, threshold=threshold)
        if entry.stale:
            entry.stale = False
            self.stale_count -= 1
        entry.last_result, entry.reported, entry.state = timestamp, True, state
        entry.stale_submitted_at = None
        self._schedule(key, entry, self._clock())

    def set_ttl(self, host: str, service: str | None, ttl: float | None) -> None:
        """The sender's own threshold for an object (Icinga 2's ``ttl`` with a result; 0 or None: none, and the
        usual threshold applies again). Call after ``record`` for the result that carried it."""
        key = (host, service)
        if ttl:
            self._ttls[key] = ttl
        elif self._ttls.pop(key, None) is None:
            return
        entry = self._entries.get(key)
        if entry is None:
            if not ttl:
                return
            entry = self._entries[key] = Entry(last_result=self._clock())
        # A ttl overrides the engine's own threshold too; once dropped, the engine's is back at the next
        # apply_engine (the objects cache is not at hand here).
        entry.threshold, entry.engine_checks = self._threshold(key, None)
        self._schedule(key, entry, self._clock())

    def ttl(self, host: str, service: str | None) -> float | None:
        return self._ttls.get((host, service))

    def record_commands(self, commands: Iterable[Command]) -> None:
        """Note every check result among ``commands`` (the bridge's own stale results never come here)."""
        for command in commands:
            name, fields = command.spec.name, command.fields
            if name == "PROCESS_SERVICE_CHECK_RESULT":
                self.record(fields[0], fields[1], int(fields[2]), command.timestamp)
            elif name == "PROCESS_HOST_CHECK_RESULT":
                self.record(fields[0], None, int(fields[1]), command.timestamp)

    # -- sweeping ------------------------------------------------------------------------------------------------
    def _schedule(self, key: Key, entry: Entry, now: float) -> None:
        if entry.threshold is None:
            entry.deadline = None
            if entry.stale:
                entry.stale = False
                self.stale_count -= 1
            return
        if entry.stale:
            submitted = entry.stale_submitted_at
            if not self._submits(entry):
                entry.deadline = None  # reported as stale; nothing more to do until a result comes
            elif submitted is None:
                entry.deadline = now  # stale, but no stale result sent yet (e.g. submit_stale just turned on)
            else:
                entry.deadline = submitted + max(entry.threshold, MIN_RESUBMIT_SECONDS)
        else:
            entry.deadline = entry.last_result + entry.threshold
        if entry.deadline is None:
            entry.heap_seq = entry.queued = None
            return
        if entry.heap_seq is not None and entry.queued is not None and entry.queued <= entry.deadline:
            return  # its live item comes up first and is moved on then (``_top``)
        entry.heap_seq = next(self._sequence)
        entry.queued = entry.deadline
        heapq.heappush(self._heap, (entry.deadline, entry.heap_seq, key))
        # Every result pushes a new item and leaves the old one to be skipped when it falls due: without this, an
        # object reporting every 10 s against a day's threshold would leave 8,640 dead items in the heap.
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        self._heap = []
        for key, entry in self._entries.items():
            if entry.deadline is None:
                entry.heap_seq = entry.queued = None
                continue
            entry.heap_seq = seq = next(self._sequence)
            entry.queued = entry.deadline
            self._heap.append((entry.deadline, seq, key))
        heapq.heapify(self._heap)

    def _live(self, item: HeapItem) -> Entry | None:
        """The entry ``item`` schedules, or None for an item a newer result or threshold superseded."""
        entry = self._entries.get(item[2])
        return entry if entry is not None and entry.heap_seq == item[1] else None

    def _submits(self, entry: Entry) -> bool:
        return self.submit_stale and not entry.engine_checks

    def _settle(self, item: HeapItem) -> Entry | None:
        """Settle the heap's first item, ``item``: the entry it makes due, or None when it was dropped (superseded
        by a newer result or threshold) or moved on to its object's later deadline."""
        entry = self._live(item)
        if entry is None:
            heapq.heappop(self._heap)
            return None
        if entry.deadline is not None and entry.deadline > item[0]:
            entry.heap_seq = seq = next(self._sequence)
            entry.queued = entry.deadline
            heapq.heapreplace(self._heap, (entry.deadline, seq, item[2]))
            return None
        return entry

    def due(self) -> bool:
        """Whether a sweep has work now. Items at the top that would only be dropped or moved on are settled first,
        so it never says yes for them alone — up to ``SETTLE_LIMIT`` of them: more than that is work for a sweep
        (which counts them against its limit), so a burst of them never stalls the caller here."""
        now = self._clock()
        for _ in range(SETTLE_LIMIT):
            if not self._heap or self._heap[0][0] > now:
                return False
            if self._settle(self._heap[0]) is not None:
                return True
        return True

    def sweep(self, limit: int | None = None) -> list[StaleEvent]:
        """Mark what went stale; return the stale results to submit now (once per episode, then every threshold,
        at least 60 s apart), only for objects the engine does not check itself and only with submit_stale.

        At most ``limit`` due objects are handled per call, so a caller can yield between chunks.
        """
        now = self._clock()
        events: list[StaleEvent] = []
        handled = 0
        while self._heap and self._heap[0][0] <= now and (limit is None or handled < limit):
            handled += 1  # settling an item counts: a chunk's work is bounded however many were superseded
            item = self._heap[0]
            entry = self._settle(item)
            if entry is None:
                continue
            heapq.heappop(self._heap)
            if entry.threshold is None:
                continue
            entry.heap_seq = entry.queued = None  # its item is gone: _schedule pushes the next one
            key = item[2]
            if not entry.stale:
                entry.stale = True
                self.stale_count += 1
            if self._submits(entry):
                events.append(StaleEvent(key, now - entry.last_result, entry.threshold))
                entry.stale_submitted_at = now
            self._schedule(key, entry, now)
        return events

    # -- showing and keeping -------------------------------------------------------------------------------------
    def rows(self, *, stale_only: bool = False, host: str | None = None) -> Iterator[Row]:
        now = self._clock()
        # Ordered by strings only (never None against a string): the host first, then its services.
        for (host_name, service), e in sorted(self._entries.items(),
                                              key=lambda item: (item[0][0], item[0][1] is not None, item[0][1] or "")):
            if (stale_only and not e.stale) or (host is not None and host_name != host):
                continue
            yield self.row((host_name, service), e, now)

    def row(self, key: Key, e: Entry, now: float) -> Row:
        return Row(key[0], key[1], int(e.last_result) if e.reported else None, max(0, int(now - e.last_result)),
                   int(e.threshold) if e.threshold is not None else None, e.state, e.stale, e.engine_checks)

    def items(self) -> Iterable[tuple[Key, Entry]]:
        """Every tracked object and its entry, in no order: for a caller that shows a few of many (the status
        page), which ``rows``' sorting of them all would cost more than it needs."""
        return self._entries.items()

    def entry(self, host: str, service: str | None) -> Entry | None:
        return self._entries.get((host, service))

    def counts(self) -> dict[str, int]:
        return {"fresh": len(self._entries) - self.stale_count, "stale": self.stale_count}

    def dump(self) -> dict[str, object]:
        """What survives a restart: last-seen times and stale episodes."""
        return {"version": 1, "objects": [
            [h, s, e.last_result, e.reported, e.state, e.stale, e.stale_submitted_at,
             *([self._ttls[(h, s)]] if (h, s) in self._ttls else [])]
            for (h, s), e in self._entries.items()]}

    def load(self, data: Mapping[str, object]) -> None:
        """Take last-seen times from a dump; call before ``apply_engine`` (the persisted table wins over
        status.dat, whose last_check also moves on the bridge's own stale results)."""
        objects = data.get("objects")
        if data.get("version") != 1 or not isinstance(objects, list):
            raise ValueError("not a naemon-bridge freshness table (version 1)")
        for host, service, last_result, reported, state, stale, submitted, *ttl in objects:
            if ttl and ttl[0]:  # an eighth member: the object's ttl (older dumps have seven)
                self._ttls[(host, service)] = float(ttl[0])
            entry = Entry(last_result=float(last_result), reported=bool(reported), state=state,
                          stale=bool(stale), stale_submitted_at=submitted)
            key = interned_key(host, service)
            entry.threshold, _ = self._threshold(key, None)
            self._entries[key] = entry
            self.stale_count += entry.stale
        now = self._clock()
        for key, entry in self._entries.items():
            # Without the engine's objects a threshold only they give is unknown yet: scheduling now would end the
            # object's stale episode, and apply_engine would start a new one with a second stale result.
            if entry.threshold is not None:
                self._schedule(key, entry, now)
        self._rebuild_heap()



def freshness_feedback(entry: Entry | None, stale_state: HostState | ServiceState) -> dict[str, object]:
    """Alignak ``_feedback`` fields for one object: the threshold in effect, the letter of the state a stale
    result would carry, and the last check and state where known."""
    kind = "service" if isinstance(stale_state, ServiceState) else "host"
    feedback: dict[str, object] = {"freshness_state": STALE_LETTERS[(kind, stale_state)]}
    if entry is not None:
        feedback["check_freshness"] = entry.threshold is not None
        feedback["freshness_threshold"] = int(entry.threshold or 0)
        if entry.reported:
            feedback["last_check"] = int(entry.last_result)
            feedback["state_id"] = entry.state
        feedback["stale"] = entry.stale
    return feedback
