"""Freshness bookkeeping at scale: RSS and sweep time with 10k and 100k tracked objects.

Each size runs in a fresh child process, beside a baseline child that imports the same code and tracks nothing.
A "typical" sweep is one where 1 % of the objects fall due; the "all due" sweep is the worst case (every object
goes stale in the same second, as at a first start with a default threshold): the monitor handles it in chunks
and serves requests between them, so the longest stall is what a request can wait.

    python bench/freshness_bench.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.core.freshness import FreshnessTable  # noqa: E402
from bridge.engine.monitor import SWEEP_CHUNK  # noqa: E402


def measure(size: int) -> dict[str, float]:
    now = [1_000_000.0]
    table = FreshnessTable(lambda: now[0], default_threshold=600, submit_stale=True)
    started = time.perf_counter()
    for i in range(size):
        # One host per 10 services, as sites tend to have; a spread of last results over ten minutes.
        table.record(f"host-{i // 10:06d}.example.com", f"service {i % 10:02d}", 0, now[0] - (i % 600))
    record_s = time.perf_counter() - started
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    now[0] += 0.0  # a sweep with nothing due
    started = time.perf_counter()
    table.sweep()
    idle_ms = (time.perf_counter() - started) * 1000
    now[0] += 6  # 1 % of the objects are due
    started = time.perf_counter()
    typical = len(table.sweep())
    typical_ms = (time.perf_counter() - started) * 1000
    now[0] += 3600  # everything is due at once: the monitor sweeps in chunks, serving requests between them
    started = time.perf_counter()
    longest = 0.0
    while table.due():
        chunk_started = time.perf_counter()
        table.sweep(limit=SWEEP_CHUNK)
        longest = max(longest, time.perf_counter() - chunk_started)
    all_ms = (time.perf_counter() - started) * 1000
    return {"size": size, "rss_mib": rss_mib, "record_us": record_s / max(size, 1) * 1e6, "idle_ms": idle_ms,
            "typical_due": typical, "typical_ms": typical_ms, "all_due_ms": all_ms, "longest_ms": longest * 1000}


def child(size: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", str(size)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(measure(args.child)))
        return
    baseline = child(0)
    print(f"{'objects':>8}{'RSS MiB':>9}{'over baseline':>15}{'record µs':>11}{'idle sweep ms':>15}"
          f"{'1% due ms':>11}{'all due ms':>12}{'longest stall ms':>18}")
    print(f"{'0':>8}{baseline['rss_mib']:>9.0f}{'(baseline)':>15}")
    for size in args.sizes:
        row = child(size)
        print(f"{size:>8}{row['rss_mib']:>9.0f}{row['rss_mib'] - baseline['rss_mib']:>15.0f}"
              f"{row['record_us']:>11.1f}{row['idle_ms']:>15.3f}{row['typical_ms']:>11.1f}{row['all_due_ms']:>12.1f}"
              f"{row['longest_ms']:>18.1f}")


if __name__ == "__main__":
    main()
