"""The on-disk spool: where acknowledged lines wait while the engine does not read its pipe.

Append-only segment files. Each record holds the lines of one request with the time it was appended, framed with
its length and a CRC32, so a record torn by a crash is detected, logged and skipped — never delivered half, and
never a request that was acknowledged (the answer waits for the append). The delivered position (segment, record
offset, lines of that record already delivered) is kept in ``cursor``, replaced atomically after each delivered
batch; a crash between a write to the pipe and that replacement delivers the batch again (at least once).

This class does blocking file I/O: the delivery task calls it through ``asyncio.to_thread``. It is not
thread-safe; only the delivery task uses it.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bridge.core.values import FsyncPolicy

log = logging.getLogger("naemon_bridge.spool")

_MAGIC = b"NBS3"
_HEADER = struct.Struct(">4sIIQ")  # magic, payload length, crc32(time + payload), appended at (ms since epoch)
_TIME = struct.Struct(">Q")
_LENGTH = struct.Struct(">I")  # each line is length-prefixed: lines for the query handler hold real newlines
_SUFFIX = ".seg"
SEGMENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Cursor:
    segment: int = 0
    offset: int = 0
    line: int = 0  # lines of the record at ``offset`` already delivered


@dataclass(slots=True)
class _Entry:
    segment: int
    offset: int
    end: int
    skip: int
    lines: list[bytes]


@dataclass(slots=True)
class SpoolBatch:
    """Lines read from the spool in order, not yet delivered."""

    entries: list[_Entry] = field(default_factory=list)

    @property
    def lines(self) -> list[bytes]:
        return [line for entry in self.entries for line in entry.lines]


def frame(lines: Sequence[bytes], appended_at: float) -> bytes:
    payload = b"".join(_LENGTH.pack(len(line)) + line for line in lines)
    stamp = int(appended_at * 1000)
    return _HEADER.pack(_MAGIC, len(payload), zlib.crc32(_TIME.pack(stamp) + payload), stamp) + payload


def _record_at(data: bytes, offset: int) -> tuple[list[bytes], int, float] | None:
    """The record at ``offset``: its lines, where it ends and when it was appended; None if torn or corrupt."""
    header_end = offset + _HEADER.size
    if header_end > len(data):
        return None
    magic, length, crc, stamp = _HEADER.unpack_from(data, offset)
    end = header_end + length
    if magic != _MAGIC or end > len(data):
        return None
    payload = data[header_end:end]
    if zlib.crc32(_TIME.pack(stamp) + payload) != crc:
        return None
    lines, offset = [], 0
    while offset < len(payload):
        (length,) = _LENGTH.unpack_from(payload, offset)
        lines.append(payload[offset + _LENGTH.size:offset + _LENGTH.size + length])
        offset += _LENGTH.size + length
    return lines, end, stamp / 1000


class Spool:
    def __init__(self, directory: Path, *, fsync: FsyncPolicy = FsyncPolicy.ALWAYS,
                 segment_bytes: int = SEGMENT_BYTES, clock: Callable[[], float] = time.time) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.pending_results = 0
        self.pending_bytes = 0
        self.oldest_appended_at: float | None = None
        self._clock = clock
        self._cursor = Cursor()
        self._valid_end: dict[int, int] = {}  # segment -> end of its last intact record
        self._writer: int | None = None
        self._writer_segment = 0
        self._dirty = False

    # -- start-up ------------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Create the directory, load the cursor and scan what is pending; torn records are logged and skipped."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cursor = self._load_cursor()
        for segment in self._segments():
            if segment < self._cursor.segment:
                self._path(segment).unlink(missing_ok=True)
                continue
            start = self._cursor.offset if segment == self._cursor.segment else 0
            self._valid_end[segment] = self._scan(segment, start)
        if self._valid_end and self._cursor.segment < min(self._valid_end):
            self._cursor = Cursor(min(self._valid_end), 0, 0)
        self._writer_segment = max([*self._valid_end, self._cursor.segment]) + 1
        if self.pending_results:
            log.info("spool %s holds %d results (%d bytes) to deliver", self.directory, self.pending_results,
                     self.pending_bytes)

    def _segments(self) -> list[int]:
        found = []
        for path in self.directory.glob(f"*{_SUFFIX}"):
            try:
                found.append(int(path.stem))
            except ValueError:
                continue
        return sorted(found)

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{_SUFFIX}"

    def _load_cursor(self) -> Cursor:
        try:
            data = json.loads((self.directory / "cursor").read_text())
            return Cursor(int(data["segment"]), int(data["offset"]), int(data["line"]))
        except FileNotFoundError:
            return Cursor()
        except (ValueError, KeyError, TypeError) as exc:
            log.error("spool cursor unreadable (%s): delivering the whole spool again", exc)
            return Cursor()

    def _scan(self, segment: int, start: int) -> int:
        """Count what is pending in ``segment`` from ``start``; returns the end of its last intact record."""
        with self._path(segment).open("rb") as handle:
            data = handle.read()
        offset = start
        while offset < len(data):
            record = _record_at(data, offset)
            if record is None:
                log.error("spool segment %s: torn or corrupt record at byte %d; %d bytes skipped (never "
                          "acknowledged: the bridge stopped while writing it)", self._path(segment).name, offset,
                          len(data) - offset)
                break
            lines, end, appended_at = record
            skip = self._cursor.line if (segment, offset) == (self._cursor.segment, self._cursor.offset) else 0
            self.pending_results += max(0, len(lines) - skip)
            self.pending_bytes += end - offset
            if self.oldest_appended_at is None:
                self.oldest_appended_at = appended_at
            offset = end
        return offset

    # -- writing -------------------------------------------------------------------------------------------------
    def append(self, requests: Sequence[Sequence[bytes]]) -> None:
        """Append each request's lines as one record (fsynced before returning under the ``always`` policy)."""
        now = self._clock()
        data = b"".join(frame(lines, now) for lines in requests)
        if self._writer is None or self._valid_end.get(self._writer_segment, 0) >= self.segment_bytes:
            self._roll()
        assert self._writer is not None
        written = 0
        while written < len(data):
            written += os.write(self._writer, data[written:])
        if self.fsync is FsyncPolicy.ALWAYS:
            os.fsync(self._writer)
        else:
            self._dirty = True
        self._valid_end[self._writer_segment] += len(data)
        if self.pending_results == 0:
            self.oldest_appended_at = now
        self.pending_results += sum(len(lines) for lines in requests)
        self.pending_bytes += len(data)

    @staticmethod
    def size_of(requests: Sequence[Sequence[bytes]]) -> int:
        """Bytes these requests take in the spool."""
        return sum(_HEADER.size + sum(_LENGTH.size + len(line) for line in lines) for lines in requests)

    def sync(self) -> None:
        """Force appended records to disk (the ``interval`` policy's timer, and at close)."""
        if self._dirty and self._writer is not None:
            os.fsync(self._writer)
        self._dirty = False

    def _roll(self) -> None:
        if self._writer is not None:
            self.sync()
            os.close(self._writer)
            self._writer_segment += 1
        path = self._path(self._writer_segment)
        self._writer = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._valid_end[self._writer_segment] = os.fstat(self._writer).st_size
        if self.fsync is FsyncPolicy.ALWAYS:
            self._fsync_directory()

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- draining ------------------------------------------------------------------------------------------------
    def read_batch(self, max_bytes: int = 256 * 1024) -> SpoolBatch:
        """The next undelivered lines in order, about ``max_bytes`` of them (at least one record)."""
        batch = SpoolBatch()
        size = 0
        cursor = self._cursor
        for segment in sorted(s for s in self._valid_end if s >= cursor.segment):
            offset = cursor.offset if segment == cursor.segment else 0
            end = self._valid_end[segment]
            with self._path(segment).open("rb") as handle:
                handle.seek(offset)
                while offset < end and size < max_bytes:
                    header = handle.read(_HEADER.size)
                    length = _HEADER.unpack(header)[1]
                    record = _record_at(header + handle.read(length), 0)
                    if record is None:  # scanned intact at start-up: only a disk fault gets here
                        raise OSError(f"spool segment {self._path(segment).name} changed under the bridge")
                    lines, record_size, _ = record
                    skip = cursor.line if (segment, offset) == (cursor.segment, cursor.offset) else 0
                    batch.entries.append(_Entry(segment, offset, offset + record_size, skip, lines[skip:]))
                    size += record_size
                    offset += record_size
            if size >= max_bytes:
                break
        return batch

    def commit(self, batch: SpoolBatch, delivered: int) -> None:
        """Record that the first ``delivered`` lines of ``batch`` reached the engine; drop finished segments."""
        if delivered <= 0:
            return
        cursor = self._cursor
        remaining = delivered
        for entry in batch.entries:
            if remaining >= len(entry.lines):
                remaining -= len(entry.lines)
                self.pending_bytes -= entry.end - entry.offset
                cursor = Cursor(entry.segment, entry.end, 0)
            else:
                cursor = Cursor(entry.segment, entry.offset, entry.skip + remaining)
                break
        self.pending_results -= delivered
        self._cursor = cursor
        self._save_cursor()
        for segment in [s for s in self._valid_end if s < cursor.segment]:
            self._path(segment).unlink(missing_ok=True)
            del self._valid_end[segment]
        if self.pending_results == 0:
            self.pending_bytes = 0
            self.oldest_appended_at = None
        else:
            self.oldest_appended_at = self._appended_at(cursor)

    def _appended_at(self, cursor: Cursor) -> float | None:
        for segment in sorted(s for s in self._valid_end if s >= cursor.segment):
            offset = cursor.offset if segment == cursor.segment else 0
            if offset < self._valid_end[segment]:
                with self._path(segment).open("rb") as handle:
                    handle.seek(offset)
                    return _HEADER.unpack(handle.read(_HEADER.size))[3] / 1000
        return None

    def _save_cursor(self) -> None:
        tmp = self.directory / "cursor.tmp"
        with tmp.open("w") as handle:
            json.dump({"segment": self._cursor.segment, "offset": self._cursor.offset, "line": self._cursor.line},
                      handle)
            if self.fsync is FsyncPolicy.ALWAYS:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, self.directory / "cursor")

    def close(self) -> None:
        if self._writer is not None:
            self.sync()
            os.close(self._writer)
            self._writer = None
