"""Spooled-write throughput with each spool.fsync policy, beside direct writes into a drained FIFO (baseline).

Drives the real delivery task (one task owning pipe and spool, as in the daemon) with concurrent submitters, one
result per submit, as concurrent HTTP requests would. Prints results/s, submit latency p50/p99 and RSS.

    python bench/spool_bench.py [--results 20000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench.common import drain  # noqa: E402
from bridge.core.values import FsyncPolicy  # noqa: E402
from bridge.engine.delivery import Delivery  # noqa: E402
from bridge.engine.spool import Spool  # noqa: E402
from bridge.engine.transport import FifoTransport  # noqa: E402

LINE = b"[1700000000] PROCESS_SERVICE_CHECK_RESULT;host-0001;service-01;0;OK - all fine|time=0.01s;1;2"


async def run_case(directory: Path, policy: FsyncPolicy, engine_reads: bool, results: int,
                   concurrency: int) -> tuple[float, list[float]]:
    fifo = directory / "engine.cmd"
    os.mkfifo(fifo)
    stop = asyncio.Event()
    reader = asyncio.create_task(drain(fifo, stop)) if engine_reads else None
    delivery = Delivery(FifoTransport(fifo), Spool(directory / "spool", fsync=policy), max_spool_bytes=1 << 34)
    await delivery.start()
    latencies: list[float] = []
    per_worker = results // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            started = time.perf_counter()
            await delivery.submit([LINE])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if not engine_reads:
        assert delivery.spool.pending_results == per_worker * concurrency, "every result must be in the spool"
    await delivery.stop()
    stop.set()
    if reader is not None:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # wake the reader so it sees stop
        reader.cancel()
    return per_worker * concurrency / elapsed, latencies


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100)[int(fraction * 100) - 1] if len(values) > 1 else values[0]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the engine-down warnings are the point of the spool cases
    cases = [("FIFO, engine reading (baseline)", FsyncPolicy.ALWAYS, True)] + [
        (f"spool, fsync = {policy.value}", policy, False) for policy in FsyncPolicy]
    rows = []
    for label, policy, engine_reads in cases:
        with tempfile.TemporaryDirectory(prefix="spool-bench-") as tmp:
            rate, latencies = await run_case(Path(tmp), policy, engine_reads, args.results, args.concurrency)
        rows.append((label, rate, percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000))
    baseline = rows[0][1]
    print(f"{args.results} results, {args.concurrency} concurrent submitters, one result per submit")
    print(f"{'case':<34}{'results/s':>12}{'vs baseline':>13}{'p50 ms':>9}{'p99 ms':>9}")
    for label, rate, p50, p99 in rows:
        print(f"{label:<34}{rate:>12,.0f}{rate / baseline:>12.0%}{p50:>9.2f}{p99:>9.2f}")
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS {rss_mib:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
