"""The classic NSCA 2.x protocol on TCP (``[nsca]``), so that every existing ``send_nsca`` keeps working: the
listener sends each connection its init packet (a fresh random IV and the time), reads data packets, decrypts and
checks them (``bridge.core.nsca``) and hands each result to the same path the HTTP dialects use — the same
validation, the permissions of the configured user, the same delivery and spool, freshness and metrics.

NSCA has no answer channel (send_nsca says "sent successfully" whatever happens), so every refusal is counted in
``naemon_bridge_nsca_dropped{reason}`` and logged: a packet that fails its version or CRC check (a wrong password
or method) closes the connection, as nsca does; a result the bridge refuses (unknown host, not permitted, not
valid) is dropped alone and the connection goes on. Unknown names are logged once per name and minute.

The listener runs in the process that delivers (the hub of ``[server] workers``): its work is a few
microseconds of decryption a result, nothing like the HTTP parsing the workers share out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from aiohttp import web

from bridge.config.model import NscaConfig
from bridge.core import nsca
from bridge.core.errors import BridgeError, InvalidInput, UnknownObject
from bridge.core.values import CheckResult, HostState, ServiceState
from bridge.http.credentials import Principal
from bridge.http.dialects import ApiDescription, Dialect
from bridge.http.keys import CLOCK, CONFIG, METRICS
from bridge.http.metrics import Metrics, refusal_reason
from bridge.http.submission import admit, submit_commands

log = logging.getLogger("naemon_bridge.nsca")

NAME = "nsca"
LOG_EVERY = 60.0  # seconds: one line per unknown name (or refused address) and minute, not one a packet
_MAX_REMEMBERED = 10_000  # names remembered for that; beyond, the memory starts again


class _Quiet:
    """Says whether to log about ``key`` now: once per key and LOG_EVERY seconds."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def due(self, key: str, now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < LOG_EVERY:
            return False
        if len(self._last) >= _MAX_REMEMBERED:
            self._last.clear()
        self._last[key] = now
        return True


def _state(packet: nsca.Packet) -> HostState | ServiceState:
    try:
        if packet.service_description:
            return ServiceState(packet.return_code)
        return HostState(packet.return_code)
    except ValueError:
        kind = "service" if packet.service_description else "host"
        top = 3 if packet.service_description else 2
        raise InvalidInput("return_code", f"{packet.return_code} is no {kind} state (0 to {top})") from None


