"""The delivery task against a real FIFO: direct writes, spooling while nobody reads, draining in order."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.core.errors import SpoolFull
from bridge.engine.delivery import Delivery
from bridge.engine.spool import Spool
from bridge.engine.transport import FRAGMENT_MARKER, PIPE_BUF, FifoTransport, pack
from tests.conftest import FifoReader, collect

MAX = 1 << 30


@pytest.fixture
async def delivery(fifo: Path, tmp_path: Path) -> AsyncIterator[Delivery]:
    task = Delivery(FifoTransport(fifo), Spool(tmp_path / "spool"), max_spool_bytes=MAX)
    await task.start()
    yield task
    await task.stop()


def test_pack_keeps_writes_within_pipe_buf_and_lines_whole() -> None:
    lines = [b"x" * 1000] * 9 + [b"y" * 5000, b"z"]
    groups = pack(lines)
    assert [line for group in groups for line in group] == lines
    for group in groups:
        assert len(group) == 1 or sum(len(line) + 1 for line in group) <= PIPE_BUF


async def test_lines_go_straight_into_the_pipe_when_the_engine_reads(fifo: Path, delivery: Delivery) -> None:
    reader = FifoReader(fifo)
    try:
        await delivery.submit([b"[1] A;1", b"[1] A;2"])
        assert await collect(reader, 2) == [b"[1] A;1", b"[1] A;2"]
        assert delivery.spool.pending_results == 0
    finally:
        reader.close()


async def test_while_nobody_reads_lines_are_spooled_then_drained_in_order(fifo: Path, delivery: Delivery) -> None:
    for i in range(50):
        await delivery.submit([f"[1] LINE;{i}".encode()])  # ENXIO: no reader, so each is acknowledged from disk
    assert delivery.spool.pending_results == 50
    assert delivery.engine_reachable is False
    reader = FifoReader(fifo)
    try:
        await delivery.submit([b"[1] LINE;50"])
        got = await collect(reader, 51)
        assert got == [f"[1] LINE;{i}".encode() for i in range(51)]
        assert delivery.engine_reachable is True
    finally:
        reader.close()


async def test_a_full_pipe_spools_and_nothing_is_lost_or_reordered(fifo: Path, delivery: Delivery) -> None:
    reader = FifoReader(fifo)  # reads only when the test says: the 64 KiB pipe fills up
    try:
        sent = [f"[1] PROCESS_SERVICE_CHECK_RESULT;h;s;0;result {i:05d} {'x' * 100}".encode() for i in range(2000)]
        await asyncio.gather(*(delivery.submit(sent[i:i + 10]) for i in range(0, 2000, 10)))
        assert delivery.spool.pending_results > 0
        assert await collect(reader, 2000) == sent
    finally:
        reader.close()


async def test_a_busy_engine_that_reads_again_soon_gets_everything_through_the_pipe(fifo: Path,
                                                                                   delivery: Delivery) -> None:
    """Nagios empties its pipe in bursts: a full pipe while the engine still reads is waited out (up to
    busy_wait), not spooled; every request is answered once its lines are in the pipe."""
    reader = FifoReader(fifo)
    try:
        sent = [f"[1] PROCESS_SERVICE_CHECK_RESULT;h;s;0;result {i:05d} {'x' * 100}".encode() for i in range(2000)]
        submits = asyncio.gather(*(delivery.submit(sent[i:i + 10]) for i in range(0, 2000, 10)))
        await asyncio.sleep(0.3)  # the 64 KiB pipe is full and the engine is "busy" for a while
        assert not submits.done()
        assert await collect(reader, 2000) == sent
        await submits
        assert delivery.spool.pending_results == 0
        assert delivery.spool.pending_bytes == 0
    finally:
        reader.close()


async def test_a_line_longer_than_pipe_buf_arrives_whole(fifo: Path, delivery: Delivery) -> None:
    reader = FifoReader(fifo)
    try:
        long_line = b"[1] PROCESS_HOST_CHECK_RESULT;h;0;" + b"o" * 20_000
        await delivery.submit([b"[1] before", long_line, b"[1] after"])
        assert await collect(reader, 3) == [b"[1] before", long_line, b"[1] after"]
    finally:
        reader.close()


async def test_what_is_spooled_at_stop_is_delivered_after_a_restart(fifo: Path, tmp_path: Path) -> None:
    first = Delivery(FifoTransport(fifo), Spool(tmp_path / "spool"), max_spool_bytes=MAX)
    await first.start()
    await first.submit([b"[1] kept;1", b"[1] kept;2"])
    await first.stop()
    reader = FifoReader(fifo)
    second = Delivery(FifoTransport(fifo), Spool(tmp_path / "spool"), max_spool_bytes=MAX)
    await second.start()
    try:
        await second.submit([b"[1] kept;3"])
        assert await collect(reader, 3) == [b"[1] kept;1", b"[1] kept;2", b"[1] kept;3"]
    finally:
        await second.stop()
        reader.close()


async def test_a_recreated_fifo_is_reopened(fifo: Path, delivery: Delivery) -> None:
    reader = FifoReader(fifo)
    await delivery.submit([b"[1] old"])
    assert await collect(reader, 1) == [b"[1] old"]
    reader.close()
    os.unlink(fifo)
    os.mkfifo(fifo, 0o660)  # the engine restarted with a new pipe (new inode)
    new_reader = FifoReader(fifo)
    try:
        await delivery.submit([b"[1] new"])
        assert await collect(new_reader, 1) == [b"[1] new"]
    finally:
        new_reader.close()


async def test_no_fifo_at_all_spools_until_the_engine_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "later.cmd"
    task = Delivery(FifoTransport(path), Spool(tmp_path / "spool"), max_spool_bytes=MAX)
    await task.start()
    try:
        await task.submit([b"[1] early;1"])  # ENOENT
        assert task.spool.pending_results == 1
        os.mkfifo(path, 0o660)
        reader = FifoReader(path)
        try:
            await task.submit([b"[1] early;2"])
            assert await collect(reader, 2) == [b"[1] early;1", b"[1] early;2"]
        finally:
            reader.close()
    finally:
        await task.stop()


async def test_a_full_spool_refuses_whole_requests_and_keeps_what_it_has(fifo: Path, tmp_path: Path) -> None:
    task = Delivery(FifoTransport(fifo), Spool(tmp_path / "spool"), max_spool_bytes=64 * 1024)
    await task.start()
    try:
        accepted = []
        for i in range(1000):  # nobody reads: everything is spooled until the spool is full
            request = [f"[1] R;{i};{n};{'x' * 200}".encode() for n in range(3)]
            try:
                await task.submit(request)
            except SpoolFull:
                break
            accepted += request
        else:
            raise AssertionError("the spool never filled up")
        assert task.spool.pending_bytes <= 64 * 1024
        assert task.spool.pending_results == len(accepted)  # the refused request left nothing behind
        reader = FifoReader(fifo)
        try:
            await task.submit([b"[1] after"])
            assert await collect(reader, len(accepted) + 1) == accepted + [b"[1] after"]
        finally:
            reader.close()
    finally:
        await task.stop()


async def test_health_reports_the_engine_and_the_spool(fifo: Path, tmp_path: Path) -> None:
    task = Delivery(FifoTransport(fifo), Spool(tmp_path / "spool"), max_spool_bytes=MAX, probe_interval=0.05)
    await task.start()
    try:
        await task.submit([b"[1] waiting"])
        health = task.health()
        assert (health.engine_reachable, health.spool_results) == (False, 1)
        assert health.oldest_age_s is not None and health.oldest_age_s >= 0
        reader = FifoReader(fifo)
        try:
            assert await collect(reader, 1) == [b"[1] waiting"]  # drained with no new traffic
            health = task.health()
            assert (health.engine_reachable, health.spool_results, health.oldest_age_s) == (True, 0, None)
        finally:
            reader.close()
        deadline = asyncio.get_running_loop().time() + 5
        while task.health().engine_reachable:  # the engine went away; the idle probe notices
            assert asyncio.get_running_loop().time() < deadline, "the probe never noticed the engine left"
            await asyncio.sleep(0.02)
    finally:
        await task.stop()


def long_line(tag: str, size: int = 18_000) -> bytes:
    """A result longer than PIPE_BUF: the pipe may take it in part."""
    return f"[1] PROCESS_SERVICE_CHECK_RESULT;h;{tag};0;{tag} ".encode() + tag[-1].encode() * size


async def within(seconds: float, awaitable: object) -> object:
    """Await with a deadline, so a delivery that hangs fails the test instead of hanging it."""
    return await asyncio.wait_for(awaitable, seconds)  # type: ignore[arg-type]


async def test_a_long_line_the_stalled_engine_takes_in_part_is_spooled_and_finished_before_anything_else(
        fifo: Path, tmp_path: Path) -> None:
    """The engine holds its pipe open but reads nothing (stopped): a long line goes in only in part. Its request is
    answered within busy_wait (the rest of it and what follows are spooled), and when the engine reads, the line
    is finished first: every line arrives whole, once, and none inside another."""
    marker = tmp_path / "spool" / FRAGMENT_MARKER
    task = Delivery(FifoTransport(fifo, fragment_marker=marker), Spool(tmp_path / "spool"), max_spool_bytes=MAX,
                    busy_wait=0.05)
    reader = FifoReader(fifo)  # open, not reading
    await task.start()
    try:
        sent = [long_line(f"svc{i}") for i in range(6)] + [b"[1] PROCESS_SERVICE_CHECK_RESULT;h;short;0;after"]
        await within(10, task.submit(sent))
        assert task.spool.pending_results > 0 and task.transport.unfinished and marker.exists()
        await within(10, task.submit([b"[1] PROCESS_SERVICE_CHECK_RESULT;h;short;0;next"]))
        assert task.health().stalled_s is not None
        got = await collect(reader, len(sent) + 1)
        assert got == sent + [b"[1] PROCESS_SERVICE_CHECK_RESULT;h;short;0;next"]
        assert not marker.exists() and task.health().stalled_s is None
    finally:
        await task.stop(timeout=5)
        reader.close()


async def test_a_fragment_left_by_an_earlier_run_is_ended_before_the_next_line(fifo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "spool" / FRAGMENT_MARKER
    reader = FifoReader(fifo)  # open, not reading
    first = Delivery(FifoTransport(fifo, fragment_marker=marker), Spool(tmp_path / "spool"), max_spool_bytes=MAX,
                     busy_wait=0.05)
    await first.start()
    sent = [long_line(f"svc{i}") for i in range(6)]
    await within(10, first.submit(sent))
    assert first.transport.unfinished
    await first.stop(timeout=5)  # the rest of the line cannot follow through another descriptor
    assert marker.exists()
    second = Delivery(FifoTransport(fifo, fragment_marker=marker), Spool(tmp_path / "spool"),
                      max_spool_bytes=MAX, busy_wait=0.05)
    await second.start()
    try:
        assert second.transport.unfinished
        nxt = b"[1] PROCESS_SERVICE_CHECK_RESULT;h;short;0;next"
        await within(10, second.submit([nxt]))
        got: list[bytes] = []
        deadline = asyncio.get_running_loop().time() + 10
        while nxt not in got:
            got += reader.read_lines()
            assert asyncio.get_running_loop().time() < deadline, f"{len(got)} lines so far"
            await asyncio.sleep(0.01)
        # Whole lines in order; the fragment arrives as a line of its own (a prefix of one sent again whole).
        whole = [line for line in got if line in sent or line == nxt]
        assert whole[-1] == nxt and [line for line in whole if line != nxt] == sent
        fragments = [line for line in got if line not in whole]
        assert len(fragments) == 1 and any(line.startswith(fragments[0]) for line in sent)
        assert not marker.exists()
    finally:
        await second.stop(timeout=5)
        reader.close()


async def test_a_stalled_engine_holds_no_request_longer_than_busy_wait(fifo: Path, tmp_path: Path) -> None:
    """Ordinary lines, the engine's pipe open and full: every request is spooled and answered in turn."""
    task = Delivery(FifoTransport(fifo), Spool(tmp_path / "spool"), max_spool_bytes=MAX, busy_wait=0.05)
    reader = FifoReader(fifo)  # open, not reading
    await task.start()
    try:
        sent = [f"[1] PROCESS_SERVICE_CHECK_RESULT;h;s;0;result {i:04d} {'x' * 420}".encode() for i in range(300)]
        for line in sent:  # one at a time, as clients send them
            await within(5, task.submit([line]))
        assert task.spool.pending_results > 100
        assert await collect(reader, len(sent)) == sent
    finally:
        await task.stop(timeout=5)
        reader.close()


