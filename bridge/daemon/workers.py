"""``[server] workers = N``: N processes take HTTP on one port; one process, the hub, owns delivery.

The hub is the process ``serve`` started: a complete bridge (the delivery task, the one spool, the freshness table,
the metrics) that serves HTTP only on a Unix socket in the spool directory, never on the network. It spawns the
workers: each gets its own listening socket on the configured port (SO_REUSEPORT, bound by the hub before it
dropped privileges), so the kernel spreads connections across them.

A worker does the work that scales with cores for op5's ``POST /api/command/<COMMAND>`` and ``POST /api/results``
(authentication, JSON, validation, permissions, known objects) and hands the validated commands to the hub, which
renders, delivers and records them exactly as a single process does. Every other request a worker forwards whole
to the hub. So everything a single process promises holds unchanged: one writer, one spool, one order — a result
answered before another is sent reaches the hub first — and one freshness table.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import hdrs, web
from multidict import CIMultiDict

from bridge.config.model import Config, ConfigError, load_config
from bridge.core.command_table import COMMANDS
from bridge.core.errors import EngineRefused, EngineUnavailable, InvalidInput, SpoolFull
from bridge.core.values import Command
from bridge.daemon.reload import apply_request_side
from bridge.http.app import request_side
from bridge.http.bodies import read_body
from bridge.http.dialects import Dialect, View, answered, dialect_for
from bridge.http.keys import HUB, METRICS
from bridge.http.metrics import Metrics, WorkerMetrics, apply_pending
from bridge.http.submission import submit_commands

log = logging.getLogger("naemon_bridge.workers")

HUB_SOCKET = "hub.sock"  # HTTP, in the spool directory, which only the bridge's user may enter
COMMANDS_SOCKET = "hub-commands.sock"  # beside it: the workers' commands
RESTART_DELAY = 1.0  # seconds before a worker that died is started again
METRICS_FLUSH_INTERVAL = 1.0  # seconds at most before a quiet worker's counts reach the hub


def hub_socket(config: Config) -> Path:
    return config.spool.directory / HUB_SOCKET


def commands_socket(hub: Path) -> Path:
    return hub.with_name(COMMANDS_SOCKET)


# -- the hub's side ----------------------------------------------------------------------------------------------

async def serve_commands(app: web.Application, path: Path) -> asyncio.AbstractServer:
    """The hub's commands socket: each worker keeps one connection and sends one line of JSON per batch (its
    ``requests``, each a list of commands, and the refusals and request times it counted since the last); the
    answer is one line with one result per request, in order.

    A raw stream rather than HTTP: measured, an HTTP round trip per batch made the hub the bottleneck."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                frame = orjson.loads(line)
                apply_pending(app[METRICS], frame)
                answers = await _submit_batch(app, frame["requests"])
                writer.write(orjson.dumps(answers) + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:  # a bug: the worker answers 503 for what it sent and opens a new connection
            log.exception("the hub could not handle a worker's batch")
        finally:
            writer.close()

    path.unlink(missing_ok=True)  # left by a hub that was killed
    server = await asyncio.start_unix_server(connection, path=str(path), limit=1 << 26)
    os.chmod(path, 0o600)  # the workers run as the hub's user; nobody else may hand it commands
    return server


async def _submit_batch(app: web.Application, batch: list[list[tuple[str, list[str], int]]]) -> list[dict[str, object]]:
    async def one(commands: list[tuple[str, list[str], int]]) -> dict[str, object]:
        values = [Command(COMMANDS[name], tuple(fields), stamp) for name, fields, stamp in commands]
        try:
            await submit_commands(app, values)
        except (InvalidInput, EngineUnavailable, EngineRefused) as exc:
            return _error_answer(exc)
        return {}

    # gather starts them in order, and each hands its lines to the delivery task before it first waits.
    return list(await asyncio.gather(*(one(commands) for commands in batch)))


# How the hub's refusals travel to the worker that answers the client: one place for both directions.
def _error_answer(exc: InvalidInput | EngineUnavailable | EngineRefused) -> dict[str, object]:
    if isinstance(exc, InvalidInput):  # e.g. a value the configured engine would cut short
        return {"error": "invalid", "field": exc.field, "message": exc.message}
    if isinstance(exc, SpoolFull):
        return {"error": "spool_full", "message": str(exc)}
    if isinstance(exc, EngineUnavailable):
        return {"error": "unavailable", "message": str(exc)}
    return {"error": "refused", "reasons": exc.reasons}


def _raise_answer(answer: dict[str, Any]) -> None:
    error = answer.get("error")
    if error == "invalid":
        raise InvalidInput(answer["field"], answer["message"])
    if error == "spool_full":
        raise SpoolFull(answer["message"])
    if error == "unavailable":
        raise EngineUnavailable(answer["message"])
    if error == "refused":
        raise EngineRefused(list(answer["reasons"]))


class WorkerPool:
    """The hub's workers: started once the hub serves, restarted when one dies, stopped before the hub stops."""

    def __init__(self, app: web.Application, config_path: Path, sockets: Sequence[socket.socket],
                 hub: Path) -> None:
        self.app = app
        self.config_path = config_path
        self.sockets = list(sockets)
        self.hub = hub
        self.processes: list[asyncio.subprocess.Process | None] = [None] * len(self.sockets)
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await serve_commands(self.app, commands_socket(self.hub))
        for index in range(len(self.sockets)):
            await self._spawn(index)
            self._watchers.append(asyncio.create_task(self._watch(index), name=f"naemon-bridge worker {index}"))

    async def _spawn(self, index: int) -> None:
        fd = self.sockets[index].fileno()
        env = {key: value for key, value in os.environ.items() if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC",
                                                                                "WATCHDOG_PID", "LISTEN_FDS")}
        self.processes[index] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge", "serve", "--config", str(self.config_path), "--worker-fd", str(fd),
            "--hub", str(self.hub), "--hub-pid", str(os.getpid()), pass_fds=(fd,), env=env)
        log.info("worker %d started (pid %d)", index, self.processes[index].pid)  # type: ignore[union-attr]

    async def _watch(self, index: int) -> None:
        while True:
            process = self.processes[index]
            assert process is not None
            code = await process.wait()
            if self._stopping:
                return
            log.error("worker %d (pid %d) exited with %s; starting it again in %.0f s", index, process.pid, code,
                      RESTART_DELAY)
            await asyncio.sleep(RESTART_DELAY)
            if self._stopping:
                return
            await self._spawn(index)

    def signal(self, signum: int) -> None:
        for process in self.processes:
            if process is not None and process.returncode is None:
                process.send_signal(signum)

    @property
    def stopped(self) -> bool:
        return self._stopping

    async def stop(self, timeout: float) -> None:
        """SIGTERM every worker (each finishes its requests, handing their commands to the hub, still running),
        and wait for them; SIGKILL what is left after ``timeout`` s."""
        self._stopping = True
        self.signal(signal.SIGTERM)
        waits = [p.wait() for p in self.processes if p is not None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        except TimeoutError:
            log.error("workers did not stop within %s s: killing them", timeout)
            self.signal(signal.SIGKILL)
            await asyncio.gather(*(p.wait() for p in self.processes if p is not None))
        for watcher in self._watchers:
            watcher.cancel()
        for sock in self.sockets:
            sock.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


# -- a worker's side ---------------------------------------------------------------------------------------------

class HubClient:
    """A worker's way to the hub: commands of concurrent requests go in one batch, one batch in flight at a time
    on one connection, so they reach the hub in the order the worker took them. ``session`` carries the requests
    a worker forwards whole."""

    def __init__(self, hub: Path, metrics: WorkerMetrics, hub_pid: int) -> None:
        self.hub = hub
        self.metrics = metrics
        self._hub_pid = hub_pid
        self._session: aiohttp.ClientSession | None = None
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._waiting: deque[tuple[list[list[object]], asyncio.Future[dict[str, Any]]]] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No cookie jar: one session carries every client's requests, and a cookie the hub sets for one client
            # (a login session) must go back to that client only, never along with the next one's requests.
            self._session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(self.hub)),
                                                  timeout=aiohttp.ClientTimeout(total=None),
                                                  cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="naemon-bridge hub client")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._stream is not None:
            self._stream[1].close()
        if self._session is not None:
            await self._session.close()

    async def submit(self, commands: Sequence[Command]) -> None:
        """Return once the hub has every command in the engine's pipe or its spool; raise as the hub did."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append(([[c.spec.name, list(c.fields), c.timestamp] for c in commands], future))
        self._wakeup.set()
        _raise_answer(await future)

    async def _exchange(self, frame: bytes) -> list[dict[str, Any]]:
        if self._stream is None:
            self._stream = await asyncio.open_unix_connection(str(commands_socket(self.hub)), limit=1 << 26)
        reader, writer = self._stream
        try:
            writer.write(frame)
            await writer.drain()
            line = await reader.readline()
            if not line:
                raise ConnectionError("the hub closed the connection")
            return orjson.loads(line)
        except BaseException:
            writer.close()
            self._stream = None
            raise

    async def _run(self) -> None:
        while True:
            try:  # without traffic, what the worker counted still reaches the hub within a second
                await asyncio.wait_for(self._wakeup.wait(), METRICS_FLUSH_INTERVAL)
            except TimeoutError:
                pass
            if os.getppid() != self._hub_pid:  # the hub is gone (killed): a worker alone must not hold the port
                log.error("the hub (pid %d) is gone: this worker stops", self._hub_pid)
                os.kill(os.getpid(), signal.SIGTERM)
            self._wakeup.clear()
            items = list(self._waiting)
            self._waiting.clear()
            pending = self.metrics.take_pending()
            if not items and pending is None:
                continue
            frame = {"requests": [commands for commands, _ in items], **(pending or {})}
            try:
                answers = await self._exchange(orjson.dumps(frame) + b"\n")
                if len(answers) != len(items):
                    raise ValueError(f"{len(answers)} answers for {len(items)} requests")
            except Exception as exc:  # this task must outlive anything, or every later request would hang
                # Not knowing whether the hub took them, the worker answers 503: the client retries (at least once).
                log.error("cannot reach the hub at %s: %s", commands_socket(self.hub), exc)
                failure = EngineUnavailable("the bridge's delivery process is not reachable; retry later")
                for _, future in items:
                    if not future.done():
                        future.set_exception(failure)
                continue
            for (_, future), answer in zip(items, answers, strict=True):
                if not future.done():
                    future.set_result(answer)


# (content-encoding too: the body a worker forwards is the one it read, already decompressed)
_HOP_HEADERS = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "content-length", "date",
                          "server", "x-forwarded-for", "x-forwarded-proto", "content-encoding"})


async def _forward(client: HubClient, request: web.Request) -> web.StreamResponse:
    """Anything a worker does not answer itself goes to the hub whole, and its answer comes back whole. The
    client's address goes along (X-Forwarded-For, set here only), for the hub's failed-login throttle, and its
    scheme (X-Forwarded-Proto, set here only), for the session cookie's Secure."""
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS]
    headers.append((hdrs.X_FORWARDED_FOR, request.remote or ""))
    headers.append((hdrs.X_FORWARDED_PROTO, request.scheme))  # a session cookie is Secure under TLS
    try:
        async with client.session.request(request.method, f"http://hub{request.path_qs}", headers=headers,
                                          data=await read_body(request), allow_redirects=False) as answer:
            body = await answer.read()
            kept = CIMultiDict((k, v) for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS)
            return web.Response(body=body, status=answer.status, headers=kept)
    except (aiohttp.ClientError, OSError) as exc:
        raise EngineUnavailable(f"the bridge's delivery process is not reachable ({exc}); retry later") from None


