"""Every figure the README's performance table shows, in one run and one table: ``python -m bench``.

Needs Debian's wrk, hey, nagios4-core, nsca-ng-server, nsca-ng-client, nats-server and icinga2, and the classic
nsca and nsca-client unpacked into /opt/nsca-classic (``.ci/run`` installs them all). Each group of rows has its own
comparison measured in the same run: the do-nothing aiohttp handler for the HTTP rows, NSCA-ng for the batched rows
into a drained FIFO, the classic nsca 2.10 for the bridge's [nsca] listener, a raw writer for the rows into a real
Nagios 4, one process for the cluster's rows (edge -> JetStream -> sink, 1 and 3 replicas), the op5 single result
over TLS for NRDP's rows, and a real Icinga 2's API for the Icinga 2 row.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench import (  # noqa: E402
    cluster_bench,
    dialects_bench,
    engine_bench,
    http_bench,
    nsca_bench,
    nsca_classic_bench,
    scale_bench,
)
from bench.common import print_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk/hey row (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--results", type=int, default=100_000,
                        help="results for the NSCA-ng and Nagios rows (default 100,000)")
    parser.add_argument("--objects", type=int, default=100_000, help="distinct objects for the RSS row")
    parser.add_argument("--scale-objects", type=int, default=1_000_000,
                        help="objects for the objects.cache / freshness table rows at scale (default 1,000,000)")
    parser.add_argument("--json", type=Path, metavar="FILE",
                        help="also write every row, with all it measured, to FILE as JSON (to compare two runs)")
    args = parser.parse_args()
    results = max(1000, args.results // 1000 * 1000)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="naemon-bridge-bench-") as tmp:
        directory = Path(tmp)
        for part in ("http", "nsca", "nsca-classic", "engine", "cluster", "dialects", "scale"):
            (directory / part).mkdir()
        load_before = os.getloadavg()
        rows = http_bench.rows(directory / "http", args.seconds, args.connections, args.objects)
        rows += nsca_bench.rows(directory / "nsca", results)
        rows += nsca_classic_bench.rows(directory / "nsca-classic", min(results, 20_000))
        rows += engine_bench.rows(directory / "engine", results)
        rows += cluster_bench.rows(directory / "cluster", results)
        rows += dialects_bench.rows(directory / "dialects", args.seconds, args.connections)
        rows += scale_bench.rows(directory / "scale", args.scale_objects)
    title = (f"naemon-bridge {_version()} on {os.cpu_count()} cores: wrk 2 threads, {args.connections} connections, "
             f"{args.seconds} s a row; {results:,} results for the NSCA-ng and Nagios rows")
    elapsed = time.monotonic() - started
    # The load average before the run says whether others shared the machine (it should be near 0).
    notes = [f"({elapsed:.0f} s in all; load average before the run {load_before[0]:.1f})"]
    print_table(title, rows, notes)
    if args.json is not None:
        args.json.write_text(json.dumps({
            "title": title, "version": _version(), "cores": os.cpu_count(), "seconds": args.seconds,
            "connections": args.connections, "results": results, "objects": args.objects,
            "scale_objects": args.scale_objects, "load_average_before": load_before[0], "elapsed_s": elapsed,
            "rows": [dataclasses.asdict(row) for row in rows]}, indent=2) + "\n")


def _version() -> str:
    from bridge import __version__

    return __version__


if __name__ == "__main__":
    main()
