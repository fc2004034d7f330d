"""HTTP throughput of the real daemon, driven by wrk (Debian's ``wrk``) with Lua-built bodies, beside a do-nothing
aiohttp JSON handler measured in the same run (the baseline; machines are noisy, ratios are what compare).

The daemon runs as a user runs it (``python -m bridge serve``), writing into a real FIFO that a reader drains as
fast as it can (an engine stand-in), with a spool on disk. Rows:

1. op5 single results, keep-alive, 32 connections: requests/s, p50/p99 latency — and the baseline, with the ratio;
2. Alignak ``PATCH /host`` with 100 services a request, and ``POST /api/results`` with 1,000 results a request;
3. RSS of the daemon at idle, and after the rows above plus 100,000 more distinct objects have reported.

Not yet here (see the README): end to end into a real Nagios 4, through the spool, NSCA-ng as the peer.

    apt-get install wrk && python bench/http_bench.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port, wait_port  # noqa: E402

AUTH = "Basic " + base64.b64encode(b"bench:bench").decode()
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


def wrk(port: int, script: str, seconds: float, connections: int, directory: Path) -> dict[str, float]:
    path = directory / "script.lua"
    path.write_text(script % {"auth": AUTH})
    done = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s",
                           str(path), f"http://127.0.0.1:{port}"], capture_output=True, text=True)
    out = done.stdout
    if done.returncode != 0:
        raise SystemExit(f"wrk failed:\n{done.stdout}{done.stderr}")
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")

    def latency(percent: str) -> float:
        value, unit = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": latency("50"), "p99": latency("99")}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def post(port: int, path: str, body: object) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json",
                                                             "Authorization": AUTH})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--objects", type=int, default=100_000, help="distinct objects for the RSS row")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="http-bench-") as tmp:
        directory = Path(tmp)
        try:
            baseline_port = free_port()
            quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            processes.append(subprocess.Popen([sys.executable, str(ROOT / "bench" / "noop_server.py"),
                                               str(baseline_port)], **quiet))
            fifo = directory / "engine.cmd"
            os.mkfifo(fifo)
            # The engine stand-in: holds the FIFO open read-write, as the engine does, and reads everything.
            processes.append(subprocess.Popen(["bash", "-c", f"exec 3<>'{fifo}'; exec cat <&3 > /dev/null"], **quiet))
            port = free_port()
            config = directory / "bridge.toml"
            config.write_text(f'[server]\nlisten = "127.0.0.1:{port}"\n[engine]\nkind = "nagios"\n'
                              f'command_file = "{fifo}"\n[spool]\ndirectory = "{directory / "spool"}"\n'
                              '[log]\nlevel = "warning"\n[[users]]\nname = "bench"\npassword = "bench"\n')
            bridge = subprocess.Popen([sys.executable, "-m", "bridge", "serve", "--config", str(config)], cwd=ROOT,
                                      **quiet)
            processes.append(bridge)
            wait_port(baseline_port)
            wait_port(port)
            idle_rss = rss_mib(bridge.pid)
            baseline = wrk(baseline_port, SINGLE, args.seconds, args.connections, directory)
            single = wrk(port, SINGLE, args.seconds, args.connections, directory)
            alignak = wrk(port, ALIGNAK, args.seconds, args.connections, directory)
            batch = wrk(port, BATCH, args.seconds, args.connections, directory)
            for start in range(0, args.objects, 1000):
                post(port, "/api/results", [{"host_name": f"rss-host-{n // 10:06d}", "service_description":
                                             f"svc-{n % 10}", "status_code": 0, "plugin_output": "ok"}
                                            for n in range(start, min(start + 1000, args.objects))])
            loaded_rss = rss_mib(bridge.pid)
            request = urllib.request.Request(f"http://127.0.0.1:{port}/health")
            with urllib.request.urlopen(request, timeout=30) as response:
                counts = json.loads(response.read())["freshness"]
            tracked = counts["fresh"] + counts["stale"]
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)
    print(f"wrk: 2 threads, {args.connections} connections, {args.seconds:g} s a row, keep-alive; "
          f"the daemon writes into a drained FIFO")
    print(f"{'row':<46}{'requests/s':>12}{'results/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'vs baseline':>13}")
    print(f"{'do-nothing aiohttp JSON handler (baseline)':<46}{baseline['rps']:>12,.0f}{'':>12}"
          f"{baseline['p50']:>9.2f}{baseline['p99']:>9.2f}{'100%':>13}")
    print(f"{'op5 single result':<46}{single['rps']:>12,.0f}{single['rps']:>12,.0f}{single['p50']:>9.2f}"
          f"{single['p99']:>9.2f}{single['rps'] / baseline['rps']:>12.0%}")
    print(f"{'Alignak PATCH /host, 100 services':<46}{alignak['rps']:>12,.0f}{alignak['rps'] * 100:>12,.0f}"
          f"{alignak['p50']:>9.2f}{alignak['p99']:>9.2f}")
    print(f"{'POST /api/results, 1,000 results':<46}{batch['rps']:>12,.0f}{batch['rps'] * 1000:>12,.0f}"
          f"{batch['p50']:>9.2f}{batch['p99']:>9.2f}")
    print(f"daemon RSS: {idle_rss:.0f} MiB idle, {loaded_rss:.0f} MiB after the rows above and {args.objects:,} "
          f"more distinct objects ({tracked:,} objects tracked)")


if __name__ == "__main__":
    main()
