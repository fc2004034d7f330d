"""Running the application: bind, report the address, wait for SIGTERM/SIGINT, shut down cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import os
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

from bridge.config.model import Config, LogConfig
from bridge.daemon.preflight import SYSLOG_SOCKET
from bridge.daemon.systemd import Notifier
from bridge.daemon.workers import WorkerPool
from bridge.http.connections import Guard, GuardedSite, request_log
from bridge.http.keys import CLUSTER, DELIVERY, DIALECTS

log = logging.getLogger("naemon_bridge")
T = TypeVar("T")



class ReopenableFileHandler(logging.FileHandler):
    """A log file that SIGUSR1 reopens, so logrotate can move it away (its ``postrotate`` sends the signal)."""

    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
                self.stream = None  # FileHandler opens it again at the next record
        finally:
            self.release()


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop (libuv) when it is installed — the daemon's hot path is mostly the loop — else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on the event loop every command uses (serve, its workers, the demo)."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main)


def setup_logging(log: LogConfig) -> ReopenableFileHandler | None:
    """Log to stderr, syslog (facility daemon) or a file; returns the file handler so SIGUSR1 can reopen it."""
    handler: logging.Handler
    file_handler = None
    if log.target == "syslog":
        try:
            syslog = logging.handlers.SysLogHandler(SYSLOG_SOCKET, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        except OSError as exc:
            raise SystemExit(f"naemon-bridge: cannot log to syslog ({SYSLOG_SOCKET}): {exc.strerror or exc}") from None
        connected: socket.socket | None = getattr(syslog, "socket", None)
        if connected is None or connected.fileno() < 0:  # Python keeps it, dropping every record
            raise SystemExit(f"naemon-bridge: cannot log to syslog: nothing listens on {SYSLOG_SOCKET}")
        handler = syslog
        handler.setFormatter(logging.Formatter(f"naemon-bridge[{os.getpid()}]: %(levelname)s %(name)s: %(message)s"))
    elif log.target == "file" and log.file is not None:
        try:
            handler = file_handler = ReopenableFileHandler(log.file)
        except OSError as exc:
            raise SystemExit(f"naemon-bridge: cannot open the log file {log.file}: {exc.strerror or exc}") from None
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(log.level.upper())
    return file_handler


def tls_context(config: Config) -> ssl.SSLContext | None:
    """HTTPS with modern defaults (TLS 1.2 or later); client certificates required when tls_client_ca is set."""
    server = config.server
    if server.tls_cert is None or server.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(server.tls_cert, server.tls_key)
        if server.tls_client_ca is not None:
            context.load_verify_locations(server.tls_client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise SystemExit(f"naemon-bridge: {config.source}: server.tls_cert/tls_key: cannot load: {exc}") from None
    return context


def status_line(app: web.Application) -> str:
    """One line for systemd's STATUS=: is the engine reading, what waits in the spool."""
    if DELIVERY not in app:
        return "a worker: the hub delivers"
    health = app[DELIVERY].health()
    engine = "engine reading its pipe" if health.engine_reachable else "ENGINE NOT READING its pipe"
    if CLUSTER in app and app[CLUSTER]().get("role") == "edge":  # an edge's "engine" is JetStream
        engine = "JetStream taking results" if health.engine_reachable else "JETSTREAM NOT REACHABLE"
    return f"{engine}; spool: {health.spool_results} results, {health.spool_bytes} bytes"


async def _report(app: web.Application, notifier: Notifier) -> None:
    """WATCHDOG=1 from the event loop itself at half of WATCHDOG_USEC (a wedged loop stops the pings and systemd
    restarts the bridge), with the queue state as STATUS=; without a watchdog, only STATUS= every 5 s."""
    interval = notifier.watchdog_interval or 5.0
    while True:
        await asyncio.sleep(interval)
        if notifier.watchdog_interval:
            notifier.watchdog(status_line(app))
        else:
            notifier.status(status_line(app))


