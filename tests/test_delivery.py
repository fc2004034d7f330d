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
from bridge.engine.transport import PIPE_BUF, FifoTransport, pack
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
