"""The two rows issue 22 left open, each run ``--runs`` times against one daemon (one process), medians printed:

1. ``POST /api/results`` with 1,000 results a request, 32 connections: p50, p99 and their ratio (goal p99 ≤ 3 × p50),
   and the same bodies to the do-nothing aiohttp handler (``bench/noop_server.py``: it only parses the JSON), whose
   tail under the same load is the loop's and the load generator's, not the bridge's;
2. Alignak ``PATCH /host`` with 100 services a request beside ``POST /api/results`` (same daemon, taking turns):
   results/s of each and their ratio (goal ≥ 1.0×), and the daemon's CPU-seconds per 100,000 results of each.

    python bench/tail_bench.py [--seconds 8] [--runs 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench.common import ROOT, Bridge, cat_reader, free_port, wait_port  # noqa: E402
from bench.http_bench import ALIGNAK, BATCH, SINGLE, wrk  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tail-bench-") as tmp:
        directory = Path(tmp)
        fifo = directory / "engine.cmd"
        os.mkfifo(fifo)
        reader = cat_reader(fifo)
        bridge = Bridge(directory / "bridge", fifo)
        noop_port = free_port()
        noop = subprocess.Popen([sys.executable, str(ROOT / "bench" / "noop_server.py"), str(noop_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(noop_port)
            wrk(bridge.url, SINGLE, 1, args.connections, directory)  # warm up
            ratios, alignak_rates, batch_rates, alignak_cpu, batch_cpu, noop_ratios = [], [], [], [], [], []
            for run in range(args.runs):
                baseline = wrk(f"http://127.0.0.1:{noop_port}", BATCH, args.seconds, args.connections, directory)
                noop_ratios.append(baseline.p99 / baseline.p50)
                before = cpu_seconds(bridge.process.pid)
                batch = wrk(bridge.url, BATCH, args.seconds, args.connections, directory)
                used = cpu_seconds(bridge.process.pid) - before
                batch_cpu.append(used / (batch.requests * 1000 * args.seconds) * 100_000)
                before = cpu_seconds(bridge.process.pid)
                alignak = wrk(bridge.url, ALIGNAK, args.seconds, args.connections, directory)
                used = cpu_seconds(bridge.process.pid) - before
                alignak_cpu.append(used / (alignak.requests * 100 * args.seconds) * 100_000)
                ratios.append(batch.p99 / batch.p50)
                batch_rates.append(batch.requests * 1000)
                alignak_rates.append(alignak.requests * 100)
                print(f"run {run + 1}: do-nothing handler p50 {baseline.p50:.0f} ms p99 {baseline.p99:.0f} ms "
                      f"(p99/p50 {noop_ratios[-1]:.2f}); bridge batch p50 {batch.p50:.0f} ms p99 {batch.p99:.0f} ms "
                      f"(p99/p50 {ratios[-1]:.2f}), {batch_rates[-1]:,.0f} results/s, {batch_cpu[-1]:.2f} CPU-s "
                      f"per 100,000; Alignak {alignak_rates[-1]:,.0f} results/s, {alignak_cpu[-1]:.2f} CPU-s "
                      f"per 100,000 ({alignak_rates[-1] / batch_rates[-1]:.2f}x)", flush=True)
        finally:
            noop.terminate()
            noop.wait(30)
            bridge.stop()
            reader.kill()
            reader.wait()
    print(f"medians of {args.runs}: batch p99/p50 {statistics.median(ratios):.2f} (the do-nothing handler "
          f"{statistics.median(noop_ratios):.2f}); Alignak "
          f"{statistics.median(alignak_rates):,.0f} vs batch {statistics.median(batch_rates):,.0f} results/s "
          f"({statistics.median(a / b for a, b in zip(alignak_rates, batch_rates, strict=True)):.2f}x), "
          f"CPU-s per 100,000 "
          f"{statistics.median(alignak_cpu):.2f} vs {statistics.median(batch_cpu):.2f}")


if __name__ == "__main__":
    main()
