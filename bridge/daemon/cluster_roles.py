"""``[cluster] role``: the application of an edge or a sink, built on ``make_app`` (so each keeps every dialect,
the spool, ``/health`` and ``/metrics``) with the cluster parts of ``bridge.engine.cluster`` plugged in.

- edge: the delivery task's transport is JetStream; the hub of its requests (``HUB``) routes each command by host
  to its engine's subject; names are checked against the objects the sinks published.
- sink: today's bridge beside one engine, plus a durable consumer of that engine's subject and the publisher of
  its objects.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import AsyncIterator, Sequence

from aiohttp import web
from prometheus_client import Gauge

from bridge.config.model import Config
from bridge.core.values import Command
from bridge.engine.cluster import ClusterConnection, ClusterObjects, EdgeRouter, JetStreamTransport, SinkConsumer
from bridge.http.app import make_app
from bridge.http.dialects import CURRENT_DIALECT, Dialect
from bridge.http.keys import CLUSTER, CONFIG, DELIVERY, ENGINE_FILES, HUB, METRICS
from bridge.http.submission import submit_commands

STREAM = "cluster"  # how the status page names a sink's results, which come from the stream, not from a dialect


async def _from_the_stream(app: web.Application, commands: Sequence[Command]) -> None:
    CURRENT_DIALECT.set(STREAM)  # in the consumer's task, as answered() does for an HTTP request
    await submit_commands(app, commands)


SAVED_OBJECTS = "cluster-objects.json"  # an edge's last known engines, in its spool directory


def make_cluster_app(config: Config, dialects: Sequence[Dialect]) -> web.Application:
    cluster = config.cluster
    assert cluster is not None
    name = f"naemon-bridge {cluster.role} {cluster.engine or ''} {socket.gethostname()}:{os.getpid()}"
    connection = ClusterConnection(cluster, name.replace("  ", " "))
    if cluster.role == "edge":
        app = make_app(config, dialects, transport=JetStreamTransport(connection))
        objects = ClusterObjects(connection, config.spool.directory / SAVED_OBJECTS)
        app[ENGINE_FILES] = objects
        live = app[CONFIG]
        router = EdgeRouter(app[DELIVERY], objects, lambda: live.current.engine.kind,
                            on_accepted=app[METRICS].accepted.inc)
        app[HUB] = router
        app[CLUSTER] = router.status

        async def edge_context(_: web.Application) -> AsyncIterator[None]:
            connection.start()
            objects.start()
            yield
            await objects.stop()
            await connection.close()

        # First in, last out: the delivery task drains into JetStream before the connection closes.
        app.cleanup_ctx.insert(0, edge_context)
    else:
        app = make_app(config, dialects)
        assert cluster.engine is not None
        consumer = SinkConsumer(connection, cluster.engine, app[DELIVERY], functools.partial(_from_the_stream, app),
                                app[ENGINE_FILES])
        app[CLUSTER] = consumer.status

        async def sink_context(_: web.Application) -> AsyncIterator[None]:
            connection.start()
            consumer.start()
            yield
            await consumer.stop()  # before the delivery task stops: what it handed over is acked or redelivered
            await connection.close()

        app.cleanup_ctx.append(sink_context)
        registry = app[METRICS].registry
        Gauge("naemon_bridge_cluster_stream_lag", "Messages for this sink's engine not yet taken from the stream",
              registry=registry).set_function(lambda: consumer.lag or 0)
        Gauge("naemon_bridge_cluster_pending_acks", "Messages taken from the stream, not yet acknowledged",
              registry=registry).set_function(lambda: consumer.pending_acks or 0)
    Gauge("naemon_bridge_cluster_connected", "1 while connected to JetStream", registry=app[METRICS].registry) \
        .set_function(lambda: 1 if connection.ready else 0)
    return app
