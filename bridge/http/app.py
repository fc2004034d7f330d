"""The application factory: ``serve``, ``demo`` and the tests all build the bridge through ``make_app``."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence

from aiohttp import web

from bridge.config.model import Config, LiveConfig
from bridge.core.freshness import FreshnessTable
from bridge.core.recent import RecentChanges
from bridge.core.types import Clock
from bridge.engine.delivery import Delivery
from bridge.engine.files import EngineFiles
from bridge.engine.monitor import FreshnessMonitor
from bridge.engine.spool import Spool
from bridge.engine.transport import FRAGMENT_MARKER, FifoTransport, QueryTransport, Transport
from bridge.http.credentials import Authenticator
from bridge.http.dialects import Dialect
from bridge.http.keys import (
    AUTH,
    CLOCK,
    CONFIG,
    DELIVERY,
    DIALECTS,
    ENGINE_FILES,
    FRESHNESS,
    METRICS,
    MONITOR,
    RECENT,
    SESSIONS,
)
from bridge.http.metrics import Metrics
from bridge.http.routes import setup_routes
from bridge.http.sessions import SessionStore

log = logging.getLogger("naemon_bridge")


def make_delivery(config: Config, metrics: Metrics, clock: Clock = time.time,
                  transport: Transport | None = None) -> Delivery:
    spool = Spool(config.spool.directory, fsync=config.spool.fsync, clock=clock, on_lost=metrics.spool_lost.inc)
    engine = config.engine
    transport = transport if transport is not None else QueryTransport(engine.query_socket, engine.query_connections) \
        if engine.query_socket is not None else \
        FifoTransport(engine.command_file, fragment_marker=config.spool.directory / FRAGMENT_MARKER)
    return Delivery(transport, spool, max_spool_bytes=config.spool.max_bytes,
                    fsync_interval=config.spool.fsync_interval, busy_wait=engine.busy_wait, clock=clock,
                    on_delivered=metrics.note_delivered)


def request_side(config: Config, metrics: Metrics, clock: Clock, dialects: Sequence[Dialect]) -> web.Application:
    """What every process that answers HTTP holds: the live config, the users, the engine's files, the clock, the
    metrics and the dialects it speaks (a worker of ``[server] workers`` holds only this, and a way to its
    hub)."""
    app = web.Application(client_max_size=config.server.max_body_bytes)
    app[DIALECTS] = tuple(dialects)
    app[METRICS] = metrics
    app[CONFIG] = LiveConfig(config)
    app[AUTH] = Authenticator(config.users, config.auth)
    app[SESSIONS] = SessionStore()
    app[RECENT] = RecentChanges()
    app[ENGINE_FILES] = EngineFiles(config.engine.objects_cache, config.engine.status_file)
    app[CLOCK] = clock
    return app


def make_app(config: Config, dialects: Sequence[Dialect], *, clock: Clock = time.time,
             transport: Transport | None = None) -> web.Application:
    """The bridge as an aiohttp application answering ``dialects`` (``bridge.intake.DIALECTS``, the first one's
    error shape for the paths none claims): ``serve``, ``demo`` and the tests all build it here. ``transport``
    replaces the engine's (a cluster's edge delivers into JetStream, ``bridge.daemon.cluster_roles``)."""
    metrics = Metrics(clock)
    app = request_side(config, metrics, clock, dialects)
    delivery = make_delivery(config, metrics, clock, transport)
    app[DELIVERY] = delivery
    fresh = config.freshness
    table = FreshnessTable(clock, rules=fresh.rules, default_threshold=fresh.default_threshold,
                           submit_stale=fresh.submit_stale, interval_length=fresh.interval_length)
    app[FRESHNESS] = table
    monitor = FreshnessMonitor(table, fresh, app[ENGINE_FILES], delivery, config.engine,
                               config.spool.directory)
    app[MONITOR] = monitor

    async def delivery_context(_: web.Application) -> AsyncIterator[None]:
        await delivery.start()
        yield
        await delivery.stop(timeout=config.server.shutdown_timeout)

    async def freshness_context(_: web.Application) -> AsyncIterator[None]:
        await monitor.start()  # after the delivery task: it submits stale results through it
        yield
        await monitor.stop()

    app.cleanup_ctx.extend([delivery_context, freshness_context])
    metrics.observe(spool_results=lambda: delivery.spool.pending_results,
                    spool_bytes=lambda: delivery.spool.pending_bytes,
                    engine_up=lambda: 1 if delivery.engine_reachable else 0,
                    stale_objects=lambda: table.stale_count)
    setup_routes(app, metrics, dialects)
    return app
