"""HTTP throughput of the real daemon, driven by wrk (Debian's ``wrk``) with Lua-built bodies, beside a do-nothing
aiohttp JSON handler measured in the same run (the baseline; machines are noisy, ratios are what compare).

The daemon runs as a user runs it (``python -m bridge serve``), writing into a real FIFO that a reader drains as
fast as it can (an engine stand-in), with a spool on disk. Rows:

1. op5 single results, keep-alive, 32 connections: requests/s, p50/p99 latency — and the baseline, with the ratio
   (the two take turns three times; each side's median run counts);
   then the same at a steady 2,000 requests/s (Debian's ``hey``, rate-limited) for the latency there;
2. Alignak ``PATCH /host`` with 100 services a request, and ``POST /api/results`` with 1,000 results a request;
   then single results and batches again with ``[server] workers = 2``;
3. RSS of a fresh daemon at idle, and after 100,000 distinct objects have reported.

    apt-get install wrk hey && python bench/http_bench.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench.common import (  # noqa: E402
    AUTH,
    ROOT,
    Bridge,
    Row,
    batch_bodies,
    cat_reader,
    free_port,
    post_batches,
    print_table,
    ratio,
    wait_port,
    workload,
)

# Every script: the method, JSON, basic auth, and a request counter n for varied bodies.
HEADER = """
wrk.method = "%(method)s"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "%(auth)s"
local n = 0
"""

SINGLE = HEADER.replace("%(method)s", "POST") + """
request = function()
  n = n + 1
  local body = string.format('{"host_name":"host-%%04d","service_description":"svc-%%02d","status_code":"%%d",' ..
    '"plugin_output":"OK - result %%d|time=0.01s;1;2"}', n %% 1000, n %% 10, n %% 4, n)
  return wrk.format(nil, "/api/command/PROCESS_SERVICE_CHECK_RESULT", nil, body)
end
"""

ALIGNAK = HEADER.replace("%(method)s", "PATCH") + """
request = function()
  n = n + 1
  local parts = {}
  for i = 1, 100 do
    parts[i] = string.format('"k%%d":{"name":"svc-%%03d","livestate":{"state":"ok","output":"fine %%d",' ..
      '"perf_data":"t=%%d"}}', i, i, n, i)
  end
  local body = '{"services":{' .. table.concat(parts, ",") .. '}}'
  return wrk.format(nil, string.format("/host/host-%%04d", n %% 1000), nil, body)
end
"""

BATCH = HEADER.replace("%(method)s", "POST") + """
request = function()
  n = n + 1
  local parts = {}
  for i = 1, 1000 do
    parts[i] = string.format('{"host_name":"host-%%04d","service_description":"svc-%%02d","status_code":0,' ..
      '"plugin_output":"OK %%d"}', i %% 100, i %% 10, n)
  end
  return wrk.format(nil, "/api/results", nil, "[" .. table.concat(parts, ",") .. "]")
