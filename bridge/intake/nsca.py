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
from bridge.core import nsca, permissions
from bridge.core.errors import BridgeError, InvalidInput, UnknownObject
from bridge.core.values import CheckResult, Command, HostState, ServiceState
from bridge.http.credentials import Principal
from bridge.http.dialects import CURRENT_DIALECT, ApiDescription, Dialect
from bridge.http.keys import CLOCK, CONFIG, METRICS
from bridge.http.metrics import Metrics, refusal_reason
from bridge.http.submission import submit_commands, unknown_objects

log = logging.getLogger("naemon_bridge.nsca")

NAME = "nsca"
LOG_EVERY = 60.0  # seconds: one line per unknown name (or refused address) and minute, not one a packet
_READ_SIZE = 16 * nsca.PACKET_SIZE  # what one read takes at most
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
                                                      limit=_READ_SIZE)
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

    def drop(self, reason: str, count: int = 1) -> None:
        self.metrics.nsca_dropped.labels(reason).inc(count)

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
        # Read what has arrived, take every whole packet in it, and hand their results over in batches while
        # the next ones are read: a connection waits for the pipe once per batch, not once a packet (send_nsca
        # sends a whole input in one connection). Each packet must be whole within read_timeout, as in nsca.
        batch = _Batch(self, task, client)
        buffer = bytearray()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.read_timeout
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await reader.read(_READ_SIZE)
                except TimeoutError:
                    self.drop("read_timeout")
                    log.warning("NSCA: %s sent no whole packet within %g s (nsca.read_timeout): closed", client,
                                config.read_timeout)
                    return
                if not chunk:
                    # nsca takes a 720-byte packet (2.7's, legacy_2_7_mode) only when the client then closes.
                    if len(buffer) == nsca.LEGACY_PACKET_SIZE:
                        await self._packets([bytes(buffer)], decrypt, client, batch)
                    elif buffer:
                        self.drop("short_packet")
                        log.warning("NSCA: %s closed after %d bytes of a packet (%d or %d expected): dropped",
                                    client, len(buffer), nsca.PACKET_SIZE, nsca.LEGACY_PACKET_SIZE)
                    return
                buffer += chunk
                whole = len(buffer) // nsca.PACKET_SIZE
                if not whole:
                    continue
                size = nsca.PACKET_SIZE
                packets = [bytes(buffer[index * size:(index + 1) * size]) for index in range(whole)]
                del buffer[:whole * size]
                deadline = loop.time() + config.read_timeout
                if not await self._packets(packets, decrypt, client, batch):
                    return
        finally:
            await batch.finish()

    async def _packets(self, packets: list[bytes], decrypt: nsca.Cipher8, client: str, batch: _Batch) -> bool:
        """Decrypt, check and admit ``packets`` in order; False once the connection must close (a packet that
        fails its checks, as nsca closes it: the cipher stream cannot be trusted past it)."""
        config = self.config
        now = self.clock()
        results: list[nsca.Packet] = []
        carry_on = True
        for data in packets:
            try:
                packet = nsca.parse_packet(decrypt.update(data))
            except nsca.BadPacket as exc:
                self.drop(exc.reason)
                log.warning("NSCA: packet from %s dropped and connection closed: %s (encryption_method %d)",
                            client, exc, config.encryption_method)
                carry_on = False
                break
            if config.max_packet_age and abs(now - packet.timestamp) > config.max_packet_age:
                self.drop("stale_packet")
                log.warning("NSCA: packet from %s for %r dropped: its time is %d s from now "
                            "(nsca.max_packet_age = %d)", client, packet.host_name, int(now - packet.timestamp),
                            config.max_packet_age)
                carry_on = False
                break
            results.append(packet)
        if results:
            await self._admit(results, int(now), client, batch)
        return carry_on

    def _refused(self, exc: BridgeError, packet: nsca.Packet | None, client: str, now: float,
                 user: str) -> None:
        reason = refusal_reason(exc)
        self.metrics.refuse(exc, client=client, user=user, dialect=NAME)
        self.drop(reason)
        if packet is None:
            log.warning("NSCA: results from %s dropped (%s): %s", client, reason, exc)
            return
        what = f"{packet.host_name!r}" + (f", service {packet.service_description!r}"
                                          if packet.service_description else "")
        if not isinstance(exc, UnknownObject) or self._quiet.due(f"unknown {what}", now):
            log.warning("NSCA: result from %s for %s dropped (%s): %s", client, what, reason, exc)

    async def _admit(self, packets: list[nsca.Packet], now: int, client: str, batch: _Batch) -> None:
        """The packets' results through validation and admission (the user's grants, then the engine's objects)
        into the batch; a refusal drops its result alone."""
        principal = self._principal()
        if principal is None:  # the user went away in a reload that kept [nsca]
            self.drop("no_user", len(packets))
            if self._quiet.due("user", now):
                log.error("NSCA: nsca.user %r is no [[users]] name any more: results dropped", self.config.user)
            return
        commands: list[Command] = []
        sources: list[nsca.Packet] = []
        for packet in packets:
            try:
                # nsca writes the time it received a result, not the packet's (the server's own, echoed).
                command = CheckResult(packet.host_name, packet.service_description or None, _state(packet),
                                      packet.plugin_output, now).command()
                permissions.check(principal.name, principal.grants, command)
            except BridgeError as exc:
                self._refused(exc, packet, client, now, principal.name)
                continue
            commands.append(command)
            sources.append(packet)
        if not commands:
            return
        unknown = await unknown_objects(self.app, principal, commands)
        for index, problem in unknown.items():
            self._refused(problem, sources[index], client, now, principal.name)
        batch.add([command for index, command in enumerate(commands) if index not in unknown])


class _Batch:
    """A connection's admitted results on their way to the delivery task: one hand-over at a time, in order;
    what arrives meanwhile goes in the next."""

    def __init__(self, listener: Listener, connection: asyncio.Task[None], client: str) -> None:
        self.listener, self.connection, self.client = listener, connection, client
        self.pending: list[Command] = []
        self.flushing: asyncio.Task[None] | None = None

    def add(self, commands: list[Command]) -> None:
        if not commands:
            return
        self.pending += commands
        if self.flushing is None or self.flushing.done():
            self.flushing = asyncio.create_task(self._flush(), name="naemon-bridge nsca hand-over")

    async def _flush(self) -> None:
        listener = self.listener
        listener._connections[self.connection] = True  # a shutdown lets this finish
        CURRENT_DIALECT.set(NAME)  # what answered() sets for an HTTP dialect: /metrics and the status page count by it
        try:
            while self.pending:
                commands, self.pending = self.pending, []
                try:
                    await submit_commands(listener.app, commands)
                except BridgeError as exc:
                    for _ in commands:
                        listener.metrics.refuse(exc, client=self.client, user=listener.config.user or "", dialect=NAME)
                        listener.drop(refusal_reason(exc))
                    log.warning("NSCA: %d results from %s dropped (%s): %s", len(commands), self.client,
                                refusal_reason(exc), exc)
        finally:
            if self.connection in listener._connections:
                listener._connections[self.connection] = False

    async def finish(self) -> None:
        """Wait until everything admitted is handed over (a cancelled connection still hands its results)."""
        if self.flushing is not None:
            await asyncio.shield(self.flushing)


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
