"""The on-disk spool: order, the delivered position across restarts, damage skipped and reported at its cost."""

from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.core.values import FsyncPolicy
from bridge.engine.spool import Spool


def lines(*texts: str) -> list[bytes]:
    return [t.encode() for t in texts]


def drain(spool: Spool) -> list[bytes]:
    delivered: list[bytes] = []
    while spool.pending_results:
        batch = spool.read_batch(max_bytes=64)
        delivered += batch.lines
        spool.commit(batch, len(batch.lines))
    return delivered


def test_records_come_back_in_order_and_segments_are_removed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, segment_bytes=100)
    spool.open()
    for i in range(20):
        spool.append([lines(f"request {i} line 1", f"request {i} line 2")])
    assert spool.pending_results == 40
    assert drain(spool) == [f"request {i} line {n}".encode() for i in range(20) for n in (1, 2)]
    assert spool.pending_results == 0
    assert len(list(tmp_path.glob("*.seg"))) <= 1


def test_the_delivered_position_survives_a_restart_even_inside_a_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append([lines("a1", "a2", "a3"), lines("b1")])
    batch = spool.read_batch()
    spool.commit(batch, 2)  # a1 and a2 reached the engine, then the process died
    again = Spool(tmp_path)
    again.open()
    assert again.pending_results == 2
    assert drain(again) == lines("a3", "b1")
    again.append([lines("c1")])
    third = Spool(tmp_path)
    third.open()
    assert drain(third) == lines("c1")


