"""The benchmarks keep working: each runs at a tiny size and prints its table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_spool_bench_prints_a_row_per_case() -> None:
    done = subprocess.run([sys.executable, "bench/spool_bench.py", "--results", "256", "--concurrency", "8"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if "results/s" not in line and "%" in line]
    assert [row.split("  ")[0].strip() for row in rows] == [
        "FIFO, engine reading (baseline)", "spool, fsync = always", "spool, fsync = interval",
        "spool, fsync = never"]
    assert "max RSS" in done.stdout


def test_freshness_bench_prints_a_row_per_size() -> None:
    done = subprocess.run([sys.executable, "bench/freshness_bench.py", "--sizes", "100", "1000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    sizes = [line.split()[0] for line in done.stdout.splitlines()[1:]]
    assert sizes == ["0", "100", "1000"]


def test_transport_bench_prints_the_fifo_and_the_query_handler() -> None:
    done = subprocess.run([sys.executable, "bench/transport_bench.py", "--results", "256", "--concurrency", "8",
                           "--connections", "2"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    labels = [line.split("  ")[0] for line in done.stdout.splitlines()[2:]]
    assert labels == ["FIFO, drained (baseline)", "query handler (stand-in peer), 2 conn."]


def test_the_bench_prints_every_row_of_the_readme_table(tmp_path: Path) -> None:
    """``python -m bench`` at a tiny size: every row, the baselines and the peer included, still runs; ``--json``
    writes the same rows with what each measured."""
    import json
    import os
    import shutil

    import pytest

    missing = [tool for tool in ("wrk", "hey", "nsca-ng", "send_nsca", "nagios4", "nats-server", "icinga2")
               if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin") is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} not installed: .ci/run must install them")
        pytest.skip(f"not installed: {', '.join(missing)}")
    written = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--seconds", "1", "--connections", "4", "--results",
                           "2000", "--objects", "2000", "--scale-objects", "3000", "--json", str(written)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    labels = [re.split(r"\s{2,}", line.strip())[0] for line in done.stdout.splitlines()[2:-1]]
    assert labels == [
        "do-nothing aiohttp JSON handler (baseline)", "op5 single result, 4 connections",
        "baseline, steady 2,000 requests/s (hey, 4 connections)", "op5 single result, steady 2,000 requests/s",
        "Alignak PATCH /host, 100 services a request", "POST /api/results, 1,000 results a request",
        "op5 single result, [server] workers = 2", "POST /api/results, 1,000 results, workers = 2",
        labels[8], "NSCA-ng 1.6, one send_nsca", "NSCA-ng 1.6, 4 send_nsca in parallel",
        "bridge, same results, 1,000 a request, 4 clients",
        "nsca 2.10 --single, XOR, 8 send_nsca at once", "bridge [nsca], XOR, same send_nsca",
        "nsca 2.10 --single, RIJNDAEL-128, 8 send_nsca at once", "bridge [nsca], RIJNDAEL-128, same send_nsca",
        "raw writer into the pipe (baseline)",
        "bridge, engine reading", "bridge, engine down: accepted into the spool",
        "... then drained into the started engine", "one process, batches (baseline)",
        "one process, single results (baseline)", "edge -> stream -> sink, 1 replica, batches",
        "edge -> stream -> sink, 1 replica, single results", "edge -> stream -> sink, 3 replicas, batches",
        "edge -> stream -> sink, 3 replicas, single results",
        "op5 single result over TLS",
        "NRDP submitcheck, 1 result a request, TLS", "NRDP submitcheck, 100 results a request, TLS",
        "Icinga 2 r2.13 process-check-result (peer), TLS", "bridge process-check-result, TLS",
        "objects.cache + freshness table, 3,300 objects",
        "RSS after 3,000 distinct objects reported"], done.stdout
    assert re.fullmatch(r"RSS: \d+ MiB idle, \d+ MiB after 2,000 distinct objects reported", labels[8])
    assert "x NSCA-ng at its best" in done.stdout
    assert "longest sweep stall" in done.stdout and "CPU-s per 100k: engine" in done.stdout
    document = json.loads(written.read_text())
    assert [row["label"].strip() for row in document["rows"]] == labels
    rows = {row["label"].strip(): row for row in document["rows"]}
    assert rows["bridge, engine reading"]["figures"]["bridge_cpu_s_per_100k"] > 0
    assert rows["objects.cache + freshness table, 3,300 objects"]["figures"]["longest_stall_ms"] >= 0
    assert document["cores"] == os.cpu_count() and document["results"] == 2000
    listener_rows = [line for line in done.stdout.splitlines() if line.startswith("bridge [nsca]")]
    assert len(listener_rows) == 2 and all("x nsca 2.10; server CPU" in line and "LOST" not in line
                                           for line in listener_rows), done.stdout


def test_status_bench_prints_intake_with_and_without_a_status_poller() -> None:
    import os
    import shutil

    import pytest

    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is not installed: .ci/run must install it")
        pytest.skip("wrk is not installed")
    done = subprocess.run([sys.executable, "bench/status_bench.py", "--seconds", "1", "--connections", "4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    labels = [re.split(r"\s{2,}", line.strip())[0] for line in done.stdout.splitlines()[2:]]
    assert labels[:2] == ["op5 single result, 4 connections, no /status poller",
                          "... with a browser-like poller on /status every second"], done.stdout
    assert labels[2].startswith("the poller's GET /status?part=panels"), done.stdout


def test_tail_bench_prints_the_batch_tail_and_the_alignak_ratio() -> None:
    import os
    import shutil

    import pytest

    if shutil.which("wrk") is None:
        if os.environ.get("CI"):
            pytest.fail("wrk is not installed: .ci/run must install it")
        pytest.skip("wrk is not installed")
    done = subprocess.run([sys.executable, "bench/tail_bench.py", "--seconds", "1", "--runs", "1",
                           "--connections", "4"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^run 1: do-nothing handler p50 .* bridge batch p50 .* Alignak .*x\)$", done.stdout, re.M), \
        done.stdout
    assert re.search(r"^medians of 1: batch p99/p50 [\d.]+ \(the do-nothing handler [\d.]+\); Alignak ", done.stdout,
                     re.M), done.stdout
