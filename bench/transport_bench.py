"""Results/s into the engine: a drained FIFO (baseline) vs Naemon's query handler, through the real delivery task.

Without a Naemon on this machine the query-handler row runs against tests/qh_peer.py, a stand-in that answers as
Naemon 1.5.2 does (one request per read): it measures the bridge's side, not Naemon's. Point --query-socket at a
running Naemon's naemon.qh to measure the real thing (engine.md measured ~16-20k results/s on one connection).

    python bench/transport_bench.py [--results 20000] [--connections 1 4] [--query-socket PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import drain  # noqa: E402
from bridge.engine.delivery import Delivery  # noqa: E402
from bridge.engine.spool import Spool  # noqa: E402
from bridge.engine.transport import FifoTransport, QueryTransport, Transport  # noqa: E402
from tests.qh_peer import QueryHandlerPeer  # noqa: E402

HOSTS = [f"host-{i:03d}" for i in range(100)]


def line(n: int) -> bytes:
    return f"[1700000000] PROCESS_SERVICE_CHECK_RESULT;{HOSTS[n % 100]};svc;0;OK - fine {n}|t=0.01s".encode()


async def run(transport: Transport, directory: Path, results: int, concurrency: int) -> float:
    delivery = Delivery(transport, Spool(directory / "spool"), max_spool_bytes=1 << 34)
    await delivery.start()
    per_worker = results // concurrency

    async def worker(offset: int) -> None:
        for n in range(per_worker):
            await delivery.submit([line(offset * per_worker + n)])

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    assert delivery.spool.pending_results == 0, "the engine side fell behind into the spool"
    await delivery.stop()
    return per_worker * concurrency / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--query-socket", type=Path, help="a running Naemon's query socket")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory(prefix="transport-bench-") as tmp:
        directory = Path(tmp)
        fifo = directory / "engine.cmd"
        os.mkfifo(fifo)
        stop = asyncio.Event()
        reader = asyncio.create_task(drain(fifo, stop))
        rows.append(("FIFO, drained (baseline)", await run(FifoTransport(fifo), directory / "a", args.results,
                                                           args.concurrency)))
        stop.set()
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.cancel()
        peer = None
        socket_path = args.query_socket
        if socket_path is None:
            socket_path = directory / "naemon.qh"
            peer = QueryHandlerPeer(socket_path, set(HOSTS), {(h, "svc") for h in HOSTS})
            await peer.start()
        what = "Naemon" if peer is None else "stand-in peer"
        for count in args.connections:
            rate = await run(QueryTransport(socket_path, count), directory / f"q{count}", args.results,
                             args.concurrency)
            rows.append((f"query handler ({what}), {count} conn.", rate))
        if peer is not None:
            assert peer.pipelined == 0
            await peer.stop()
    baseline = rows[0][1]
    print(f"{args.results} results, {args.concurrency} concurrent submitters, one result per submit")
    print(f"{'transport':<42}{'results/s':>12}{'vs baseline':>13}")
    for label, rate in rows:
        print(f"{label:<42}{rate:>12,.0f}{rate / baseline:>12.0%}")


if __name__ == "__main__":
    asyncio.run(main())
