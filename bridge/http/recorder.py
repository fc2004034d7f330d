"""What the status page shows of the recent past, kept in memory: results accepted (by dialect) and delivered per
second over the last 15 minutes, refusals by reason over the last hour, and the last 50 refused requests.

Fed by the paths that already count these for ``/metrics`` (``Metrics.note_delivered``, ``Metrics.refuse``,
``submit_commands``); each note is a clock read and a few integer operations, so intake pays nothing it would
notice. Fixed-size rings: memory does not grow with traffic. A restart forgets it all (``/metrics`` and the log
are the record; this is the glance).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

RATE_WINDOW = 900  # seconds of per-second counts kept: 15 minutes
REFUSAL_WINDOW = 60  # minutes of refusal counts kept: an hour
LAST_REFUSED = 50  # refused requests listed


class PerSecond:
    """Counts per second for the last ``window`` seconds: a ring indexed by the second, each slot stamped with
    the second it counts, so a slot left from an earlier lap reads as zero. One slot more than ``window``: the
    second under way must not overwrite the oldest second the window still shows."""

    __slots__ = ("window", "_counts", "_stamps")

    def __init__(self, window: int = RATE_WINDOW) -> None:
        self.window = window
        self._counts = [0] * (window + 1)
        self._stamps = [-1] * (window + 1)

    def add(self, now: float, count: int) -> None:
        second = int(now)
        slot = second % len(self._stamps)
        if self._stamps[slot] != second:
            self._stamps[slot] = second
            self._counts[slot] = 0
        self._counts[slot] += count

    def rates(self, now: float, buckets: int) -> list[float]:
        """Mean count per second in each of ``buckets`` equal spans of the window, oldest first; the second under
        way is left out (it is not over)."""
        end = int(now)
        width = self.window // buckets
        start = end - width * buckets
        sums = [0] * buckets
        for slot in range(len(self._stamps)):
            second = self._stamps[slot]
            if start <= second < end:
                sums[(second - start) // width] += self._counts[slot]
        return [total / width for total in sums]

    def total(self, now: float) -> int:
        end = int(now)
        return sum(c for c, s in zip(self._counts, self._stamps, strict=True) if end - self.window <= s < end)


@dataclass(frozen=True, slots=True)
class Refused:
    """One refused request as the page lists it: never a password or a token (``user`` is a configured user's
    name, or empty)."""

    at: float
    client: str
    user: str
    dialect: str
    reason: str
    message: str


class Recorder:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.accepted: dict[str, PerSecond] = {}
        self.delivered = PerSecond()
        self._refusal_minutes: deque[tuple[int, Counter[str]]] = deque(maxlen=REFUSAL_WINDOW)
        self.last_refused: deque[Refused] = deque(maxlen=LAST_REFUSED)

    def now(self) -> float:
        return self._clock()

    def note_accepted(self, dialect: str, count: int) -> None:
        series = self.accepted.get(dialect)
        if series is None:
            series = self.accepted[dialect] = PerSecond()
        series.add(self._clock(), count)

    def note_delivered(self, count: int) -> None:
        self.delivered.add(self._clock(), count)

    def note_refused(self, reason: str, *, client: str = "", user: str = "", dialect: str = "", message: str = "",
                     count: int = 1, listed: bool = True) -> None:
        """``count`` refusals for ``reason``; ``listed``: the request goes on the list of the last ones too."""
        now = self._clock()
        minute = int(now // 60)
        if not self._refusal_minutes or self._refusal_minutes[-1][0] != minute:
            self._refusal_minutes.append((minute, Counter()))
        self._refusal_minutes[-1][1][reason] += count
        if listed:
            self.last_refused.append(Refused(now, client, user, dialect, reason, message[:300]))

    def refusals_by_reason(self) -> dict[str, int]:
        """Refusals of the last hour by reason, most frequent first."""
        since = int(self._clock() // 60) - REFUSAL_WINDOW
        totals: Counter[str] = Counter()
        for minute, counts in self._refusal_minutes:
            if minute > since:
                totals.update(counts)
        return dict(totals.most_common())

    def refused(self) -> Iterator[Refused]:
        """The last refused requests, newest first."""
        return reversed(self.last_refused)
