"""How lines reach the engine: its command FIFO, or Naemon's query handler. Both take lines in order and say,
line by line, what became of them; the delivery task (``bridge.engine.delivery``) owns the transport and the spool.

FIFO facts (engine.md, pipe(7)): opened ``O_WRONLY|O_NONBLOCK`` so nothing ever blocks the loop; ENXIO = engine not
running, ENOENT = no FIFO, EAGAIN = pipe full, EPIPE = reader gone. Writes of at most PIPE_BUF bytes are atomic, so
lines are packed into writes of whole lines up to PIPE_BUF and never interleave with other writers. A longer line
is written alone and may go in only in part (a stalled engine leaves a few free pages): the fragment in the pipe is
then finished before anything else, or, when it cannot be (the pipe was reopened, the bridge restarted), ended with
a line break first — never does another line's text follow a fragment and become part of it. A marker file
(``FRAGMENT_MARKER``, in the spool directory) says across restarts that a fragment may be in the pipe.

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger("naemon_bridge.transport")

PIPE_BUF = 4096
# Present while a line longer than PIPE_BUF may sit in the pipe unfinished: created before its first byte is
# written, removed once its last byte or a terminating line break is in. Found at start, it means the previous run
# died in the middle of such a line, so the first write ends that fragment with a line break. No fsync: a crash of
# the machine empties the pipe too, and what survives a crash of the process (the page cache) is all it needs.
FRAGMENT_MARKER = "pipe-fragment"


class PipeUnavailable(Exception):
    """The engine does not read its pipe now (``reason`` says why); lines must wait in the spool."""

    def __init__(self, reason: str, *, down: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.down = down


class CommandPipe:
    """The engine's command FIFO, opened without blocking and reopened when the engine comes back.

    ``fragment_marker`` (a file in the spool directory) remembers across restarts that a long line may be left
    unfinished in the pipe; without it that is remembered only while the process lives.
    """

    def __init__(self, path: Path, *, fragment_marker: Path | None = None) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._inode: int | None = None
        self._checked_at = 0.0
        self._marker = fragment_marker
        self._marked = fragment_marker is not None and fragment_marker.exists()
        self._rest = b""  # the unwritten end of a long line partly in the pipe through ``_fd``
        self._rest_of = b""  # that line
        # A fragment may be in the pipe that can no longer be finished (another descriptor, another run): the next
        # write starts with a line break, so the engine takes the fragment as a line of its own.
        self._unterminated = self._marked
        if self._marked:
            log.warning("%s: the last run stopped in the middle of a line longer than %d bytes; a line break ends "
                        "what of it is in the pipe before anything else is written (acknowledged lines go again "
                        "whole from the spool)", fragment_marker, PIPE_BUF)

    @property
    def unfinished(self) -> bool:
        """Whether a fragment of a line may be in the pipe: nothing else goes in before it is finished or ended."""
        return bool(self._rest) or self._unterminated

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
        while a descriptor held since before the engine stopped would not notice until the next write. While a
        long line is partly in the pipe, its descriptor is kept (only it can finish the line) and a second one asks.
        """
        if self._rest:
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
            except OSError as exc:
                return _describe(exc, self.path)
            return None
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
        if self._rest:  # no other descriptor may finish it: whoever reads the pipe next gets it ended instead
            self._rest, self._rest_of = b"", b""
            self._unterminated = True

    def _mark(self) -> None:
        """Remember on disk, before the first byte of a long line goes in, that it may stay unfinished."""
        if self._marker is None or self._marked:
            return
        try:
            self._marker.write_text(f"{self.path}\n")
        except OSError as exc:
            log.error("cannot write %s (%s): a restart in the middle of a long line could not end it",
                      self._marker, exc.strerror or exc)
            return
        self._marked = True

    def _unmark(self) -> None:
        if not self._marked or self.unfinished or self._marker is None:
            return
        try:
            self._marker.unlink(missing_ok=True)
        except OSError as exc:
            log.error("cannot remove %s (%s): the next start writes an empty line first (harmless)",
                      self._marker, exc.strerror or exc)
            return
        self._marked = False


def _describe(exc: OSError, path: Path) -> str:
    meaning = {errno.ENXIO: "the engine is not reading it", errno.ENOENT: "it does not exist",
               errno.EPIPE: "the engine closed it", errno.EACCES: "permission denied"}
    return f"{path}: {meaning.get(exc.errno or 0, exc.strerror or str(exc))}"


def pack(lines: Sequence[bytes]) -> list[list[bytes]]:
    """Group lines into writes of whole lines of at most PIPE_BUF bytes; a longer line stands alone."""
    return list(packed(lines))


