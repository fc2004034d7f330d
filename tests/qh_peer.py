"""A stand-in for Naemon's query handler that answers exactly as engine.md records it (measured on Naemon 1.5.2).

- ``#`` (or no prefix): one request, then the engine closes; ``@``: the connection stays open.
- ``command run <line>\\0`` -> ``200: OK\\0`` when parsed and queued, ``400: <reason>\\n\\0`` when refused.
- An unknown subcommand -> ``404: Not found\\0``, then close; an unknown handler -> ``404: <h>: No such handler``
  without NUL, then EOF.
- One request per read: when a read holds several requests, only the first is applied and answered — so a
  client that pipelines loses requests, and ``pipelined`` counts it.
- Real newline bytes inside a request are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

KNOWN_COMMANDS = {b"PROCESS_SERVICE_CHECK_RESULT", b"PROCESS_HOST_CHECK_RESULT", b"CHANGE_CUSTOM_HOST_VAR",
                  b"ENABLE_SVC_CHECK", b"DISABLE_SVC_CHECK", b"ADD_HOST_COMMENT"}


class QueryHandlerPeer:
    def __init__(self, path: Path, hosts: set[str], services: set[tuple[str, str]]) -> None:
        self.path = path
        self.hosts = {h.encode() for h in hosts}
        self.services = {(h.encode(), s.encode()) for h, s in services}
        self.applied: list[bytes] = []
        self.pipelined = 0
        self.connections = 0
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._client, str(self.path))

    async def stop(self) -> None:
        """As the engine stopping: the socket goes away and open connections close."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._clients.add(writer)
        try:
            while True:
                data = await reader.read(1 << 20)  # one read, one request: as the engine handles them
                if not data:
                    return
                requests = [r for r in data.split(b"\0") if r]
                if len(requests) > 1:
                    self.pipelined += 1  # the engine applies and answers only the first
                request = requests[0] if requests else b""
                persistent = request.startswith(b"@")
                if request[:1] in (b"@", b"#"):
                    request = request[1:]
                handler, _, rest = request.partition(b" ")
                if handler != b"command":
                    writer.write(b"404: " + handler + b": No such handler")
                    await writer.drain()
                    return
                subcommand, _, line = rest.partition(b" ")
                if subcommand != b"run":
                    writer.write(b"404: Not found\0")
                    await writer.drain()
                    return
                writer.write(self._run(line))
                await writer.drain()
                if not persistent:
                    return
        except ConnectionError:
            return
        finally:
            self._clients.discard(writer)
            writer.close()

    def _run(self, line: bytes) -> bytes:
        _, _, command = line.partition(b"] ")
        name, _, arguments = command.partition(b";")
        if name not in KNOWN_COMMANDS:
            return b"400: Unknown command '" + name + b"'\n\0"
        fields = arguments.split(b";", 3)
        if name == b"PROCESS_SERVICE_CHECK_RESULT":
            if (fields[0], fields[1] if len(fields) > 1 else b"") not in self.services:
                return b"400: Failed validation of service as type service (argument 0)\n\0"
            if len(fields) < 3 or not fields[2].lstrip(b"-").isdigit():
                code = fields[2] if len(fields) > 2 else b""
                return (b"400: Couldn't parse integer argument status_code (argument 1): No digits found in "
                        b"integer '" + code + b"'\n\0")
        elif fields[0] not in self.hosts:
            return b"400: Failed validation of host_name as type host (argument 0)\n\0"
        self.applied.append(line)
        return b"200: OK\0"