async def reload_worker(app: web.Application, path: Path | str) -> None:
    """SIGHUP in a worker (the hub passes it on): users, limits, engine files and the log level from ``path``."""
    try:
        new = await asyncio.to_thread(load_config, path)
    except ConfigError as exc:
        log.error("worker reload failed, the running config stays in force: %s", exc)
        return
    apply_request_side(app, new)


def make_worker_app(config: Config, hub: Path, hub_pid: int, dialects: Sequence[Dialect]) -> web.Application:
    """A worker: each dialect's worker routes answered here, everything else forwarded to the hub."""
    metrics = WorkerMetrics()
    app = request_side(config, metrics, time.time, dialects)
    client = HubClient(hub, metrics, hub_pid)
    app[HUB] = client

    async def hub_context(_: web.Application) -> AsyncIterator[None]:
        await client.start()
        yield
        await client.stop()

    app.cleanup_ctx.append(hub_context)
    for dialect in dialects:
        for route in dialect.worker_routes:
            app.router.add_route(route.method, route.path, answered(route.view, dialect, metrics))
    app.router.add_route("*", "/{tail:.*}", _forwarding(client, metrics, dialects))
    return app


def _forwarding(client: HubClient, metrics: Metrics, dialects: Sequence[Dialect]) -> View:
    """The forwarding view. Not timed here (the hub times and counts what it answers); what fails here — the hub
    out of reach, a body too large — is answered and counted here, in the caller's dialect."""
    forward = functools.partial(_forward, client)
    by_dialect = {d.name: answered(forward, d, metrics, timed=False) for d in dialects}

    async def view(request: web.Request) -> web.StreamResponse:
        return await by_dialect[dialect_for(request.path, dialects).name](request)

    return view
