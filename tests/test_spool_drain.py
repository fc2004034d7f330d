"""A batch partly delivered and kept (the delivery task drains a full pipe a few pages at a time): what is left of
it is exactly what the spool would read next, and the spool ends as if each rest had been read anew."""

from __future__ import annotations

import fcntl
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bridge.engine.delivery as delivery_module
from bridge.engine.delivery import Delivery
from bridge.engine.spool import Spool, SpoolBatch
from bridge.engine.transport import FifoTransport
from tests.conftest import FifoReader, collect

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

_LINE = st.binary(min_size=1, max_size=20).filter(lambda line: b"\0" not in line)
_REQUESTS = st.lists(st.lists(_LINE, min_size=1, max_size=4), min_size=1, max_size=20)


def layout(batch: SpoolBatch) -> list[tuple[int, int, int, int, list[bytes]]]:
    return [(e.segment, e.offset, e.end, e.skip, e.lines) for e in batch.entries]


@settings(max_examples=100, deadline=None)
@given(requests=_REQUESTS, data=st.data())
def test_the_rest_of_a_kept_batch_is_what_the_spool_reads_next(requests: list[list[bytes]],
                                                               data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(prefix="spool-drain-") as tmp:
        kept = Spool(Path(tmp) / "kept", segment_bytes=data.draw(st.integers(40, 400), label="segment_bytes"))
        fresh = Spool(Path(tmp) / "fresh", segment_bytes=kept.segment_bytes)
        for spool in (kept, fresh):
            spool.open()
            for request in requests:
                spool.append([request])
        rest: SpoolBatch | None = None
        delivered: list[bytes] = []
        zeros = 0
        while kept.pending_results:
            batch = rest if rest is not None else kept.read_batch(data.draw(st.integers(1, 300), label="bytes"))
            reread = fresh.read_batch(1 << 30)
            assert layout(batch) == layout(reread)[:len(batch.entries)]
            # 0: the pipe took nothing (full); at most twice in a row, so the drain ends
            count = data.draw(st.integers(0 if zeros < 2 else 1, len(batch.lines)), label="delivered")
            zeros = zeros + 1 if count == 0 else 0
            delivered += batch.lines[:count]
            kept.commit(batch, count)
            fresh.commit(reread, count)
            rest = batch.after(count)
            rest = rest if rest.entries else None
            assert (kept.pending_results, kept.pending_bytes) == (fresh.pending_results, fresh.pending_bytes)
        assert delivered == [line for request in requests for line in request]
        for spool in (kept, fresh):
            spool.close()


async def test_a_batch_drained_into_a_pipe_that_takes_a_page_at_a_time_is_read_once_and_committed_once(
        fifo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its cursor is written once the batch is through (CURSOR_INTERVAL made long here: no clock in the test)."""
    monkeypatch.setattr(delivery_module, "CURSOR_INTERVAL", 1e9)
    delivery = Delivery(FifoTransport(fifo), Spool(tmp_path / "spool"), max_spool_bytes=1 << 30)
    await delivery.start()
    reads = commits = 0
    read_batch, commit = delivery.spool.read_batch, delivery.spool.commit

    def counted(*args: object, **kwargs: object) -> SpoolBatch:
        nonlocal reads
        reads += 1
        return read_batch(*args, **kwargs)  # type: ignore[arg-type]

    def committed(batch: SpoolBatch, count: int) -> None:
        nonlocal commits
        commits += 1
        commit(batch, count)

    delivery.spool.read_batch = counted  # type: ignore[method-assign]
    delivery.spool.commit = committed  # type: ignore[method-assign]
    sent = [f"[1] PROCESS_SERVICE_CHECK_RESULT;h;s;0;result {i:04d} {'x' * 100}".encode() for i in range(1000)]
    try:
        await delivery.submit(sent)  # nobody reads: spooled, one record of ~120 KB, one batch
        assert delivery.spool.pending_results == 1000
        reader = FifoReader(fifo)
        fcntl.fcntl(reader.fd, F_SETPIPE_SZ, 4096)  # a page: the drain goes ~30 times into a full pipe
        try:
            assert await collect(reader, 1000) == sent
        finally:
            reader.close()
        assert reads == 1 and commits == 1
        assert delivery.spool.pending_results == 0
    finally:
        await delivery.stop()
