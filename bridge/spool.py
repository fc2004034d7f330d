"""The on-disk spool: where acknowledged lines wait while the engine does not read its pipe.

Append-only segment files; each record holds the lines of one request, framed with its length and a CRC32, so a
record torn by a crash is detected, logged and skipped, never delivered half. The delivered position (segment,
record offset, lines of that record already delivered) is kept in ``cursor``, replaced atomically.

This class does blocking file I/O: the delivery task calls it through ``asyncio.to_thread``. It is not
thread-safe; only the delivery task uses it.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("naemon_bridge.spool")

_MAGIC = b"NBS1"
_HEADER = struct.Struct(">4sII")  # magic, payload length, crc32(payload)
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


def _frame(lines: Sequence[bytes]) -> bytes:
    payload = b"\n".join(lines)
    return _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload


class Spool:
    def __init__(self, directory: Path, *, fsync: bool = True, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.pending_results = 0
        self.pending_bytes = 0
        self._cursor = Cursor()
        self._valid_end: dict[int, int] = {}  # segment -> end of its last intact record
        self._writer: int | None = None
        self._writer_segment = 0

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
            end, results, size = self._scan(segment, start)
            self._valid_end[segment] = end
            self.pending_results += results
            self.pending_bytes += size
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

    def _scan(self, segment: int, start: int) -> tuple[int, int, int]:
        """End of the last intact record from ``start``, and the results and bytes pending there."""
        with self._path(segment).open("rb") as handle:
            data = handle.read()
        offset, results = start, 0
        first = True
        while offset < len(data):
            record = self._record_at(data, offset)
            if record is None:
                log.error("spool segment %s: torn or corrupt record at byte %d; %d bytes skipped (never "
                          "acknowledged: the bridge stopped while writing it)", self._path(segment).name, offset,
                          len(data) - offset)
                break
            lines, end = record
            skip = self._cursor.line if first and segment == self._cursor.segment else 0
            results += max(0, len(lines) - skip)
            first = False
            offset = end
        return offset, results, offset - start

    @staticmethod
    def _record_at(data: bytes, offset: int) -> tuple[list[bytes], int] | None:
        header_end = offset + _HEADER.size
        if header_end > len(data):
            return None
        magic, length, crc = _HEADER.unpack_from(data, offset)
        end = header_end + length
        if magic != _MAGIC or end > len(data):
            return None
        payload = data[header_end:end]
        if zlib.crc32(payload) != crc:
            return None
        return payload.split(b"\n"), end

    # -- writing -------------------------------------------------------------------------------------------------
    def append(self, requests: Sequence[Sequence[bytes]]) -> None:
        """Append each request's lines as one record; durable (fsync) before returning when ``fsync`` is set."""
        data = b"".join(_frame(lines) for lines in requests)
        if self._writer is None or self._valid_end.get(self._writer_segment, 0) >= self.segment_bytes:
            self._roll()
        assert self._writer is not None
        written = 0
        while written < len(data):
            written += os.write(self._writer, data[written:])
        if self.fsync:
            os.fsync(self._writer)
        self._valid_end[self._writer_segment] += len(data)
        self.pending_results += sum(len(lines) for lines in requests)
        self.pending_bytes += len(data)

    def _roll(self) -> None:
        if self._writer is not None:
            os.close(self._writer)
            self._writer_segment += 1
        path = self._path(self._writer_segment)
        self._writer = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._valid_end[self._writer_segment] = os.fstat(self._writer).st_size
        if self.fsync:
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
                    _, length, _ = _HEADER.unpack(header)
                    record = self._record_at(header + handle.read(length), 0)
                    if record is None:  # scanned intact at start-up: only a disk fault gets here
                        raise OSError(f"spool segment {self._path(segment).name} changed under the bridge")
                    lines, record_size = record
                    skip = cursor.line if segment == cursor.segment and offset == cursor.offset else 0
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
                self.pending_bytes -= entry.end - entry.offset if entry.skip == 0 else 0
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

    def _save_cursor(self) -> None:
        tmp = self.directory / "cursor.tmp"
        with tmp.open("w") as handle:
            json.dump({"segment": self._cursor.segment, "offset": self._cursor.offset, "line": self._cursor.line},
                      handle)
            if self.fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, self.directory / "cursor")

    def close(self) -> None:
        if self._writer is not None:
            os.close(self._writer)
            self._writer = None