end
"""


@dataclass(frozen=True)
class Load:
    """What a load generator measured: requests/s and latency percentiles in ms."""

    requests: float
    p50: float
    p99: float


def wrk(url: str, script: str, seconds: float, connections: int, directory: Path) -> Load:
    path = directory / "script.lua"
    path.write_text(script % {"auth": AUTH})
    done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
                           "--latency", "-s",
                           str(path), url], capture_output=True, text=True)
    out = done.stdout
    if done.returncode != 0:
        raise SystemExit(f"wrk failed:\n{done.stdout}{done.stderr}")
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")

    def latency(percent: str) -> float:
        value, unit = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return Load(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
                latency("50"), latency("99"))


def steady(url: str, rate: int, seconds: float, workers: int = 4) -> Load:
    """op5 single results at a steady ``rate`` (hey: ``workers`` connections, each rate-limited). hey's workers tick
    together, so each tick sends a burst of ``workers`` requests: few workers keep the bursts (and the queueing they
    cause) small."""
    body = json.dumps({"host_name": "host-0001", "service_description": "svc-01", "status_code": "0",
                       "plugin_output": "OK - steady|time=0.01s;1;2"})
    done = subprocess.run(["hey", "-z", f"{max(1, round(seconds))}s", "-c", str(workers), "-q",
                           str(rate // workers), "-m", "POST", "-T", "application/json", "-H", f"Authorization: {AUTH}",
                           "-d", body, f"{url}/api/command/PROCESS_SERVICE_CHECK_RESULT"],
                          capture_output=True, text=True)
    out = done.stdout
    codes = re.findall(r"\[(\d+)\]\s+\d+ responses", out)
    if done.returncode != 0 or codes != ["200"]:
        raise SystemExit(f"hey failed or saw errors:\n{out}{done.stderr}")

    def latency(percent: str) -> float:
        return float(re.search(rf"{percent}% in ([\d.]+) secs", out).group(1)) * 1000  # type: ignore[union-attr]

    return Load(float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
                latency("50"), latency("99"))


PAIRS = 3


def _median(runs: list[Load]) -> Load:
    """The run with the median requests/s (its latencies with it)."""
    return sorted(runs, key=lambda load: load.requests)[len(runs) // 2]


def rows(directory: Path, seconds: float, connections: int, objects: int) -> list[Row]:
    """The HTTP rows, each with its own figures; the daemon writes into a FIFO a reader drains."""
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed: apt-get install {tool}")
    fifo = directory / "engine.cmd"
    os.mkfifo(fifo)
    reader = cat_reader(fifo)
    baseline_port = free_port()
    noop = subprocess.Popen([sys.executable, str(ROOT / "bench" / "noop_server.py"), str(baseline_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bridge: Bridge | None = None
    try:
        wait_port(baseline_port)
        baseline_url = f"http://127.0.0.1:{baseline_port}"
        bridge = Bridge(directory / "bridge", fifo)
        for url in (baseline_url, bridge.url):
            wrk(url, SINGLE, 1, connections, directory)  # warm up: first requests fill caches, read files
        # The ratio the target is about: baseline and bridge take turns, PAIRS times, and each side's median run
        # counts, so a burst of noise on the machine cannot decide it alone.
        bases, singles = [], []
        for _ in range(PAIRS):
            bases.append(wrk(baseline_url, SINGLE, seconds, connections, directory))
            singles.append(wrk(bridge.url, SINGLE, seconds, connections, directory))
        base, single = _median(bases), _median(singles)
        base_calm = steady(baseline_url, 2000, seconds)
        calm = steady(bridge.url, 2000, seconds)
        alignak = wrk(bridge.url, ALIGNAK, seconds, connections, directory)
        batch = wrk(bridge.url, BATCH, seconds, connections, directory)
        bridge.stop()
        bridge = Bridge(directory / "workers", fifo, "workers = 2")
        wrk(bridge.url, SINGLE, 1, connections, directory)  # warm up (the workers start after the port is bound)
        single2 = wrk(bridge.url, SINGLE, seconds, connections, directory)
        batch2 = wrk(bridge.url, BATCH, seconds, connections, directory)
        bridge.stop()
        bridge = Bridge(directory / "rss", fifo)  # a fresh daemon: what 100k objects cost, nothing else
        idle = bridge.rss_mib()
        reported = workload(objects, "rss", hosts=max(1, objects // 10))
        post_batches(bridge.port, batch_bodies(reported), clients=2)
        loaded = bridge.rss_mib()
    finally:
        if bridge is not None:
            bridge.stop()
        noop.terminate()
        noop.wait(30)
        reader.kill()
        reader.wait()
    return [
        Row("do-nothing aiohttp JSON handler (baseline)", requests=base.requests, p50=base.p50, p99=base.p99,
            versus="100%"),
        Row(f"op5 single result, {connections} connections", requests=single.requests, results=single.requests,
            p50=single.p50, p99=single.p99,
            versus=f"{ratio(single.requests, base.requests, '.0%')} of the baseline (medians of {PAIRS} turns each)"),
        Row("baseline, steady 2,000 requests/s (hey, 4 connections)", requests=base_calm.requests,
            p50=base_calm.p50, p99=base_calm.p99),
        Row("op5 single result, steady 2,000 requests/s", requests=calm.requests, results=calm.requests,
            p50=calm.p50, p99=calm.p99),
        Row("Alignak PATCH /host, 100 services a request", requests=alignak.requests,
            results=alignak.requests * 100, p50=alignak.p50, p99=alignak.p99),
        Row("POST /api/results, 1,000 results a request", requests=batch.requests, results=batch.requests * 1000,
            p50=batch.p50, p99=batch.p99),
        Row("op5 single result, [server] workers = 2", requests=single2.requests, results=single2.requests,
            p50=single2.p50, p99=single2.p99, versus=f"{ratio(single2.requests, single.requests, '.2f')}x one process"),
        Row("POST /api/results, 1,000 results, workers = 2", requests=batch2.requests,
            results=batch2.requests * 1000, p50=batch2.p50, p99=batch2.p99,
            versus=f"{ratio(batch2.requests, batch.requests, '.2f')}x one process"),
        Row(f"RSS: {idle:.0f} MiB idle, {loaded:.0f} MiB after {objects:,} distinct objects reported"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--objects", type=int, default=100_000, help="distinct objects for the RSS row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="http-bench-") as tmp:
        table = rows(Path(tmp), args.seconds, args.connections, args.objects)
    print_table(f"wrk: 2 threads, {args.connections} connections, {args.seconds:g} s a row, keep-alive; the daemon "
                "writes into a drained FIFO", table)


if __name__ == "__main__":
    main()
