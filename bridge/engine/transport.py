"""How lines reach the engine: its command FIFO, or Naemon's query handler. Both take lines in order and say,
line by line, what became of them; the delivery task (``bridge.engine.delivery``) owns the transport and the spool.

FIFO facts (engine.md, pipe(7)): opened ``O_WRONLY|O_NONBLOCK`` so nothing ever blocks the loop; ENXIO = engine not
running, ENOENT = no FIFO, EAGAIN = pipe full, EPIPE = reader gone. Writes of at most PIPE_BUF bytes are atomic, so
lines are packed into writes of whole lines up to PIPE_BUF and never interleave with other writers; a longer line
is written alone, finishing any partial write before anything else.

Query handler facts (engine.md, measured on Naemon 1.5.2): ``@command run <line>\\0`` on a persistent Unix-socket
connection; the reply ends in NUL: ``200: OK`` (parsed and queued — not proof of success), ``400: <reason>\\n``
(refused, nothing done), ``404 …`` (then the engine closes). One request per read: a connection is strictly
request -> reply, so throughput comes from a few connections in parallel, and every line of one host goes over the
same connection to keep its order. Real newlines inside a line are kept: long output arrives as long output.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import stat
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger("naemon_bridge.transport")

PIPE_BUF = 4096


class PipeUnavailable(Exception):
    """The engine does not read its pipe now (``reason`` says why); lines must wait in the spool."""

    def __init__(self, reason: str, *, down: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.down = down


class CommandPipe:
    """The engine's command FIFO, opened without blocking and reopened when the engine comes back."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._inode: int | None = None
        self._checked_at = 0.0

    def _open(self) -> int:
        now = time.monotonic()
        if self._fd is not None and now - self._checked_at > 1.0:
            # The FIFO may have been removed or recreated (new inode) while we held the old one.
            self._checked_at = now
            try:
                if os.stat(self.path).st_ino != self._inode:
                    self.close()
            except OSError:
                self.close()
        if self._fd is None:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                raise PipeUnavailable(_describe(exc, self.path), down=True) from None
            info = os.fstat(fd)
            if not stat.S_ISFIFO(info.st_mode):
                os.close(fd)
                raise PipeUnavailable(f"{self.path} is not a FIFO (is engine.command_file right?)", down=True)
            self._fd, self._inode, self._checked_at = fd, info.st_ino, now
        return self._fd

    def retarget(self, path: Path) -> None:
        """Write to another FIFO from the next write on (a reload changed engine.command_file)."""
        if Path(path) != self.path:
            self.close()
            self.path = Path(path)

    def probe(self) -> str | None:
        """Whether the engine reads its pipe now: None if it does, else why not.

        Reopening is the only way to ask without writing: a FIFO open for writing with no reader fails (ENXIO),
        while a descriptor held since before the engine stopped would not notice until the next write.
        """
        self.close()
        try:
            self._open()
        except PipeUnavailable as exc:
            return exc.reason
        return None

    def _write(self, data: bytes) -> int:
        """Write what fits now; returns the bytes written (0 when the pipe is full)."""
        fd = self._open()
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self.close()
            raise PipeUnavailable(_describe(exc, self.path), down=True) from None

    async def wait_writable(self, timeout: float) -> None:
        fd = self._open()
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def writable() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_writer(fd, writable)
        try:
            await asyncio.wait_for(ready, timeout)
        except TimeoutError:
            pass
        finally:
            loop.remove_writer(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _describe(exc: OSError, path: Path) -> str:
    meaning = {errno.ENXIO: "the engine is not reading it", errno.ENOENT: "it does not exist",
               errno.EPIPE: "the engine closed it", errno.EACCES: "permission denied"}
    return f"{path}: {meaning.get(exc.errno or 0, exc.strerror or str(exc))}"


def pack(lines: Sequence[bytes]) -> list[list[bytes]]:
    """Group lines into writes of whole lines of at most PIPE_BUF bytes; a longer line stands alone."""
    writes: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        length = len(line) + 1
        if current and size + length > PIPE_BUF:
            writes.append(current)
            current, size = [], 0
        current.append(line)
        size += length
        if size > PIPE_BUF:
            writes.append(current)
            current, size = [], 0
    if current:
        writes.append(current)
    return writes


@dataclass(slots=True)
class Written:
    """What became of each line handed to a transport, by index."""

    taken: list[bool]  # reached the engine (refused ones included: the engine has dealt with them)
    refusals: dict[int, str] = field(default_factory=dict)  # the engine's reason, for lines it refused
    stopped: PipeUnavailable | None = None  # why some lines were not taken

    @property
    def prefix(self) -> int:
        """How many lines from the start were taken without a gap (what the spool may mark delivered)."""
        return next((i for i, taken in enumerate(self.taken) if not taken), len(self.taken))


class Transport(Protocol):
    path: Path

    async def write(self, lines: Sequence[bytes]) -> Written: ...

    def probe(self) -> str | None: ...

    async def wait_ready(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the engine can take more, after a write it was too busy for."""

    def retarget(self, path: Path) -> None: ...

    def close(self) -> None: ...


class FifoTransport(CommandPipe):
    """The engine's command FIFO (Nagios 4, or Naemon without its query handler)."""

    async def wait_ready(self, timeout: float) -> None:
        """A full pipe: wait for the engine to read some of it (the kernel says when), not a fixed time."""
        try:
            await self.wait_writable(timeout)
        except PipeUnavailable:
            return

    async def write(self, lines: Sequence[bytes]) -> Written:
        taken = [False] * len(lines)
        done = 0
        try:
            for group in pack(lines):
                data = b"".join(line + b"\n" for line in group)
                if len(data) <= PIPE_BUF:
                    if self._write(data) == 0:
                        return Written(taken, stopped=PipeUnavailable("pipe full", down=False))
                elif not await self._write_long(data):
                    return Written(taken, stopped=PipeUnavailable("pipe full", down=False))
                for index in range(done, done + len(group)):
                    taken[index] = True
                done += len(group)
        except PipeUnavailable as exc:
            return Written(taken, stopped=exc)
        return Written(taken)

    async def _write_long(self, data: bytes) -> bool:
        """A line longer than PIPE_BUF: once a part is in, the rest must follow before anything else."""
        written = self._write(data)
        if written == 0:
            return False
        while written < len(data):
            await self.wait_writable(1.0)
            written += self._write(data[written:])
        return True


def host_of(line: bytes) -> bytes:
    """The first argument of ``[ts] NAME;first;...``: a line's host for most commands, its connection key."""
    _, _, rest = line.partition(b";")
    return rest.partition(b";")[0]


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class QueryTransport:
    """Naemon's query handler: ``connections`` persistent connections, each strictly request -> reply."""

    def __init__(self, path: Path, connections: int = 4, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._pool: list[_Connection | None] = [None] * connections

    async def _connection(self, slot: int) -> _Connection:
        connection = self._pool[slot]
        if connection is None or connection.writer.is_closing():
            try:
                reader, writer = await asyncio.open_unix_connection(str(self.path))
            except OSError as exc:
                raise PipeUnavailable(_describe_socket(exc, self.path), down=True) from None
            connection = self._pool[slot] = _Connection(reader, writer)
        return connection

    def _drop(self, slot: int) -> None:
        connection = self._pool[slot]
        self._pool[slot] = None
        if connection is not None:
            connection.writer.close()

    async def _send(self, slot: int, line: bytes) -> str | None:
        """Send one line and wait for its reply: None when queued (200), the reason when refused (400).

        A pooled connection found dead (the engine restarted while it sat idle) is opened anew once and the line
        sent again; if the engine had applied it before the connection broke, it applies it twice — at least once.
        """
        for attempt in (1, 2):
            reused = self._pool[slot] is not None
            connection = await self._connection(slot)
            try:
                connection.writer.write(b"@command run " + line + b"\0")
                await connection.writer.drain()
                reply = await asyncio.wait_for(connection.reader.readuntil(b"\0"), self.timeout)
                break
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError) as exc:
                self._drop(slot)
                if attempt == 1 and reused and not isinstance(exc, TimeoutError):
                    continue
                raise PipeUnavailable(f"{self.path}: the query handler connection broke "
                                      f"({exc.__class__.__name__})", down=True) from None
        text = reply[:-1].decode(errors="replace")
        if text.startswith("200"):
            return None
        if text.startswith("400"):
            return text.partition(":")[2].strip() or text
        self._drop(slot)  # 404 and anything else: the engine closes this connection
        raise PipeUnavailable(f"{self.path}: the query handler answered {text.strip()!r}", down=True)

    async def write(self, lines: Sequence[bytes]) -> Written:
        result = Written([False] * len(lines))
        queues: dict[int, list[int]] = {}
        for index, line in enumerate(lines):
            queues.setdefault(zlib.crc32(host_of(line)) % len(self._pool), []).append(index)

        async def run(slot: int, indexes: list[int]) -> None:
            for index in indexes:  # in order; a broken connection stops this host's lines here
                reason = await self._send(slot, lines[index])
                result.taken[index] = True
                if reason is not None:
                    result.refusals[index] = reason

        outcomes = await asyncio.gather(*(run(slot, indexes) for slot, indexes in queues.items()),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, PipeUnavailable):
                result.stopped = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
        return result

    async def wait_ready(self, timeout: float) -> None:
        return  # each request waits for its reply: never "too busy"

    def probe(self) -> str | None:
        """Whether the query socket accepts a connection now (the engine removes it while stopped)."""
        import socket

        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.setblocking(False)
        try:
            probe.connect(str(self.path))
        except BlockingIOError:
            return None  # connecting: someone is listening
        except OSError as exc:
            return _describe_socket(exc, self.path)
        finally:
            probe.close()
        return None

    def retarget(self, path: Path) -> None:
        if Path(path) != self.path:
            self.close()
            self.path = Path(path)

    def close(self) -> None:
        for slot in range(len(self._pool)):
            self._drop(slot)


def _describe_socket(exc: OSError, path: Path) -> str:
    meaning = {errno.ENOENT: "no query socket (the engine is not running)",
               errno.ECONNREFUSED: "nobody listens on it", errno.EACCES: "permission denied"}
    return f"{path}: {meaning.get(exc.errno or 0, exc.strerror or str(exc))}"
