"""The cluster roles' way to NATS JetStream (``[cluster]``): one connection per process, the edge's transport
(publish, answer after JetStream's ack), the sink's consumer (ack only once the lines are in the pipe) and the
engines' objects in a key-value bucket.

The edge runs today's delivery task with a JetStream transport in place of the pipe: so while JetStream cannot be
reached (or refuses: the stream is full) its lines go to the edge's spool, and the spool drains into JetStream in
order when it returns — the same code, the same promise as beside an engine. Each message carries an id
(``Nats-Msg-Id``): a publish that timed out but was stored after all, then sent again from the spool, is stored once
(within the stream's duplicate window).
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from bridge.config.model import ClusterConfig
from bridge.core.commands import engine_lines
from bridge.core.errors import EngineRefused, EngineUnavailable, InvalidInput
from bridge.core.objects import KnownObjects
from bridge.core.routing import (
    decode_commands,
    decode_message,
    decode_objects,
    encode_message,
    encode_objects,
    merged,
    objects_bucket,
    route,
    subject,
)
from bridge.core.values import Command, EngineKind
from bridge.engine.delivery import Delivery
from bridge.engine.files import EngineFiles
from bridge.engine.transport import PipeUnavailable, Written

log = logging.getLogger("naemon_bridge.cluster")

DUPLICATE_WINDOW = 20 * 60.0  # seconds JetStream remembers message ids: longer than a publish can be in doubt
RECONNECT_WAIT = 0.5  # seconds between tries of the servers while none answers
OBJECTS_INTERVAL = 1.0  # seconds between looks at the objects (a sink: its objects.cache; an edge: the bucket)
FETCH_BATCH = 512  # messages a sink takes at once
ACK_WAIT = 10.0  # seconds JetStream waits for a sink's ack before it delivers the message again (a submit
# returns within engine.busy_wait and a spool write)


class ClusterConnection:
    """One NATS connection, made in the background and kept (NATS reconnects by itself); the stream and the
    bucket are created when missing. ``ready`` is true once JetStream answered; ``problem`` says why not."""

    def __init__(self, config: ClusterConfig, name: str) -> None:
        self.config = config
        self.name = name
        self.client: Client | None = None
        self.js: JetStreamContext | None = None
        self.kv: KeyValue | None = None
        self.problem: str = "not connected yet"
        self.connected_url: str | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.client is not None and self.client.is_connected

    async def wait_ready(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return self.ready

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="naemon-bridge cluster connect")
        self._task.add_done_callback(_log_failure)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.client is not None:
            try:
                await self.client.close()
            except Exception as exc:  # closing a connection that is gone: nothing is lost, say it and go on
                log.debug("closing the NATS connection: %s", exc)

    def _tls(self) -> ssl.SSLContext | None:
        config = self.config
        if config.tls_ca is None and config.tls_cert is None and not any(s.startswith("tls://")
                                                                         for s in config.servers):
            return None
        context = ssl.create_default_context(cafile=str(config.tls_ca) if config.tls_ca else None)
        if config.tls_cert is not None and config.tls_key is not None:
            context.load_cert_chain(config.tls_cert, config.tls_key)
        return context

    async def _connect(self) -> None:
        config = self.config

        async def disconnected() -> None:
            self.problem = "the connection to the NATS servers is lost; reconnecting"
            log.warning("cluster: disconnected from %s", self.connected_url)

        async def reconnected() -> None:
            self.connected_url = _url(self.client)
            log.info("cluster: reconnected to %s", self.connected_url)

        async def error(exc: Exception) -> None:
            # nats-py retries by itself (a refused login too) and tells only here: /health must say why.
            problem = f"the NATS server refuses or fails: {exc or type(exc).__name__}"
            if not self.ready and problem != self.problem:
                log.warning("cluster: %s", problem)
                self.problem = problem
            log.debug("cluster: %s", exc)

        while self.client is None:
            try:
                self.client = await nats.connect(
                    servers=list(config.servers), name=self.name, allow_reconnect=True, max_reconnect_attempts=-1,
                    reconnect_time_wait=RECONNECT_WAIT, connect_timeout=2, tls=self._tls(),
                    user=config.user, password=config.password, token=config.token,
                    user_credentials=str(config.credentials) if config.credentials else None,
                    disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error)
            except (OSError, nats.errors.Error, TimeoutError) as exc:
                self.problem = f"no NATS server answers ({', '.join(config.servers)}): {exc or type(exc).__name__}"
                log.debug("cluster: %s", self.problem)
                await asyncio.sleep(RECONNECT_WAIT)
        self.connected_url = _url(self.client)
        self.js = self.client.jetstream(timeout=config.publish_timeout)
        while True:
            try:
                await self._ensure_stream(self.js)
                self.kv = await self._bucket(self.js)
                break
            except (nats.errors.Error, TimeoutError) as exc:
                problem = f"JetStream refuses the stream or its bucket: {exc or type(exc).__name__}"
                if problem != self.problem:  # once per distinct reason, not every half second
                    log.warning("cluster: %s", problem)
                self.problem = problem
                await asyncio.sleep(RECONNECT_WAIT)
        log.info("cluster: connected to %s, stream %s", self.connected_url, config.stream)
        self._ready.set()

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        config = self.config
        try:
            await js.stream_info(config.stream)
            return
        except nats.js.errors.NotFoundError:
            pass
        # A work queue: a message is removed once its engine's sink acknowledged it; full, it refuses new ones
        # (the edge spools them) rather than drop what no sink has taken.
        await js.add_stream(StreamConfig(
            name=config.stream, subjects=[f"{config.stream}.*"], retention=RetentionPolicy.WORK_QUEUE,
            discard=DiscardPolicy.NEW, storage=StorageType.FILE, num_replicas=config.replicas,
            max_age=config.max_age, max_bytes=config.max_bytes,
            duplicate_window=min(DUPLICATE_WINDOW, config.max_age)))  # JetStream: no longer than max_age
        log.info("cluster: created stream %s (%d replicas)", config.stream, config.replicas)

    async def _bucket(self, js: JetStreamContext) -> KeyValue:
        bucket = objects_bucket(self.config.stream)
        try:
            return await js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            return await js.create_key_value(bucket=bucket, history=1, replicas=self.config.replicas)

    def status(self) -> dict[str, object]:
        return {"connected": self.ready, "server": self.connected_url if self.ready else None,
                "problem": None if self.ready else self.problem, "stream": self.config.stream}


def _log_failure(task: asyncio.Task[None]) -> None:
    """A background task that ended by an exception (a bug): the log says so, rather than nothing."""
    if not task.cancelled() and task.exception() is not None:
        log.error("cluster: %s failed", task.get_name(), exc_info=task.exception())


def _url(client: Client | None) -> str | None:
    server = client.connected_url if client is not None else None
    return f"nats://{server.hostname}:{server.port}" if server is not None else None


class JetStreamTransport:
    """The edge's transport for today's delivery task: each line is one message (``bridge.core.routing``),
    published to its engine's subject; a line is taken once JetStream acknowledged it."""

    unfinished = False  # a message is stored whole or not at all
    stopped_text = "JetStream stopped taking results"  # an edge has no pipe of its own
    resumed_text = "JetStream takes results again"

    def __init__(self, connection: ClusterConnection) -> None:
        self.connection = connection
        self.path = Path(f"nats:{connection.config.stream}")
        self.published = 0

    async def write(self, lines: Sequence[bytes]) -> Written:
        js = self.connection.js
        if not self.connection.ready or js is None:
            return Written([False] * len(lines), stopped=PipeUnavailable(self.connection.problem, down=True))
        stream = self.connection.config.stream

        async def publish(line: bytes) -> None:
            engine, message_id, body = decode_message(line)
            await js.publish(subject(stream, engine), body, stream=stream, headers={"Nats-Msg-Id": message_id})

        # Published together (one connection keeps their order), the first alone: it may set up the reply
        # subscription, and the others must not overtake it.
        results: list[BaseException | None] = []
        if lines:
            try:
                await publish(lines[0])
                results.append(None)
            except Exception as exc:
                results.append(exc)
        if len(lines) > 1 and results[0] is None:
            results += await asyncio.gather(*(publish(line) for line in lines[1:]), return_exceptions=True)
        results += [EngineUnavailable("not sent")] * (len(lines) - len(results))
        taken = [result is None for result in results]
        self.published += sum(taken)
        failed = next((r for r in results if r is not None), None)
        if failed is None:
            return Written(taken, accepted=True)
        if isinstance(failed, asyncio.CancelledError):
            raise failed
        reason = f"JetStream did not acknowledge: {failed or type(failed).__name__}"
        return Written(taken, stopped=PipeUnavailable(reason, down=True), accepted=any(taken))

    def probe(self) -> str | None:
        return None if self.connection.ready else self.connection.problem

    async def wait_ready(self, timeout: float) -> None:
        await self.connection.wait_ready(timeout)

    def retarget(self, path: Path) -> None:
        """The pipe's path has no meaning here (a reload of [engine] command_file)."""

    def close(self) -> None:
        """The connection is closed with the application, after the delivery task."""