async def test_a_fragment_whose_reader_went_away_is_ended_when_the_pipe_is_reopened(fifo: Path,
                                                                                      tmp_path: Path) -> None:
    """The engine dies with part of a long line read: the rest can no longer follow; after the pipe is reopened a
    line break comes before anything else, then the line again whole from the spool."""
    task = Delivery(FifoTransport(fifo, fragment_marker=tmp_path / "spool" / FRAGMENT_MARKER),
                    Spool(tmp_path / "spool"), max_spool_bytes=MAX, busy_wait=0.05, probe_interval=0.05)
    engine = FifoReader(fifo)  # open, not reading
    await task.start()
    try:
        sent = [long_line(f"svc{i}") for i in range(6)]
        await within(10, task.submit(sent))
        assert task.transport.unfinished
        engine.close()
        await within(10, task.submit([b"[1] PROCESS_SERVICE_CHECK_RESULT;h;short;0;while away"]))  # EPIPE: spooled
        assert task.engine_reachable is False
        engine = FifoReader(fifo)  # a new engine, a new pipe
        got = await collect(engine, 1)
        deadline = asyncio.get_running_loop().time() + 10
        while got[-1:] != [b"[1] PROCESS_SERVICE_CHECK_RESULT;h;short;0;while away"]:
            got += engine.read_lines()
            assert asyncio.get_running_loop().time() < deadline, f"{len(got)} lines so far"
            await asyncio.sleep(0.01)
        assert got[0] == b"", "a line break first"
        assert got[1] in sent and got[1:-1] == sent[sent.index(got[1]):]
    finally:
        await task.stop(timeout=5)
        engine.close()