def packed(lines: Sequence[bytes]) -> Iterator[list[bytes]]:
    """``pack``, one write at a time: a full pipe stops the writer after a few of them, and the lines behind are
    not grouped for nothing."""
    current: list[bytes] = []
    size = 0
    for line in lines:
        length = len(line) + 1
        if current and size + length > PIPE_BUF:
            yield current
            current, size = [], 0
        current.append(line)
        size += length
        if size > PIPE_BUF:
            yield current
            current, size = [], 0
    if current:
        yield current


@dataclass(slots=True)
class Written:
    """What became of each line handed to a transport, by index."""

    taken: list[bool]  # reached the engine (refused ones included: the engine has dealt with them)
    refusals: dict[int, str] = field(default_factory=dict)  # the engine's reason, for lines it refused
    stopped: PipeUnavailable | None = None  # why some lines were not taken
    accepted: bool = False  # the engine took bytes (part of a long line counts), though maybe no whole line
    partial: bool = False  # the first line not taken is partly in the pipe; its rest goes before anything else

    @property
    def prefix(self) -> int:
        """How many lines from the start were taken without a gap (what the spool may mark delivered)."""
        return next((i for i, taken in enumerate(self.taken) if not taken), len(self.taken))


class Transport(Protocol):
    path: Path
    # What the log says when the destination stops taking lines, and when it takes them again.
    stopped_text: str
    resumed_text: str

    @property
    def unfinished(self) -> bool:
        """A line is partly in the engine's pipe: its rest goes before anything else."""

    async def write(self, lines: Sequence[bytes]) -> Written: ...

    def probe(self) -> str | None: ...

    async def wait_ready(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the engine can take more, after a write it was too busy for."""

    def retarget(self, path: Path) -> None: ...

    def close(self) -> None: ...


class FifoTransport(CommandPipe):
    """The engine's command FIFO (Nagios 4, or Naemon without its query handler)."""

    stopped_text = "engine stopped reading its command pipe"
    resumed_text = "engine reads its command pipe again"

    async def wait_ready(self, timeout: float) -> None:
        """A full pipe: wait for the engine to read some of it (the kernel says when), not a fixed time."""
        try:
            await self.wait_writable(timeout)
        except PipeUnavailable:
            return

    async def write(self, lines: Sequence[bytes]) -> Written:
        result = Written([False] * len(lines))
        try:
            done = self._settle(lines, result)
            if done is None:
                result.stopped = PipeUnavailable("pipe full", down=False)
                return result
            for group in packed(lines[done:] if done else lines):
                data = b"\n".join(group) + b"\n"
                if len(data) <= PIPE_BUF:
                    if self._write(data) == 0:
                        result.stopped = PipeUnavailable("pipe full", down=False)
                        return result
                    result.accepted = True
                elif not self._write_long(group[0], data, result):
                    result.stopped = PipeUnavailable("pipe full", down=False)
                    return result
                result.taken[done:done + len(group)] = [True] * len(group)
                done += len(group)
        except PipeUnavailable as exc:
            result.stopped = exc
        return result

    def _settle(self, lines: Sequence[bytes], result: Written) -> int | None:
        """Before any other line: finish the long line partly in the pipe, or end a fragment that cannot be
        finished with a line break. Returns how many of ``lines`` that took (1 when the line finished is the first
        of them, as when its request was spooled and the spool drains), or None while the pipe has no room."""
        if not self.unfinished:
            return 0
        self._open()  # a recreated FIFO closes the descriptor the rest belonged to: then the fragment is ended
        if self._rest:
            written = self._write(self._rest)
            result.accepted = written > 0
            self._rest = self._rest[written:]
            if self._rest:
                result.partial = bool(lines) and lines[0] == self._rest_of
                return None
            finished, self._rest_of = self._rest_of, b""
            self._unmark()
            if lines and lines[0] == finished:
                result.taken[0] = True
                return 1
            return 0
        if self._unterminated:
            if self._write(b"\n") == 0:
                return None
            result.accepted = True
            self._unterminated = False
            self._unmark()
            log.info("%s: ended the fragment of a long line left in the pipe with a line break", self.path)
        return 0

    def _write_long(self, line: bytes, data: bytes, result: Written) -> bool:
        """A line longer than PIPE_BUF (``data`` is it with its line break): whole, or its rest kept for the next
        write. False when not all of it went in."""
        self._mark()
        try:
            written = self._write(data)
        except PipeUnavailable:
            self._unmark()  # nothing of it went in
            raise
        if written == len(data):
            result.accepted = True
            self._unmark()
            return True
        if written == 0:
            self._unmark()
            return False
        result.accepted = result.partial = True
        self._rest, self._rest_of = data[written:], line
        return False


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

    stopped_text = "Naemon's query handler stopped taking commands"
    resumed_text = "Naemon's query handler takes commands again"

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

    @property
    def unfinished(self) -> bool:
        return False  # each request is one message on a connection, whole or not at all

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
