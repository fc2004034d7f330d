"""Client connections: a deadline for each request head, a bound on how many are open, and a malformed request
logged as one warning line.

aiohttp closes a keep-alive connection that stays idle for ``keepalive_timeout`` (a ``RequestHandler`` option,
``server.keepalive_timeout``), and the views read bodies within ``server.body_timeout`` (``bridge.bodies``), but
nothing bounds the time a request head takes: a client sending a byte every few seconds held its connection for
good, and a few hundred such clients held the process. ``Guard`` is the protocol factory of the listening sockets:
each connection is aiohttp's own ``RequestHandler`` behind a thin ``_Connection`` that

- closes the connection when a request head is not complete ``server.header_timeout`` seconds after its first
  byte (or after the connection opened, for the first one), and
- refuses a connection beyond ``server.max_connections`` at once: it gets a 503 (op5's error body, as nothing of
  the request is known yet) with ``Connection: close``, and is closed.

A request being handled (its body being read, its lines delivered) is under no head deadline.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import cast

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("naemon_bridge.http")

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class Guard:
    """Makes a ``_Connection`` per accepted socket, around a ``RequestHandler`` of ``server`` (the runner's)."""

    def __init__(self, server: web.Server, *, header_timeout: float, max_connections: int) -> None:
        self.server = server
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.open: dict[RequestHandler, _Connection] = {}
        self.refused = 0  # connections refused since the limit was last reached
        self.loop = asyncio.get_running_loop()
        handle = server.request_handler

        # Every RequestHandler takes the server's handler when it is made: wrapped here, before any connection,
        # it tells a connection when a request of its own is being handled.
        async def handling(request: web.BaseRequest) -> web.StreamResponse:
            connection = self.open.get(request.protocol)
            if connection is None:  # a connection this guard did not make (the hub's Unix socket)
                return await handle(request)
            connection.busy = True
            connection.deadline = None
            try:
                return await handle(request)
            finally:
                connection.busy = False
                connection.request = request

        server.request_handler = handling

    def __call__(self) -> _Connection:
        return _Connection(self)

    def admit(self, peer: str) -> bool:
        if len(self.open) < self.max_connections:
            return True
        if not self.refused:
            log.warning("server.max_connections (%d) are open: refusing new connections (first: %s)",
                        self.max_connections, peer)
        self.refused += 1
        return False

    def release(self, handler: RequestHandler) -> None:
        if self.open.pop(handler, None) is not None and self.refused:
            log.info("fewer than server.max_connections (%d) open again: %d connections were refused meanwhile",
                     self.max_connections, self.refused)
            self.refused = 0


_REFUSAL_BODY = orjson.dumps({"error": "Service Unavailable",
                              "full_error": "too many connections are open (server.max_connections); retry later"})
REFUSAL = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
           b"Connection: close\r\nContent-Length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n\r\n" + _REFUSAL_BODY)


class _Connection(asyncio.Protocol):
    """One client connection: aiohttp's ``RequestHandler`` does the HTTP; this only keeps the head deadline."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.handler: RequestHandler | None = None
        self.peer = "?"
        self.deadline: float | None = None  # by when the request head being received must be complete
        self.timer: asyncio.TimerHandle | None = None
        self.busy = False  # a request of this connection is being handled
        self.request: web.BaseRequest | None = None  # the last one handled

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else str(peer or "?")
        if not self.guard.admit(self.peer):
            cast(asyncio.Transport, transport).write(REFUSAL)
            transport.close()
            return
        self.handler = handler = self.guard.server()
        self.guard.open[handler] = self
        handler.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.handler is None:
            return
        # The first bytes of the next request start its head deadline; bytes of a body (the handler's, or one
        # aiohttp reads away after an early answer) do not.
        if self.deadline is None and not self.busy and (self.request is None or self.request.content.is_eof()):
            self._arm()
        self.handler.data_received(data)

    def eof_received(self) -> None:
        if self.handler is not None:
            self.handler.eof_received()  # None: the transport closes, as aiohttp has it

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.handler is not None:
            self.guard.release(self.handler)
            self.handler.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()

    def _arm(self) -> None:
        self.deadline = self.guard.loop.time() + self.guard.header_timeout
        if self.timer is None:  # one pending check at a time, moved on when it fires early (as aiohttp's keep-alive)
            self.timer = self.guard.loop.call_at(self.deadline, self._check)

    def _check(self) -> None:
        self.timer = None
        if self.deadline is None or self.busy or self.handler is None:
            return
        if self.guard.loop.time() < self.deadline:
            self.timer = self.guard.loop.call_at(self.deadline, self._check)
            return
        log.debug("closing the connection from %s: no complete request head within %g s (server.header_timeout)",
                  self.peer, self.guard.header_timeout)
        self.handler.force_close()


class GuardedSite(web.BaseSite):
    """A listening TCP socket (given, or bound to ``host``:``port``) whose connections ``guard`` makes."""

    def __init__(self, runner: web.BaseRunner, guard: Guard, *, host: str | None = None, port: int | None = None,
                 sock: socket.socket | None = None, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self.guard, self.host, self.port, self.sock = guard, host, port, sock

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}" if self.sock is None else f"{scheme}://{self.sock.getsockname()}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        # A TLS handshake is part of the head: it gets the same time.
        handshake = self.guard.header_timeout if self._ssl_context is not None else None
        if self.sock is not None:
            self._server = await loop.create_server(self.guard, sock=self.sock, backlog=self._backlog,
                                                    ssl=self._ssl_context, ssl_handshake_timeout=handshake)
        else:
            self._server = await loop.create_server(self.guard, self.host, self.port or 0, backlog=self._backlog,
                                                    ssl=self._ssl_context, ssl_handshake_timeout=handshake)


class _OneLineForBadRequests(logging.Filter):
    """aiohttp logs a malformed request (``BadHttpMessage`` and kin) as an ERROR with its traceback: anyone who can
    reach the port could fill the log with them. Such a record becomes one WARNING line with the address and the
    reason; every other record passes as it is."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        cause = exc.__cause__ if isinstance(exc, web.RequestPayloadError) else exc
        if not isinstance(cause, HttpProcessingError):
            return True
        address = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        if record.levelno > logging.WARNING:
            if not logging.getLogger(record.name).isEnabledFor(logging.WARNING):
                return False
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.msg = "bad HTTP request from %s: %s"
        record.args = (address, " ".join(str(cause.message).split()) or type(cause).__name__)
        record.exc_info = record.exc_text = None
        return True


def request_log() -> logging.Logger:
    """The logger for aiohttp's ``RequestHandler`` (its ``logger`` option), with malformed requests on one line."""
    logger = logging.getLogger("naemon_bridge.http.server")
    if not any(isinstance(f, _OneLineForBadRequests) for f in logger.filters):
        logger.addFilter(_OneLineForBadRequests())
    return logger
