"""The on-disk spool: order, the delivered position across restarts, torn records skipped and reported."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

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
    assert "torn or corrupt record" in caplog.text
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