class ClusterObjects(EngineFiles):
    """An edge's view of the engines: each sink's objects from the key-value bucket, merged for the name check
    (``objects()``), kept per engine for routing (``engines``). Nothing until some sink published, or until what
    the last run learnt is read back from ``saved``."""

    def __init__(self, connection: ClusterConnection, saved: Path | None = None) -> None:
        super().__init__(None, None)
        self.connection = connection
        self.saved = saved  # the last objects learnt, on disk: an edge restarted while the cluster is away routes
        self.engines: dict[str, KnownObjects] = {}
        self._merged: KnownObjects | None = None
        self._revisions: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def update(self, objects_cache: Path | None, status_file: Path | None) -> None:
        """An edge has no engine files of its own (a reload's [engine] paths do not apply)."""

    async def objects(self) -> KnownObjects | None:
        return self._merged

    def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="naemon-bridge cluster objects")
        self._task.add_done_callback(_log_failure)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def refresh(self) -> None:
        kv = self.connection.kv
        if kv is None or not self.connection.ready:
            return
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            keys = []
        changed = False
        for key in keys:
            entry = await kv.get(key)
            if entry.value is None or self._revisions.get(key) == entry.revision:
                continue
            try:
                self.engines[key] = decode_objects(entry.value)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("cluster: the objects engine %s published cannot be read: %s", key, exc)
                continue
            self._revisions[key] = entry.revision or 0
            changed = True
            log.info("cluster: engine %s has %d hosts, %d services", key, len(self.engines[key].hosts),
                     len(self.engines[key].services))
        if changed:
            self._merged = merged(self.engines)
            if self.saved is not None:
                await asyncio.to_thread(self._save, {e: encode_objects(o) for e, o in self.engines.items()})

    def _save(self, engines: dict[str, bytes]) -> None:
        assert self.saved is not None
        temporary = self.saved.with_suffix(".tmp")
        try:
            temporary.write_bytes(orjson.dumps({engine: orjson.loads(data) for engine, data in engines.items()}))
            os.replace(temporary, self.saved)
        except OSError as exc:  # routing goes on from memory; only a restart during an outage would miss it
            log.warning("cluster: cannot save the engines' objects in %s: %s", self.saved, exc.strerror or exc)

    def _load(self) -> None:
        if self.saved is None or not self.saved.exists():
            return
        try:
            saved = orjson.loads(self.saved.read_bytes())
            self.engines = {engine: decode_objects(orjson.dumps(data)) for engine, data in saved.items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("cluster: the saved objects in %s cannot be read (%s): waiting for the sinks'", self.saved,
                        exc)
            return
        self._merged = merged(self.engines)
        log.info("cluster: routing by the objects saved in %s (%s) until the sinks' arrive", self.saved,
                 ", ".join(sorted(self.engines)))

    async def _follow(self) -> None:
        await asyncio.to_thread(self._load)
        await self.connection.wait_ready()
        while True:
            try:
                await self.refresh()
            except (nats.errors.Error, TimeoutError) as exc:  # the cluster is away: the last known objects stay
                log.debug("cluster: cannot read the objects bucket: %s", exc)
            except Exception:  # a bug: said loudly; routing goes on with the last known objects
                log.exception("cluster: reading the objects bucket failed")
            await asyncio.sleep(OBJECTS_INTERVAL)


class EdgeRouter:
    """An edge's way in (the application's hub): check the lines as the [engine] kind says, route each command to
    the engine that has its object, and hand one message per engine to the delivery task (JetStream, or the
    spool while it is away). A request's commands keep their order within each engine's message."""

    def __init__(self, delivery: Delivery, objects: ClusterObjects, kind: Callable[[], EngineKind],
                 on_accepted: Callable[[int], object] = lambda count: None) -> None:
        self.delivery = delivery
        self.objects = objects
        self.kind = kind
        self.on_accepted = on_accepted

    async def submit(self, commands: Sequence[Command]) -> None:
        engine_lines(commands, self.kind(), query_handler=False)  # refuses what the engine could not take
        if not self.objects.engines:
            raise EngineUnavailable("no engine is known yet (no sink has published its objects): retry later")
        groups = route(commands, self.objects.engines)
        if not groups:
            raise EngineUnavailable("no engine has the objects these commands name")
        await self.delivery.submit([encode_message(engine, uuid.uuid4().hex, group) for engine, group in groups])
        self.on_accepted(len(commands))

    def status(self) -> dict[str, object]:
        connection = self.objects.connection
        return {"role": "edge", "engines": sorted(self.objects.engines),
                "published": getattr(self.delivery.transport, "published", None), **connection.status()}


class SinkConsumer:
    """A sink: takes its engine's messages from the stream (a durable consumer) and hands their commands to
    ``submit`` (today's path into the delivery task and the freshness table), acknowledging each once that
    returned (its lines are in the pipe, or on disk in the spool should the engine stop mid-batch). While the
    engine does not read, it takes nothing: the results wait in the stream. Publishes the engine's objects."""

    def __init__(self, connection: ClusterConnection, engine: str, delivery: Delivery,
                 submit: Callable[[Sequence[Command]], Awaitable[None]], files: EngineFiles) -> None:
        self.connection = connection
        self.engine = engine
        self.delivery = delivery
        self.submit = submit
        self.files = files
        self.durable = f"sink-{engine}"
        self.taken = 0
        self.lag: int | None = None  # messages for this engine not yet delivered to the sink
        self.pending_acks: int | None = None  # delivered to the sink, not yet acknowledged
        self.redelivered = 0
        self.holding_back: str | None = None  # why it takes nothing now
        self._published: KnownObjects | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._consume(), name="naemon-bridge sink consumer"),
                       asyncio.create_task(self._publish_objects(), name="naemon-bridge sink objects")]
        for task in self._tasks:
            task.add_done_callback(_log_failure)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def status(self) -> dict[str, object]:
        return {"role": "sink", "engine": self.engine, "consumer": self.durable, "stream_lag": self.lag,
                "pending_acks": self.pending_acks, "taken": self.taken, "redelivered": self.redelivered,
                "holding_back": self.holding_back, **self.connection.status()}

    async def _consume(self) -> None:
        connection = self.connection
        while True:
            await connection.wait_ready()
            js = connection.js
            assert js is not None
            pull: JetStreamContext.PullSubscription | None = None
            try:
                pull = await js.pull_subscribe(
                    subject(connection.config.stream, self.engine), durable=self.durable,
                    stream=connection.config.stream,
                    config=ConsumerConfig(ack_wait=ACK_WAIT, max_ack_pending=FETCH_BATCH * 8))
                await self._drain(js, pull)
            except (nats.errors.Error, TimeoutError) as exc:
                log.warning("cluster: the consumer %s stopped (%s); taking it up again", self.durable, exc)
            except Exception:  # a bug: said loudly; the consumer must not stay dead (what it took is redelivered)
                log.exception("cluster: the consumer %s failed; taking it up again", self.durable)
            finally:
                if pull is not None:
                    try:
                        await pull.unsubscribe()
                    except (nats.errors.Error, TimeoutError):  # the connection is gone: so is the subscription
                        pass
            await asyncio.sleep(RECONNECT_WAIT)

    async def _drain(self, js: JetStreamContext, pull: JetStreamContext.PullSubscription) -> None:
        last_info = 0.0
        while True:
            if time.monotonic() - last_info > 1.0:
                last_info = time.monotonic()
                info = await pull.consumer_info()
                self.lag, self.pending_acks = info.num_pending, info.num_ack_pending
            health = self.delivery.health()
            if not health.engine_reachable or health.spool_results:
                self.holding_back = health.engine_problem or "the spool drains first"
                await asyncio.sleep(0.2)  # the delivery task probes the engine; the stream keeps the results
                continue
            self.holding_back = None
            try:
                messages = await pull.fetch(FETCH_BATCH, timeout=1.0)
            except TimeoutError:  # nothing for this engine
                continue
            # Handed over together in the stream's order (the delivery task keeps it), each acked when it is in.
            await asyncio.gather(*(self._handle(message) for message in messages))

    async def _handle(self, message: Msg) -> None:
        metadata = message.metadata
        if metadata.num_delivered and metadata.num_delivered > 1:
            self.redelivered += 1
        try:
            commands = decode_commands(message.data)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("cluster: a message for %s cannot be read, dropped: %s", self.engine, exc)
            await message.term()
            return
        try:
            await self.submit(commands)
        except InvalidInput as exc:  # this engine cannot take it (the edge checked as its [engine] kind says)
            log.error("cluster: a message for %s refused, dropped: %s", self.engine, exc)
            await message.term()
            return
        except EngineRefused as exc:  # the engine has dealt with it: refused lines are not tried again
            log.error("cluster: %s", "; ".join(exc.reasons))
        except EngineUnavailable as exc:  # neither pipe nor spool took it: JetStream keeps it for later
            log.warning("cluster: not taken now (%s); JetStream delivers it again", exc)
            await message.nak(delay=1.0)
            return
        self.taken += len(commands)
        await message.ack()

    async def _publish_objects(self) -> None:
        while True:
            await self.connection.wait_ready()
            objects = await self.files.objects()
            kv = self.connection.kv
            if objects is not None and objects is not self._published and kv is not None:
                try:
                    await kv.put(self.engine, encode_objects(objects))
                    self._published = objects
                    log.info("cluster: published %d hosts and %d services of engine %s", len(objects.hosts),
                             len(objects.services), self.engine)
                except (nats.errors.Error, TimeoutError) as exc:
                    log.warning("cluster: cannot publish the objects of %s: %s", self.engine, exc)
                except Exception:  # a bug: said loudly; tried again at the next look
                    log.exception("cluster: publishing the objects of %s failed", self.engine)
            await asyncio.sleep(OBJECTS_INTERVAL)
