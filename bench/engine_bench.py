"""End to end into a real Nagios 4 (Debian's nagios4-core, a throwaway instance): results/s until the engine has
the last of N, beside a raw writer into the same engine's pipe (the baseline: how fast Nagios itself reads).

Rows: the baseline; the bridge with the engine reading (POST /api/results, 1,000 a request, 4 clients, names checked
against the engine's objects.cache); the same
with the engine stopped, accepted into the spool, then drained when the engine starts. The clock stops when the
engine's own log shows the last result (results of one pipe arrive in order).

    python bench/engine_bench.py [--results 100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench.common import (  # noqa: E402
    Bridge,
    Row,
    batch_bodies,
    cpu_seconds,
    post_batches,
    print_table,
    workload,
)
from bridge.daemon.sandbox import NagiosSandbox, SandboxHost, SandboxService, nagios_binary  # noqa: E402

HOSTS = [SandboxHost(f"host-{h:04d}", tuple(SandboxService(f"svc-{s:02d}") for s in range(10))) for h in range(100)]


def results(count: int, tag: str) -> list[dict[str, object]]:
    return workload(count, tag, hosts=len(HOSTS), services=10)


def wait_in_log(engine: NagiosSandbox, marker: str, timeout: float = 300) -> float:
    """When the engine's log first shows ``marker`` (polled from the end of the file)."""
    deadline = time.monotonic() + timeout
    position = 0
    while time.monotonic() < deadline:
        with engine.log_file.open(errors="replace") as handle:
            handle.seek(position)
            chunk = handle.read()
            position = max(0, handle.tell() - len(marker) - 200)
        if marker in chunk:
            return time.monotonic()
        time.sleep(0.005)
    raise SystemExit(f"the engine never showed {marker!r}")


def rows(directory: Path, count: int) -> list[Row]:
    """The engine rows: a raw writer (the baseline), the bridge with the engine reading, then with the engine
    stopped (into the spool) and drained once it starts."""
    if nagios_binary() is None:
        raise SystemExit("nagios4 is needed: apt-get install --no-install-recommends nagios4-core")
    measured: list[tuple[str, float]] = []
    # CPU-seconds per 100,000 results, of the engine and of the bridge, by row: where the time goes.
    cpu: dict[str, dict[str, float]] = {}

    def per_100k(seconds: float) -> float:
        return round(seconds * 100_000 / count, 3)

    engine = NagiosSandbox(directory / "nagios", HOSTS)
    engine.verify()
    engine.start()
    try:
        lines = [f"[{int(time.time())}] PROCESS_SERVICE_CHECK_RESULT;{r['host_name']};{r['service_description']};"
                 f"{r['status_code']};{r['plugin_output']}\n".encode() for r in results(count, "raw")]
        fd = os.open(engine.command_file, os.O_WRONLY)  # a blocking writer: as fast as Nagios reads
        engine_cpu = cpu_seconds(engine.pid)
        started = time.monotonic()
        for i in range(0, len(lines), 40):
            os.write(fd, b"".join(lines[i:i + 40]))
        os.close(fd)
        measured.append(("raw writer into the pipe (baseline)",
                         count / (wait_in_log(engine, f"raw {count - 1}") - started)))
        cpu[measured[-1][0]] = {"engine_cpu_s_per_100k": per_100k(cpu_seconds(engine.pid) - engine_cpu)}

        bodies = batch_bodies(results(count, "bridged"))
        # Names checked against the engine's objects.cache, as a site configures it.
        checked = f'objects_cache = "{engine.objects_cache}"'
        bridge = Bridge(directory / "a", engine.command_file, engine=checked)
        try:
            engine_cpu, bridge_cpu = cpu_seconds(engine.pid), cpu_seconds(bridge.process.pid)
            started = time.monotonic()
            post_batches(bridge.port, bodies)
            measured.append(("bridge, engine reading",
                             count / (wait_in_log(engine, f"bridged {count - 1}") - started)))
            cpu[measured[-1][0]] = {"engine_cpu_s_per_100k": per_100k(cpu_seconds(engine.pid) - engine_cpu),
                                    "bridge_cpu_s_per_100k": per_100k(cpu_seconds(bridge.process.pid) - bridge_cpu)}
        finally:
            bridge.stop()

        engine.stop()
        bodies = batch_bodies(results(count, "spooled"))
        bridge = Bridge(directory / "b", engine.command_file, engine=checked)
        try:
            bridge_cpu = cpu_seconds(bridge.process.pid)
            started = time.monotonic()
            post_batches(bridge.port, bodies)
            accepted = count / (time.monotonic() - started)
            accepted_cpu = cpu_seconds(bridge.process.pid) - bridge_cpu
            engine.start()
            engine_cpu, bridge_cpu = cpu_seconds(engine.pid), cpu_seconds(bridge.process.pid)
            started = time.monotonic()
            drained = count / (wait_in_log(engine, f"spooled {count - 1}") - started)
            measured.append(("bridge, engine down: accepted into the spool", accepted))
            cpu[measured[-1][0]] = {"bridge_cpu_s_per_100k": per_100k(accepted_cpu)}
            measured.append(("  ... then drained into the started engine", drained))
            cpu[measured[-1][0]] = {"engine_cpu_s_per_100k": per_100k(cpu_seconds(engine.pid) - engine_cpu),
                                    "bridge_cpu_s_per_100k": per_100k(cpu_seconds(bridge.process.pid) - bridge_cpu)}
        finally:
            bridge.stop()
    finally:
        engine.stop()
    baseline = measured[0][1]

    def spent(label: str) -> str:
        figures = cpu.get(label, {})
        parts = [f"{who} {figures[key]:.2f}" for who, key in (("engine", "engine_cpu_s_per_100k"),
                                                                ("bridge", "bridge_cpu_s_per_100k")) if key in figures]
        return f"; CPU-s per 100k: {', '.join(parts)}" if parts else ""

    return [Row(label, results=rate, versus=f"{rate / baseline:.0%} of the raw writer{spent(label)}",
                figures={"ratio": rate / baseline, **cpu.get(label, {})}) for label, rate in measured]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=100_000)
    args = parser.parse_args()
    count = max(1000, args.results // 1000 * 1000)
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as tmp:
        table = rows(Path(tmp), count)
    print_table(f"{count:,} results into a real Nagios 4 (POST /api/results, 1,000 a request, 4 clients)", table)


if __name__ == "__main__":
    main()
