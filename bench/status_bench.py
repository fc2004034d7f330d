"""Does an open status page slow result intake? op5 single results under wrk, with and without a browser-like
poller on ``/status`` every second, in the same run and against the same daemon (the two take turns three times;
each side's median run counts).

The poller does what the page's script does: one full ``GET /status``, then ``GET /status?part=panels`` every
second on one keep-alive connection with basic auth. The workload reports ``host-NNNN/svc-NN`` (1,000 hosts x 10
services), so the page's freshness table holds 10,000 objects: it sorts them all and renders the first 500 on each
poll. A row gives the poller's own answer times under that load.

    apt-get install wrk && python bench/status_bench.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench.common import AUTH, Bridge, Row, cat_reader, print_table, ratio  # noqa: E402
from bench.http_bench import PAIRS, SINGLE, Load, _median, wrk  # noqa: E402

POLL_INTERVAL = 1.0


class Poller:
    """A browser tab with the status page open: a full page, then its panels every second."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.times: list[float] = []  # ms per panels answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _get(self, connection: http.client.HTTPConnection, path: str) -> None:
        connection.request("GET", path, headers={"Authorization": AUTH, "Accept": "text/html"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}: {body[:300]!r}")

    def _run(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self._get(connection, "/status")
        while not self._stop.wait(POLL_INTERVAL):
            started = time.perf_counter()
            self._get(connection, "/status?part=panels")
            self.times.append((time.perf_counter() - started) * 1000)
        connection.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def rows(directory: Path, seconds: float, connections: int) -> list[Row]:
    fifo = directory / "engine.cmd"
    os.mkfifo(fifo)
    reader = cat_reader(fifo)
    bridge = Bridge(directory / "bridge", fifo)
    try:
        wrk(bridge.url, SINGLE, max(2, seconds / 2), connections, directory)  # warm up, and report every object
        alone: list[Load] = []
        polled: list[Load] = []
        times: list[float] = []
        for _ in range(PAIRS):
            alone.append(wrk(bridge.url, SINGLE, seconds, connections, directory))
            with Poller(bridge.port) as poller:
                polled.append(wrk(bridge.url, SINGLE, seconds, connections, directory))
            times += poller.times
    finally:
        bridge.stop()
        reader.kill()
        reader.wait()
    without, with_page = _median(alone), _median(polled)
    return [
        Row(f"op5 single result, {connections} connections, no /status poller", requests=without.requests,
            results=without.requests, p50=without.p50, p99=without.p99, versus="100%"),
        Row("... with a browser-like poller on /status every second", requests=with_page.requests,
            results=with_page.requests, p50=with_page.p50, p99=with_page.p99,
            versus=f"{ratio(with_page.requests, without.requests, '.0%')} of without (medians of {PAIRS} turns each)"),
        Row(f"the poller's GET /status?part=panels, 10,000 objects ({len(times)} polls)",
            p50=percentile(times, 0.5), p99=percentile(times, 0.99)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="status-bench-") as tmp:
        table = rows(Path(tmp), args.seconds, args.connections)
    print_table(f"wrk: 2 threads, {args.connections} connections, {args.seconds:g} s a row, keep-alive; the daemon "
                "writes into a drained FIFO", table)


if __name__ == "__main__":
    main()
