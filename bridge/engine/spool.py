"""The on-disk spool: where acknowledged lines wait while the engine does not read its pipe.

Append-only segment files. Each record holds the lines of one request with the time it was appended, framed with
a marker, its length and a CRC32 of length, time and lines, so every record can be verified on its own and found
again after damage: a record that does not check is skipped by scanning forward to the next marker whose record
checks, so damage costs only the records it touched, and the log says which bytes of which segment were lost.
The lines inside a record cannot pass for a record: they never hold a NUL byte (values.py refuses it), and every
header of a record under 16 MiB does.
Records of the previous format (marker ``NBS3``, whose CRC did not cover the length) are still read, so an upgrade
with a non-empty spool loses nothing.

The delivered position (segment, record offset, lines of that record already delivered) is kept in ``cursor``
with its own CRC32, replaced atomically after each delivered batch; a crash between a write to the pipe and that
replacement delivers the batch again (at least once). A cursor that is damaged, or does not point at a record,
is detected at start-up: delivery starts again earlier (results may arrive twice) rather than skip any.

This class does blocking file I/O: the delivery task calls it through ``asyncio.to_thread``. It is not
thread-safe; only the delivery task uses it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from bridge.core.values import FsyncPolicy

log = logging.getLogger("naemon_bridge.spool")

_MAGIC = b"NBS4"  # the CRC covers length, time and payload
_MAGIC_V3 = b"NBS3"  # the previous format: the CRC covers time and payload
_MARKER = re.compile(rb"NBS[34]")  # where a record may start, when resynchronising after damage
_HEADER = struct.Struct(">4sIIQ")  # magic, payload length, crc32, appended at (ms since epoch)
_COVERED = struct.Struct(">IQ")  # what the NBS4 CRC covers before the payload: length and time
_TIME = struct.Struct(">Q")
_LENGTH = struct.Struct(">I")  # each line is length-prefixed: lines for the query handler hold real newlines
_COMMAND = re.compile(rb"\[\d+\] ([A-Z_]+;[^;\x00-\x1f]{1,64}(?:;[^;\x00-\x1f]{1,64})?)")
_SUFFIX = ".seg"
SEGMENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Cursor:
    segment: int = 0
    offset: int = 0
    line: int = 0  # lines of the record at ``offset`` already delivered


def _cursor_crc(cursor: Cursor) -> int:
    return zlib.crc32(f"{cursor.segment}:{cursor.offset}:{cursor.line}".encode())


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

    def after(self, delivered: int) -> SpoolBatch:
        """What of this batch is left once its first ``delivered`` lines are committed: the batch ``read_batch``
        would read next, without reading and checking those records again."""
        rest = SpoolBatch()
        for entry in self.entries:
            if delivered >= len(entry.lines):
                delivered -= len(entry.lines)
                continue
            if delivered:
                entry = _Entry(entry.segment, entry.offset, entry.end, entry.skip + delivered,
                               entry.lines[delivered:])
                delivered = 0
            rest.entries.append(entry)
        return rest


def frame(lines: Sequence[bytes], appended_at: float) -> bytes:
    payload = b"".join(_LENGTH.pack(len(line)) + line for line in lines)
    stamp = int(appended_at * 1000)
    crc = zlib.crc32(payload, zlib.crc32(_COVERED.pack(len(payload), stamp)))
    return _HEADER.pack(_MAGIC, len(payload), crc, stamp) + payload


def _decode(magic: bytes, crc: int, stamp: int, payload: bytes | memoryview) -> list[bytes] | None:
    """The lines of a record whose header and payload check; None if they do not."""
    if magic == _MAGIC:
        expected = zlib.crc32(payload, zlib.crc32(_COVERED.pack(len(payload), stamp)))
    elif magic == _MAGIC_V3:
        expected = zlib.crc32(payload, zlib.crc32(_TIME.pack(stamp)))
    else:
        return None
    if expected != crc:
        return None
    data = bytes(payload)
    lines, offset = [], 0
    while offset < len(data):
        if offset + _LENGTH.size > len(data):
            return None
        (length,) = _LENGTH.unpack_from(data, offset)
        start = offset + _LENGTH.size
        offset = start + length
        if offset > len(data):
            return None
        lines.append(data[start:offset])
    return lines


def _record_at(data: bytes, offset: int) -> tuple[list[bytes], int, float] | None:
    """The record at ``offset``: its lines, where it ends and when it was appended; None if torn or corrupt."""
    header_end = offset + _HEADER.size
    if header_end > len(data):
        return None
    magic, length, crc, stamp = _HEADER.unpack_from(data, offset)
    end = header_end + length
    if end > len(data):
        return None
    lines = _decode(magic, crc, stamp, memoryview(data)[header_end:end])
    return None if lines is None else (lines, end, stamp / 1000)


@dataclass(frozen=True, slots=True)
class _Gap:
    """Bytes of a segment that hold no intact record: skipped, and reported as lost."""

    start: int
    end: int  # where reading resumes: the next intact record, or the end of the segment
    records: int  # how many records were in it: exact when their length fields chain from start to end
    exact: bool  # else ``records`` counts the record markers in it (at least one)
    incomplete: bool  # the segment's last record, cut short: torn by a stop while appending, or a cut file
    commands: list[str]  # what the lost lines were, where still legible: ``COMMAND;host;service``


def _chained(data: bytes, start: int, end: int) -> int | None:
    """How many records lie from ``start`` to ``end`` if their length fields lead exactly from one to the next."""
    count, offset = 0, start
    while offset < end:
        if offset + _HEADER.size > end:
            return None
        offset += _HEADER.size + _HEADER.unpack_from(data, offset)[1]
        count += 1
    return count if offset == end else None


def _gap_at(data: bytes, start: int) -> _Gap:
    """The damage starting at ``start`` (a record boundary where no intact record is) up to the next intact one."""
    end = len(data)
    for match in _MARKER.finditer(data, start + 1):
        if _record_at(data, match.start()) is not None:
            end = match.start()
            break
    damaged = data[start:end]
    commands = [match.group(1).decode("utf-8", "replace") for match in _COMMAND.finditer(damaged)]
    header_end = start + _HEADER.size
    if end == len(data) and (header_end > end or (
            _MARKER.match(damaged) is not None and header_end + _HEADER.unpack_from(data, start)[1] > end)):
        return _Gap(start, end, 1, True, True, commands)
    chained = _chained(data, start, end)
    if chained is not None:
        return _Gap(start, end, chained, True, False, commands)
    return _Gap(start, end, max(1, len(_MARKER.findall(damaged))), False, False, commands)


def _walk(data: bytes, start: int) -> Iterator[tuple[int, list[bytes], int, float] | _Gap]:
    """From ``start``: each intact record (offset, lines, end, appended at) and each stretch of damage, in order."""
    offset = start
    while offset < len(data):
        record = _record_at(data, offset)
        if record is None:
            gap = _gap_at(data, offset)
            yield gap
            offset = gap.end
        else:
            lines, end, appended_at = record
            yield offset, lines, end, appended_at
            offset = end


def _describe(segment: str, gap: _Gap) -> str:
    size = gap.end - gap.start
    seen = f"; lines seen in it: {', '.join(gap.commands[:3])}" if gap.commands else ""
    more = f" (and {len(gap.commands) - 3} more)" if len(gap.commands) > 3 else ""
    if gap.incomplete:
        return (f"spool segment {segment}: incomplete last record at bytes {gap.start}-{gap.end} ({size} bytes) "
                f"skipped: the bridge stopped while appending it (then it was never acknowledged) or the file was "
                f"cut (then 1 acknowledged record is lost){seen}{more}")
    if gap.exact:
        records = "1 acknowledged record (one request's results) is" if gap.records == 1 else \
            f"{gap.records} acknowledged records (the results of {gap.records} requests) are"
    else:
        records = f"at least 1 acknowledged record ({gap.records} by the record markers in it) is"
    return (f"spool segment {segment}: bytes {gap.start}-{gap.end} ({size} bytes) are damaged: {records} lost; "
            f"reading resumes at byte {gap.end}{seen}{more}")


class Spool:
    def __init__(self, directory: Path, *, fsync: FsyncPolicy = FsyncPolicy.ALWAYS,
                 segment_bytes: int = SEGMENT_BYTES, clock: Callable[[], float] = time.time,
                 on_lost: Callable[[int], object] = lambda count: None) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.pending_results = 0
        self.pending_bytes = 0
        self.oldest_appended_at: float | None = None
        self.lost_records = 0  # damaged records skipped since start-up
        self.lost_bytes = 0
        self._clock = clock
        self._on_lost = on_lost  # told how many damaged records were skipped (metrics)
        self._cursor = Cursor()
        self._valid_end: dict[int, int] = {}  # segment -> where reading it ends
        self._gaps: dict[int, dict[int, int]] = {}  # segment -> damage found in it: start -> where reading resumes
        self._writer: int | None = None
        self._writer_segment = 0
        self._dirty = False

    # -- start-up ------------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Create the directory, load and check the cursor and scan what is pending; damage is logged and skipped."""
        self.directory.mkdir(parents=True, exist_ok=True)
        segments = self._segments()
        self._cursor, verified = self._load_cursor(segments)
        for segment in segments:
            if segment < self._cursor.segment:
                self._path(segment).unlink(missing_ok=True)
                continue
            data = self._path(segment).read_bytes()
            if segment == self._cursor.segment:
                self._cursor = self._place_cursor(data, self._cursor, verified)
            self._valid_end[segment] = len(data)
            self._count(segment, data)
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

    def _load_cursor(self, segments: list[int]) -> tuple[Cursor, bool]:
        """The saved cursor and whether its CRC checked (a cursor of the previous format has none)."""
        oldest = Cursor(segments[0] if segments else 0)
        try:
            data = json.loads((self.directory / "cursor").read_bytes())
            if not isinstance(data, dict):
                raise ValueError("not an object")
            values = [data["segment"], data["offset"], data["line"]]
            if any(type(value) is not int or value < 0 for value in values):
                raise ValueError("not a position")
            cursor = Cursor(*values)
            if "crc" in data and data["crc"] != _cursor_crc(cursor):
                raise ValueError("its checksum does not match")
        except FileNotFoundError:
            return oldest, True
        except (ValueError, KeyError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are too
            log.error("spool cursor damaged (%s): delivering the spool again from the start of its oldest segment; "
                      "results delivered before may reach the engine twice", exc)
            return oldest, True
        if cursor.segment not in segments and segments and segments[0] < cursor.segment:
            # Older segments are removed only after the cursor moved past them, and never the cursor's own.
            log.error("spool cursor points at segment %d, which is missing while older ones are there: delivering "
                      "the spool again from the start of segment %d; results delivered before may reach the engine "
                      "twice", cursor.segment, oldest.segment)
            return oldest, True
        return cursor, "crc" in data

    def _place_cursor(self, data: bytes, cursor: Cursor, verified: bool) -> Cursor:
        """``cursor`` if it points at a record of its segment ``data``, else the position to start again from."""
        name = self._path(cursor.segment).name
        if cursor.offset == len(data):
            return cursor if cursor.line == 0 else Cursor(cursor.segment, cursor.offset, 0)
        if cursor.offset > len(data):
            if verified:  # the position is right: the file lost its end, delivered and maybe undelivered
                log.error("spool segment %s is %d bytes, shorter than its delivered position (byte %d): it was "
                          "cut, and whatever it held after byte %d (acknowledged, not yet delivered) is lost", name,
                          len(data), cursor.offset, cursor.offset)
                return Cursor(cursor.segment, len(data), 0)
            log.error("spool cursor points past the end of segment %s (byte %d of %d): delivering the segment again "
                      "from its start; results delivered before may reach the engine twice", name, cursor.offset,
                      len(data))
            return Cursor(cursor.segment, 0, 0)
        record = _record_at(data, cursor.offset)
        if record is not None:
            if cursor.line < len(record[0]):
                return cursor
        else:
            for item in _walk(data, 0):
                item_start = item.start if isinstance(item, _Gap) else item[0]
                if item_start > cursor.offset:
                    break
                if isinstance(item, _Gap) and cursor.offset < item.end:
                    # The record at the cursor is damaged (counting reports it), or the damage began before the
                    # cursor: a cursor whose checksum checks is right about what was delivered.
                    if item.start == cursor.offset or verified:
                        return Cursor(cursor.segment, cursor.offset, 0)
                    break
        log.error("spool cursor (segment %s, byte %d, line %d) does not point at a record: delivering the segment "
                  "again from its start; results delivered before may reach the engine twice", name, cursor.offset,
                  cursor.line)
        return Cursor(cursor.segment, 0, 0)

    def _count(self, segment: int, data: bytes) -> None:
        """Add what is pending in ``segment`` (its bytes ``data``) from the cursor on; report damage not seen yet."""
        start = self._cursor.offset if segment == self._cursor.segment else 0
        known = self._gaps.setdefault(segment, {})
        for item in _walk(data, start):
            if isinstance(item, _Gap):
                if item.start not in known:
                    known[item.start] = item.end
                    self._report(segment, item)
                continue
            offset, lines, end, appended_at = item
            skip = self._cursor.line if (segment, offset) == (self._cursor.segment, self._cursor.offset) else 0
            self.pending_results += max(0, len(lines) - skip)
            self.pending_bytes += end - offset
            if self.oldest_appended_at is None:
                self.oldest_appended_at = appended_at

    def _recount(self) -> None:
        """Count the pending results again, from the files: damage found while draining took an unknown number."""
        self.pending_results = self.pending_bytes = 0
        self.oldest_appended_at = None
        for segment in sorted(s for s in self._valid_end if s >= self._cursor.segment):
            with self._path(segment).open("rb") as handle:
                self._count(segment, handle.read(self._valid_end[segment]))

    # -- writing -------------------------------------------------------------------------------------------------
    def append(self, requests: Sequence[Sequence[bytes]]) -> None:
        """Append each request's lines as one record (fsynced before returning under the ``always`` policy)."""
        now = self._clock()
        data = b"".join(frame(lines, now) for lines in requests)
        if self._writer is None or self._valid_end.get(self._writer_segment, 0) >= self.segment_bytes:
            self._roll()
        assert self._writer is not None
        try:
            written = 0
            while written < len(data):
                written += os.write(self._writer, data[written:])
            if self.fsync is FsyncPolicy.ALWAYS:
                os.fsync(self._writer)
            else:
                self._dirty = True
        except OSError:
            self._undo_append()
            raise
        self._valid_end[self._writer_segment] += len(data)
        if self.pending_results == 0:
            self.oldest_appended_at = now
        self.pending_results += sum(len(lines) for lines in requests)
        self.pending_bytes += len(data)

    def _undo_append(self) -> None:
        """Remove what a failed append left (it was not acknowledged), so no later record follows a torn one."""
        assert self._writer is not None
        try:
            os.ftruncate(self._writer, self._valid_end[self._writer_segment])
        except OSError:  # leave it at the end of its segment, where the next start reports it as incomplete
            os.close(self._writer)
            self._writer = None
            self._writer_segment += 1

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
            gaps = self._gaps.setdefault(segment, {})
            with self._path(segment).open("rb") as handle:
                handle.seek(offset)
                while offset < end and size < max_bytes:
                    if offset in gaps:
                        offset = gaps[offset]
                        handle.seek(offset)
                        continue
                    record = _read_record(handle, end - offset)
                    if record is None:  # damaged since start-up
                        self._damaged_while_draining(segment, offset)
                        handle.seek(offset)
                        continue
                    lines, record_size = record
                    skip = cursor.line if (segment, offset) == (cursor.segment, cursor.offset) else 0
                    batch.entries.append(_Entry(segment, offset, offset + record_size, skip, lines[skip:]))
                    size += record_size
                    offset += record_size
            if size >= max_bytes:
                break
        return batch

    def _damaged_while_draining(self, segment: int, offset: int) -> None:
        with self._path(segment).open("rb") as handle:
            data = handle.read(self._valid_end[segment])
        if offset >= len(data):
            log.error("spool segment %s lost its end while the bridge ran: it is %d bytes, %d were written; "
                      "what was after byte %d (acknowledged, not yet delivered) is lost", self._path(segment).name,
                      len(data), self._valid_end[segment], offset)
            self._gaps[segment][offset] = self._valid_end[segment]
        else:
            gap = _gap_at(data, offset)
            if _record_at(data, offset) is not None:
                raise OSError(f"spool segment {self._path(segment).name} changes under the bridge")
            self._gaps[segment][gap.start] = gap.end
            self._report(segment, gap)
        self._recount()

    def _report(self, segment: int, gap: _Gap) -> None:
        log.error(_describe(self._path(segment).name, gap))
        if not gap.incomplete:  # a torn last record may never have been acknowledged: not counted as lost
            self.lost_records += gap.records
            self.lost_bytes += gap.end - gap.start
            self._on_lost(gap.records)

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
                # Past any damage that follows: it is reported once, not again at every start.
                cursor = Cursor(entry.segment, self._gaps.get(entry.segment, {}).get(entry.end, entry.end), 0)
            else:
                cursor = Cursor(entry.segment, entry.offset, entry.skip + remaining)
                break
        self.pending_results -= delivered
        self._cursor = cursor
        self._save_cursor()
        for segment in [s for s in self._valid_end if s < cursor.segment]:
            self._path(segment).unlink(missing_ok=True)
            del self._valid_end[segment]
            self._gaps.pop(segment, None)
        if self.pending_results == 0:
            self.pending_bytes = 0
            self.oldest_appended_at = None
        else:
            self.oldest_appended_at = self._appended_at(cursor)

    def _appended_at(self, cursor: Cursor) -> float | None:
        for segment in sorted(s for s in self._valid_end if s >= cursor.segment):
            offset = cursor.offset if segment == cursor.segment else 0
            offset = self._gaps.get(segment, {}).get(offset, offset)
            if offset < self._valid_end[segment]:
                with self._path(segment).open("rb") as handle:
                    handle.seek(offset)
                    header = handle.read(_HEADER.size)
                if len(header) == _HEADER.size:
                    return _HEADER.unpack(header)[3] / 1000
        return None

    def _save_cursor(self) -> None:
        tmp = self.directory / "cursor.tmp"
        cursor = self._cursor
        with tmp.open("w") as handle:
            json.dump({"segment": cursor.segment, "offset": cursor.offset, "line": cursor.line,
                       "crc": _cursor_crc(cursor)}, handle)
            if self.fsync is FsyncPolicy.ALWAYS:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, self.directory / "cursor")

    def close(self) -> None:
        if self._writer is not None:
            self.sync()
            os.close(self._writer)
            self._writer = None


def _read_record(handle: BinaryIO, available: int) -> tuple[list[bytes], int] | None:
    """The record at the handle's position and its size, reading no more than ``available`` bytes; None if it
    does not check."""
    header = handle.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    magic, length, crc, stamp = _HEADER.unpack(header)
    if _HEADER.size + length > available:
        return None
    payload = handle.read(length)
    if len(payload) < length:
        return None
    lines = _decode(magic, crc, stamp, payload)
    return None if lines is None else (lines, _HEADER.size + length)