class Listener:
    """One ``[nsca]`` listener: its connections, its counters, its rate-limited log."""

    def __init__(self, app: web.Application, config: NscaConfig) -> None:
        self.app, self.config = app, config
        self.metrics: Metrics = app[METRICS]
        self.clock = app[CLOCK]
        self._quiet = _Quiet()
        self._connections: dict[asyncio.Task[None], bool] = {}  # task: is it handing a result over now?
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> str:
        host, port = self.config.address
        try:
            self._server = await asyncio.start_server(self._connection, host, port, reuse_address=True,
                                                      limit=2 * nsca.PACKET_SIZE)
        except OSError as exc:
            raise SystemExit(f"naemon-bridge: cannot listen for NSCA on {self.config.listen}: "
                             f"{exc.strerror or exc}") from None
        bound = self._server.sockets[0].getsockname()
        where = f"[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"{bound[0]}:{bound[1]}"
        log.info("NSCA listener bound to %s (encryption_method %d, %s; results as user %r)", where,
                 self.config.encryption_method, nsca.METHOD_NAMES[self.config.encryption_method], self.config.user)
        return where

    async def stop(self, timeout: float) -> None:
        """Stop taking connections; results being handed over finish (up to ``timeout``), idle readers stop."""
        if self._server is not None:
            self._server.close()
        for task, busy in list(self._connections.items()):
            if not busy:
                task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=timeout)
        for task in list(self._connections):
            task.cancel()

    def drop(self, reason: str) -> None:
        self.metrics.nsca_dropped.labels(reason).inc()

    def _principal(self) -> Principal | None:
        for user in self.app[CONFIG].current.users:
            if user.name == self.config.user:
                return Principal(user.name, grants=user.grants)
        return None

    def _allowed(self, address: str) -> bool:
        networks = self.config.allowed_networks
        if networks is None:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in networks)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = False
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else "?"
        try:
            if len(self._connections) > self.config.max_connections:
                self.drop("too_many_connections")
                if self._quiet.due("connections", self.clock()):
                    log.warning("NSCA: more than %d connections at once: closing the one from %s",
                                self.config.max_connections, client)
                return
            if not self._allowed(client):
                self.drop("network_not_allowed")
                if self._quiet.due("address " + client, self.clock()):
                    log.warning("NSCA: connection from %s refused: not in nsca.allowed_networks", client)
                return
            await self._session(task, reader, writer, client)
        except (ConnectionError, OSError) as exc:
            log.debug("NSCA: connection from %s lost: %s", client, exc)
        finally:
            self._connections.pop(task, None)
            writer.close()

    async def _session(self, task: asyncio.Task[None], reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       client: str) -> None:
        iv = secrets.token_bytes(nsca.IV_SIZE)
        writer.write(nsca.init_packet(iv, int(self.clock())))
        await writer.drain()
        config = self.config
        decrypt = nsca.cipher(config.encryption_method, config.password, iv)
        while True:
            try:
                data = await asyncio.wait_for(reader.readexactly(nsca.PACKET_SIZE), config.read_timeout)
            except asyncio.IncompleteReadError as exc:
                # nsca takes a 720-byte packet (2.7's, legacy_2_7_mode) only when the client then closes.
                if len(exc.partial) == nsca.LEGACY_PACKET_SIZE:
                    data = exc.partial
                elif exc.partial:
                    self.drop("short_packet")
                    log.warning("NSCA: %s closed after %d bytes of a packet (%d or %d expected): dropped", client,
                                len(exc.partial), nsca.PACKET_SIZE, nsca.LEGACY_PACKET_SIZE)
                    return
                else:
                    return  # the end of the connection
            except TimeoutError:
                self.drop("read_timeout")
                log.warning("NSCA: %s sent no whole packet within %g s (nsca.read_timeout): closed", client,
                            config.read_timeout)
                return
            try:
                packet = nsca.parse_packet(decrypt.update(data))
            except nsca.BadPacket as exc:
                self.drop(exc.reason)
                log.warning("NSCA: packet from %s dropped and connection closed: %s (encryption_method %d)",
                            client, exc, config.encryption_method)
                return
            now = self.clock()
            if config.max_packet_age and abs(now - packet.timestamp) > config.max_packet_age:
                self.drop("stale_packet")
                log.warning("NSCA: packet from %s for %r dropped: its time is %d s from now (nsca.max_packet_age "
                            "= %d)", client, packet.host_name, int(now - packet.timestamp), config.max_packet_age)
                return
            self._connections[task] = True
            try:
                await self._result(packet, int(now), client)
            finally:
                self._connections[task] = False
            if len(data) == nsca.LEGACY_PACKET_SIZE:
                return

    async def _result(self, packet: nsca.Packet, now: int, client: str) -> None:
        """One packet's result through admission and delivery; a refusal drops it alone."""
        principal = self._principal()
        if principal is None:  # the user went away in a reload that kept [nsca]
            self.drop("no_user")
            if self._quiet.due("user", now):
                log.error("NSCA: nsca.user %r is no [[users]] name any more: results dropped", self.config.user)
            return
        try:
            # nsca writes the time it received a result, not the packet's (which is the server's own, echoed).
            command = CheckResult(packet.host_name, packet.service_description or None, _state(packet),
                                  packet.plugin_output, now).command()
            await admit(self.app, principal, [command])
            await submit_commands(self.app, [command])
        except BridgeError as exc:
            reason = refusal_reason(exc)
            self.metrics.refuse(exc)
            self.drop(reason)
            what = f"{packet.host_name!r}" + (f", service {packet.service_description!r}"
                                              if packet.service_description else "")
            if not isinstance(exc, UnknownObject) or self._quiet.due(f"unknown {what}", now):
                log.warning("NSCA: result from %s for %s dropped (%s): %s", client, what, reason, exc)
            return
        self.metrics.by_dialect.labels(NAME).inc()


@asynccontextmanager
async def listening(app: web.Application) -> AsyncIterator[None]:
    """The ``[nsca]`` listener while the bridge runs; nothing when ``nsca.listen`` is unset."""
    live = app[CONFIG].current
    if live.nsca.listen is None:
        yield
        return
    listener = Listener(app, live.nsca)
    await listener.start()
    try:
        yield
    finally:
        await listener.stop(live.server.shutdown_timeout)


def _no_paths(_: object) -> ApiDescription:
    return ApiDescription({})


def _no_http_error(request: web.Request, status: int, message: str, error: BridgeError | None) -> web.Response:
    raise AssertionError("the NSCA dialect answers no HTTP request")  # it claims no path


DIALECT = Dialect(
    name=NAME,
    routes=(),
    render_error=_no_http_error,
    claims=lambda path: False,
    openapi=_no_paths,
    error_schema="",
    internal_error=orjson.dumps({"error": "internal error"}),
    listener=listening,
)
