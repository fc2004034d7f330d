"""The benchmarks keep working: each runs at a tiny size and prints its table."""

from __future__ import annotations

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


def test_http_bench_prints_its_rows() -> None:
    import shutil

    import pytest

    if shutil.which("wrk") is None:
        if __import__("os").environ.get("CI"):
            pytest.fail("wrk is not installed: .ci/run must install it")
        pytest.skip("wrk (Debian's wrk) is not installed")
    done = subprocess.run([sys.executable, "bench/http_bench.py", "--seconds", "1", "--connections", "4",
                           "--objects", "2000"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for row in ("do-nothing aiohttp JSON handler (baseline)", "op5 single result", "Alignak PATCH /host",
                "POST /api/results", "daemon RSS"):
        assert row in done.stdout


def test_engine_bench_prints_its_rows() -> None:
    import pytest

    from bridge.sandbox import nagios_binary

    if nagios_binary() is None:
        if __import__("os").environ.get("CI"):
            pytest.fail("nagios4 is not installed: .ci/run must install nagios4-core")
        pytest.skip("nagios4 is not installed")
    done = subprocess.run([sys.executable, "bench/engine_bench.py", "--results", "2000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for row in ("raw writer into the pipe (baseline)", "bridge, engine reading",
                "bridge, engine down: accepted into the spool", "then drained into the started engine"):
        assert row in done.stdout