@pytest.mark.parametrize("cut", [1, 5, 13])
def test_a_torn_tail_is_reported_and_skipped(tmp_path: Path, cut: int, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append([lines("first")])
    spool.append([lines("torn", "request")])
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    segment.write_bytes(segment.read_bytes()[:-cut])
    reopened = Spool(tmp_path)
    with caplog.at_level(logging.ERROR, logger="naemon_bridge.spool"):
        reopened.open()
    assert "incomplete last record" in caplog.text
    assert drain(reopened) == lines("first")


def test_a_corrupted_record_is_never_delivered(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append([lines("good")])
    spool.append([lines("flipped")])
    spool.close()
    segment = next(tmp_path.glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[-2] ^= 0xFF
    segment.write_bytes(bytes(data))
    reopened = Spool(tmp_path)
    reopened.open()
    assert drain(reopened) == lines("good")


def test_the_oldest_results_age_follows_the_cursor(tmp_path: Path) -> None:
    now = [1000.0]
    spool = Spool(tmp_path, clock=lambda: now[0])
    spool.open()
    assert spool.oldest_appended_at is None
    spool.append([lines("a")])
    now[0] = 1010.0
    spool.append([lines("b")])
    assert spool.oldest_appended_at == 1000.0
    batch = spool.read_batch(max_bytes=1)
    spool.commit(batch, 1)
    assert spool.oldest_appended_at == 1010.0
    reopened = Spool(tmp_path)
    reopened.open()
    assert reopened.oldest_appended_at == 1010.0
    drain(reopened)
    assert reopened.oldest_appended_at is None


@pytest.mark.parametrize("policy", list(FsyncPolicy))
def test_every_fsync_policy_keeps_what_a_process_crash_leaves(tmp_path: Path, policy: FsyncPolicy) -> None:
    spool = Spool(tmp_path, fsync=policy)
    spool.open()
    spool.append([lines("x", "y")])
    # no close(): the process "dies" here; the kernel still holds what was written
    reopened = Spool(tmp_path, fsync=policy)
    reopened.open()
    assert drain(reopened) == lines("x", "y")


# -- damage: each record checks on its own, so damage costs only the records it touched ---------------------------

def result(number: int) -> bytes:
    return f"[1700000000] PROCESS_SERVICE_CHECK_RESULT;host;svc-{number:03d};0;output {number:03d}".encode()


def spool_of(directory: Path, count: int) -> Path:
    """``count`` one-result requests in one segment; returns the segment."""
    spool = Spool(directory)
    spool.open()
    for number in range(count):
        spool.append([[result(number)]])
    spool.close()
    return next(directory.glob("*.seg"))


def _reopened(directory: Path) -> Spool:
    spool = Spool(directory)
    spool.open()
    return spool


def reopen(directory: Path, caplog: pytest.LogCaptureFixture) -> Spool:
    spool = Spool(directory)
    with caplog.at_level(logging.INFO, logger="naemon_bridge.spool"):
        spool.open()
    return spool


def record_size() -> int:
    return Spool.size_of([[result(0)]])


def test_one_flipped_byte_mid_segment_costs_one_record_and_the_log_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    segment = spool_of(tmp_path, 200)
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0x01
    segment.write_bytes(bytes(data))
    spool = reopen(tmp_path, caplog)
    lost = len(data) // 2 // record_size()
    assert spool.pending_results == 199
    assert drain(spool) == [result(n) for n in range(200) if n != lost]
    start = lost * record_size()
    assert (f"spool segment {segment.name}: bytes {start}-{start + record_size()} ({record_size()} bytes) are "
            f"damaged: 1 acknowledged record (one request's results) is lost") in caplog.text
    assert "never acknowledged" not in caplog.text
    assert spool.lost_records == 1 and spool.lost_bytes == record_size()


def test_a_damaged_length_field_costs_its_record_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    segment = spool_of(tmp_path, 200)
    data = bytearray(segment.read_bytes())
    third = 2 * record_size()
    data[third + 4:third + 8] = b"\x7f\xff\xff\xff"  # the length of the third record: far past the end
    segment.write_bytes(bytes(data))
    spool = reopen(tmp_path, caplog)
    assert drain(spool) == [result(n) for n in range(200) if n != 2]
    assert f"bytes {2 * record_size()}-{3 * record_size()} ({record_size()} bytes) are damaged: at least 1 " \
        "acknowledged record" in caplog.text
    assert "PROCESS_SERVICE_CHECK_RESULT;host;svc-002" in caplog.text  # which result it was, as far as legible


@pytest.mark.parametrize("cursor", [
    {"segment": 1, "offset": 10**6, "line": 0},  # as the previous version wrote it: no checksum
    {"segment": 1, "offset": 10**6, "line": 0, "crc": 12345},  # a checksum that does not match
    {"segment": 1, "offset": 7, "line": 0},  # inside a record
])
def test_a_cursor_that_does_not_point_at_a_record_delivers_again_rather_than_lose(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, cursor: dict[str, int]) -> None:
    segment = spool_of(tmp_path, 200)
    assert segment.stem == f"{cursor['segment']:012d}"
    (tmp_path / "cursor").write_text(json.dumps(cursor))
    spool = reopen(tmp_path, caplog)
    assert drain(spool) == [result(n) for n in range(200)]
    assert "may reach the engine twice" in caplog.text


def test_the_cursor_carries_a_checksum_and_a_sound_one_is_followed(tmp_path: Path) -> None:
    spool_of(tmp_path, 10)
    spool = Spool(tmp_path)
    spool.open()
    batch = spool.read_batch(max_bytes=1)
    spool.commit(batch, 1)
    assert "crc" in json.loads((tmp_path / "cursor").read_text())
    assert drain(_reopened(tmp_path)) == [result(n) for n in range(1, 10)]


def test_a_cut_segment_behind_a_sound_cursor_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    segment = spool_of(tmp_path, 10)
    spool = _reopened(tmp_path)
    batch = spool.read_batch(max_bytes=5 * record_size())
    spool.commit(batch, 5)
    spool.close()
    segment.write_bytes(segment.read_bytes()[:3 * record_size()])
    again = reopen(tmp_path, caplog)
    assert drain(again) == []
    assert f"spool segment {segment.name} is {3 * record_size()} bytes, shorter than its delivered position" \
        in caplog.text


def test_damage_found_while_draining_is_skipped_and_the_count_stays_true(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    segment = spool_of(tmp_path, 50)
    spool = reopen(tmp_path, caplog)
    data = bytearray(segment.read_bytes())
    data[30 * record_size() + 25] ^= 0x40  # after start-up: a disk that went bad
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR, logger="naemon_bridge.spool"):
        assert drain(spool) == [result(n) for n in range(50) if n != 30]
    assert spool.pending_results == 0 and spool.pending_bytes == 0
    assert "1 acknowledged record (one request's results) is lost" in caplog.text


def test_a_damage_already_reported_is_not_reported_again_after_its_records_were_delivered(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    segment = spool_of(tmp_path, 5)
    data = bytearray(segment.read_bytes())
    data[2 * record_size() + 30] ^= 0x01
    segment.write_bytes(bytes(data))
    spool = reopen(tmp_path, caplog)
    batch = spool.read_batch(max_bytes=2 * record_size())
    assert batch.lines == [result(0), result(1)]
    spool.commit(batch, 2)
    caplog.clear()
    again = reopen(tmp_path, caplog)
    assert "damaged" not in caplog.text
    assert drain(again) == [result(3), result(4)]


# -- the previous format: an upgrade with a non-empty spool loses nothing ------------------------------------------

def old_frame(lines: list[bytes], appended_at: float) -> bytes:
    """A record as the previous version framed it: NBS3, the CRC over time and payload only."""
    payload = b"".join(struct.pack(">I", len(line)) + line for line in lines)
    stamp = int(appended_at * 1000)
    return struct.pack(">4sIIQ", b"NBS3", len(payload), zlib.crc32(struct.pack(">Q", stamp) + payload), stamp) \
        + payload


def test_a_spool_of_the_previous_format_is_delivered_then_extended(tmp_path: Path) -> None:
    records = [old_frame([result(n), result(100 + n)], 1700000000 + n) for n in range(10)]
    (tmp_path / f"{3:012d}.seg").write_bytes(b"".join(records))
    # The previous cursor: no checksum, one and a half records delivered.
    (tmp_path / "cursor").write_text(json.dumps({"segment": 3, "offset": len(records[0]), "line": 1}))
    spool = _reopened(tmp_path)
    assert spool.pending_results == 17
    assert spool.oldest_appended_at == 1700000001
    spool.append([[b"new"]])
    assert drain(spool) == [result(101)] + [r for n in range(2, 10) for r in (result(n), result(100 + n))] \
        + [b"new"]


def test_damage_in_a_segment_of_the_previous_format_costs_its_record_only(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = bytearray(b"".join(old_frame([result(n)], 1700000000) for n in range(20)))
    data[len(data) // 2] ^= 0x10
    (tmp_path / f"{1:012d}.seg").write_bytes(bytes(data))
    spool = reopen(tmp_path, caplog)
    assert drain(spool) == [result(n) for n in range(20) if n != 10]
    assert "1 acknowledged record (one request's results) is lost" in caplog.text


# -- a failed append leaves nothing behind -------------------------------------------------------------------------

_FAILED_APPEND = """
import resource, sys
from pathlib import Path
from bridge.engine.spool import Spool
spool = Spool(Path(sys.argv[1]))
spool.open()
spool.append([[b"before"]])
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (spool.size_of([[b"before"]]) + 30, hard))
try:
    spool.append([[b"x" * 100]])  # the file may grow by 30 bytes only: written in part, then EFBIG
except OSError as exc:
    print("refused:", exc.strerror)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
spool.append([[b"after"]])
spool.close()
"""


def test_a_failed_append_is_undone_so_later_records_do_not_follow_a_torn_one(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A real file-size limit (RLIMIT_FSIZE) in a child process: the kernel writes part of the record, then refuses.
    done = subprocess.run([sys.executable, "-c", _FAILED_APPEND, str(tmp_path)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert done.returncode == 0, done.stderr
    assert "refused: File too large" in done.stdout
    spool = reopen(tmp_path, caplog)
    assert drain(spool) == lines("before", "after")
    assert "damaged" not in caplog.text and "incomplete" not in caplog.text


# -- properties: random records, random damage ---------------------------------------------------------------------

# Lines as the spool may hold them, markers of both formats included: resynchronising must not trip over them.
_LINE = st.one_of(st.binary(max_size=40), st.sampled_from([b"NBS4", b"NBS3", b"xxNBS4\x00\x00\x00\x10"]),
                  st.builds(lambda a, b: a + b"NBS4" + b, st.binary(max_size=12), st.binary(max_size=12)))
_REQUESTS = st.lists(st.lists(_LINE, min_size=1, max_size=3), min_size=1, max_size=25)


def written_and_partly_delivered(directory: Path, requests: list[list[bytes]], data: st.DataObject
                                 ) -> tuple[list[tuple[int, int, int, list[bytes]]], int]:
    """The spool after ``requests`` were appended and some of their lines delivered: every record's segment,
    offset, end and lines, and how many lines were delivered."""
    spool = Spool(directory, segment_bytes=data.draw(st.integers(40, 400), label="segment_bytes"))
    spool.open()
    for request in requests:
        spool.append([request])
    spool.close()
    layout = [(e.segment, e.offset, e.end, e.lines) for e in _reopened(directory).read_batch(1 << 30).entries]
    delivered = data.draw(st.integers(0, sum(map(len, requests))), label="delivered")
    spool = _reopened(directory)
    left = delivered
    while left:
        batch = spool.read_batch(max_bytes=data.draw(st.integers(1, 300), label="batch bytes"))
        spool.commit(batch, min(left, len(batch.lines)))
        left -= min(left, len(batch.lines))
    spool.close()
    return layout, delivered


def undelivered(layout: list[tuple[int, int, int, list[bytes]]], delivered: int) -> list[list[bytes]]:
    """Each record's lines not delivered yet."""
    result, before = [], 0
    for _, _, _, record_lines in layout:
        result.append(record_lines[max(0, delivered - before):])
        before += len(record_lines)
    return result


@settings(max_examples=100, deadline=None)
@given(requests=_REQUESTS, data=st.data())
def test_every_record_the_damage_did_not_touch_is_recovered_in_order(requests: list[list[bytes]],
                                                                      data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(prefix="spool-damage-") as tmp:
        directory = Path(tmp)
        layout, delivered = written_and_partly_delivered(directory, requests, data)
        segments = sorted(directory.glob("*.seg"))
        before = {path.name: path.read_bytes() for path in segments}
        for _ in range(data.draw(st.integers(1, 3), label="damages")):
            path = data.draw(st.sampled_from(segments), label="segment")
            content = bytearray(path.read_bytes())
            kind = data.draw(st.sampled_from(["flip", "truncate", "length", "overwrite"]), label="kind")
            at = data.draw(st.integers(0, max(0, len(content) - 1)), label="at")
            if kind == "flip" and content:
                content[at] ^= data.draw(st.integers(1, 255), label="mask")
            elif kind == "truncate":
                del content[at:]
            elif kind == "length":
                starts = [offset for segment, offset, _, _ in layout
                          if f"{segment:012d}.seg" == path.name and offset + 8 <= len(content)]
                if starts:
                    start = data.draw(st.sampled_from(starts), label="record")
                    content[start + 4:start + 8] = data.draw(st.binary(min_size=4, max_size=4), label="length")
            elif kind == "overwrite":
                noise = data.draw(st.binary(min_size=1, max_size=64), label="noise")
                content[at:at + len(noise)] = noise[:max(0, len(content) - at)]
            path.write_bytes(bytes(content))
        after = {path.name: path.read_bytes() for path in segments}

        def intact(segment: int, offset: int, end: int) -> bool:
            name = f"{segment:012d}.seg"
            return name in after and after[name][offset:end] == before[name][offset:end] and end <= len(after[name])

        expected = [line for (segment, offset, end, _), left in zip(layout, undelivered(layout, delivered),
                                                                    strict=True)
                    if intact(segment, offset, end) for line in left]
        assert drain(_reopened(directory)) == expected


@settings(max_examples=60, deadline=None)
@given(requests=_REQUESTS, data=st.data())
def test_a_damaged_cursor_delivers_again_but_loses_nothing(requests: list[list[bytes]], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(prefix="spool-cursor-") as tmp:
        directory = Path(tmp)
        layout, delivered = written_and_partly_delivered(directory, requests, data)
        cursor = directory / "cursor"
        if not cursor.exists():
            return  # nothing delivered: no cursor to damage
        content = bytearray(cursor.read_bytes())
        kind = data.draw(st.sampled_from(["flip", "truncate", "garbage", "no checksum"]), label="kind")
        if kind == "flip":
            content[data.draw(st.integers(0, len(content) - 1))] ^= data.draw(st.integers(1, 255), label="mask")
        elif kind == "truncate":
            del content[data.draw(st.integers(0, len(content) - 1), label="at"):]
        elif kind == "garbage":
            content = bytearray(data.draw(st.binary(max_size=80), label="garbage"))
        else:  # as the previous version wrote it
            saved = json.loads(content)
            del saved["crc"]
            content = bytearray(json.dumps(saved).encode())
        cursor.write_bytes(bytes(content))
        everything = [line for _, _, _, record_lines in layout for line in record_lines]
        got = drain(_reopened(directory))
        # At least once: what was not delivered comes, in order, possibly behind some of what was.
        assert len(got) >= len(everything) - delivered
        assert got == everything[len(everything) - len(got):]
        if kind == "no checksum":
            assert len(got) == len(everything) - delivered
