"""``GET /metrics``: Prometheus exposition with the ``prometheus-client`` library, no auth (no secrets in it).

Each application has its own registry, so tests and several apps in one process never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bridge.core.errors import (
    BadRequestBody,
    BridgeError,
    EngineRefused,
    EngineUnavailable,
    InvalidInput,
    NotAuthenticated,
    NotPermitted,
    SpoolFull,
    Throttled,
    UnknownCommand,
    UnknownObject,
)
from bridge.http.recorder import LAST_REFUSED, Recorder

# The most specific class first: the reason label for each refusal.
_REASONS: tuple[tuple[type[BridgeError], str], ...] = (
    (UnknownObject, "unknown_object"), (InvalidInput, "invalid"), (BadRequestBody, "bad_body"),
    (NotAuthenticated, "unauthenticated"), (NotPermitted, "not_permitted"), (Throttled, "throttled"),
    (UnknownCommand, "unknown_command"), (SpoolFull, "spool_full"), (EngineUnavailable, "engine_unavailable"),
    (EngineRefused, "engine_refused"),
)


def refusal_reason(error: BridgeError) -> str:
    return next((reason for kind, reason in _REASONS if isinstance(error, kind)), "other")


class Metrics:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self.recent = Recorder(clock)  # what the status page shows of the last minutes
        self.accepted = Counter("naemon_bridge_results_accepted", "Results and commands acknowledged (2xx), "
                                "each line counted", registry=self.registry)
        self.refused = Counter("naemon_bridge_results_refused", "Requests refused, each counted once, by reason",
                               ["reason"], registry=self.registry)
        self.by_dialect = Counter("naemon_bridge_results_by_dialect", "Results acknowledged, by the dialect they "
                                  "came in (op5, alignak, nrdp, icinga, nsca; on a cluster sink: cluster)",
                                  ["dialect"], registry=self.registry)
        self.nsca_dropped = Counter("naemon_bridge_nsca_dropped", "NSCA packets and connections dropped, by reason "
                                    "(NSCA has no answer: this and the log are how refusals show)", ["reason"],
                                    registry=self.registry)
        self.delivered = Counter("naemon_bridge_results_delivered", "Lines written into the engine's command pipe",
                                 registry=self.registry)
        self.spool_lost = Counter("naemon_bridge_spool_lost_records", "Acknowledged spool records found damaged and "
                                  "skipped (at least this many; a torn last record is not counted)",
                                  registry=self.registry)
        self.request_duration = Histogram("naemon_bridge_request_duration_seconds", "Time to answer a request",
                                          ["api"], registry=self.registry,
                                          buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                   0.5, 1.0, 2.5, 5.0, 10.0))
        self._spool_results = Gauge("naemon_bridge_spool_results", "Results waiting in the spool",
                                    registry=self.registry)
        self._spool_bytes = Gauge("naemon_bridge_spool_bytes", "Bytes waiting in the spool", registry=self.registry)
        self._engine_up = Gauge("naemon_bridge_engine_up", "1 when the engine reads its command pipe",
                                registry=self.registry)
        self._durations: dict[str, Histogram] = {}
        self._stale = Gauge("naemon_bridge_stale_objects", "Hosts and services past their freshness threshold",
                            registry=self.registry)

    def observe(self, *, spool_results: Callable[[], float], spool_bytes: Callable[[], float],
                engine_up: Callable[[], float], stale_objects: Callable[[], float]) -> None:
        """Gauges read at scrape time from the parts that own the numbers."""
        self._spool_results.set_function(spool_results)
        self._spool_bytes.set_function(spool_bytes)
        self._engine_up.set_function(engine_up)
        self._stale.set_function(stale_objects)

    def refuse(self, error: BridgeError, *, client: str = "", user: str = "", dialect: str = "") -> None:
        reason = refusal_reason(error)
        self.refused.labels(reason).inc()
        self.recent.note_refused(reason, client=client, user=user, dialect=dialect, message=str(error))

    def note_accepted(self, dialect: str, count: int) -> None:
        """``count`` lines acknowledged for a request in ``dialect``: counted by dialect, and for the status page
        (``accepted`` itself is counted where the lines are delivered)."""
        self.by_dialect.labels(dialect).inc(count)
        self.recent.note_accepted(dialect, count)

    def note_delivered(self, count: int) -> None:
        self.delivered.inc(count)
        self.recent.note_delivered(count)

    def observe_request(self, api: str, seconds: float) -> None:
        child = self._durations.get(api)
        if child is None:
            child = self._durations[api] = self.request_duration.labels(api)
        child.observe(seconds)


class WorkerMetrics(Metrics):
    """A worker's (``[server] workers``): refusals and request times wait here until the hub takes them, so the
    hub's ``/metrics`` counts every request, whichever process answered it."""

    def __init__(self) -> None:
        super().__init__()
        self.pending_refused: dict[str, int] = {}
        self.pending_durations: dict[str, list[float]] = {}
        self.pending_refusals: list[list[str]] = []  # the status page's list: [client, user, dialect, reason, text]
        self.pending_accepted: dict[str, int] = {}

    def refuse(self, error: BridgeError, *, client: str = "", user: str = "", dialect: str = "") -> None:
        reason = refusal_reason(error)
        self.pending_refused[reason] = self.pending_refused.get(reason, 0) + 1
        if len(self.pending_refusals) < LAST_REFUSED:
            self.pending_refusals.append([client, user, dialect, reason, str(error)[:300]])

    def note_accepted(self, dialect: str, count: int) -> None:
        self.pending_accepted[dialect] = self.pending_accepted.get(dialect, 0) + count

    def observe_request(self, api: str, seconds: float) -> None:
        self.pending_durations.setdefault(api, []).append(seconds)

    def take_pending(self) -> dict[str, object] | None:
        """What waits for the hub, emptied; None when nothing does."""
        if not self.pending_refused and not self.pending_durations and not self.pending_accepted:
            return None
        taken = {"refused": self.pending_refused, "durations": self.pending_durations,
                 "refusals": self.pending_refusals, "accepted": self.pending_accepted}
        self.pending_refused, self.pending_durations, self.pending_refusals = {}, {}, []
        self.pending_accepted = {}
        return taken


def apply_pending(metrics: Metrics, pending: dict[str, Any]) -> None:
    """The hub's side of ``WorkerMetrics.take_pending``."""
    refusals: list[list[str]] = pending.get("refusals", [])
    for client, user, dialect, reason, message in refusals:
        metrics.recent.note_refused(reason, client=client, user=user, dialect=dialect, message=message)
    for reason, count in pending.get("refused", {}).items():
        metrics.refused.labels(reason).inc(count)
        unlisted = count - sum(1 for refusal in refusals if refusal[3] == reason)  # past the worker's list
        if unlisted > 0:
            metrics.recent.note_refused(reason, count=unlisted, listed=False)
    for dialect, count in pending.get("accepted", {}).items():
        metrics.note_accepted(dialect, count)
    for api, seconds in pending.get("durations", {}).items():
        for value in seconds:
            metrics.observe_request(api, value)


def metrics_response(metrics: Metrics) -> web.Response:
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