async def run(app: web.Application, config: Config, *,
              on_ready: Callable[[str], Awaitable[None] | None] | None = None,
              notifier: Notifier | None = None, reload: Callable[[], Awaitable[object]] | None = None,
              sock: socket.socket | None = None, on_usr1: Callable[[], None] | None = None,
              pool: WorkerPool | None = None) -> None:
    """Serve ``app`` until SIGTERM or SIGINT; ``on_ready`` gets the URL once the socket listens and the engine's
    pipe has been probed (systemd hears READY=1 then). SIGHUP runs ``reload``, SIGUSR1 ``on_usr1``. ``sock`` is a
    socket bound beforehand (daemon mode binds before detaching and dropping privileges).

    With ``pool`` this is the hub of ``[server] workers``: ``app`` is served on the hub's Unix socket only, the
    workers take the port; signals reach them too, and they stop before the hub does."""
    notifier = notifier or Notifier()
    runner = web.AppRunner(app, handle_signals=False, access_log=None, logger=request_log(),
                           shutdown_timeout=config.server.shutdown_timeout,
                           keepalive_timeout=config.server.keepalive_timeout)
    try:
        await runner.setup()  # opens the spool and probes the engine's pipe
    except OSError as exc:
        raise SystemExit(f"naemon-bridge: cannot start: {exc}") from None
    reporter: asyncio.Task[None] | None = None
    listeners = contextlib.AsyncExitStack()  # the dialects outside HTTP (NSCA), in the process that delivers
    try:
        context = tls_context(config)
        assert runner.server is not None
        guard = Guard(runner.server, header_timeout=config.server.header_timeout,
                      max_connections=config.server.max_connections)
        site: web.BaseSite
        if pool is not None:
            pool.hub.unlink(missing_ok=True)  # left by a hub that was killed
            site = web.UnixSite(runner, str(pool.hub))  # only its own workers reach it: no guard
        elif sock is not None:
            site = GuardedSite(runner, guard, sock=sock, ssl_context=context)
        else:
            site = GuardedSite(runner, guard, host=config.server.host, port=config.server.port,
                               ssl_context=context)
        try:
            await site.start()
        except OSError as exc:
            raise SystemExit(f"naemon-bridge: cannot listen on {config.server.listen}: {exc.strerror or exc}") \
                from None
        if pool is not None:
            os.chmod(pool.hub, 0o600)  # the workers run as the hub's user; nobody else may hand it commands
            await pool.start()
        if DELIVERY in app:
            for dialect in app[DIALECTS]:
                if dialect.listener is not None:
                    await listeners.enter_async_context(dialect.listener(app))
        host, port = pool.sockets[0].getsockname()[:2] if pool is not None else runner.addresses[0][:2]
        scheme = "https" if context is not None else "http"
        url = f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
        # SIGTERM is handled from before the "listening" line: whoever waits for that line may stop the bridge.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop_name = type(loop).__module__.split(".")[0]
        if DELIVERY not in app:
            log.info("worker %d listening on %s (the hub delivers; event loop: %s)", os.getpid(), url, loop_name)
        elif config.cluster is not None and config.cluster.role == "edge":
            log.info("listening on %s (a cluster edge: JetStream stream %s at %s; event loop: %s)", url,
                     config.cluster.stream, ", ".join(config.cluster.servers), loop_name)
        else:
            log.info("listening on %s (engine: %s, command file %s; event loop: %s%s)", url, config.engine.kind,
                     config.engine.command_file, loop_name,
                     f"; {len(pool.sockets)} workers" if pool is not None else "")
        if on_usr1 is not None or pool is not None:
            def on_user1() -> None:
                if on_usr1 is not None:
                    on_usr1()
                if pool is not None:
                    pool.signal(signal.SIGUSR1)

            loop.add_signal_handler(signal.SIGUSR1, on_user1)
        reloads: set[asyncio.Task[None]] = set()
        if reload is not None:
            async def reloading() -> None:
                notifier.notify("RELOADING=1", "STATUS=reloading the config")
                if pool is not None:
                    pool.signal(signal.SIGHUP)
                await reload()
                notifier.ready(f"listening on {url}; {status_line(app)}")

            def on_hangup() -> None:
                task = asyncio.create_task(reloading(), name="naemon-bridge reload")
                reloads.add(task)
                task.add_done_callback(reloads.discard)

            loop.add_signal_handler(signal.SIGHUP, on_hangup)
        notifier.ready(f"listening on {url}; {status_line(app)}")
        if notifier.enabled:
            reporter = asyncio.create_task(_report(app, notifier), name="naemon-bridge systemd status")
        if on_ready is not None:
            maybe = on_ready(url)
            if maybe is not None:
                await maybe
        await stop.wait()
        log.info("stopping: finishing requests in flight, then delivering or spooling what is queued")
        notifier.stopping()
        if pool is not None:
            await pool.stop(config.server.shutdown_timeout)
    finally:
        if reporter is not None:
            reporter.cancel()
        if pool is not None and not pool.stopped:  # a failed start: no worker outlives the hub
            await pool.stop(config.server.shutdown_timeout)
        await listeners.aclose()  # before the delivery task drains: what they hand over still goes
        await runner.cleanup()
        notifier.close()
    log.info("stopped")
