"""NRDP and Icinga 2 single results over TLS (Icinga 2's API speaks only TLS), driven by wrk, beside the op5 single
result over the same TLS, and beside a real Icinga 2 (Debian's ``icinga2``, bench/icinga2.py) taking the same
requests in the same run.

The bridge writes into a FIFO a reader drains (an engine stand-in) and knows the same 10,000 objects Icinga 2 has
(an objects cache written here), so both look every target up. Rows:

1. op5 single result over TLS (the reference for NRDP's row);
2. NRDP ``submitcheck`` with one result a request (the form ``send_nrdp.sh`` posts), and with 100;
3. Icinga 2's own API and the bridge, ``process-check-result`` with one result a request, taking turns three times
   (each side's median run counts).

    apt-get install wrk icinga2 && python bench/dialects_bench.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench.common import Bridge, Row, cat_reader, print_table  # noqa: E402
from bench.http_bench import PAIRS, SINGLE, Load, _median, wrk  # noqa: E402
from bench.icinga2 import USER as ICINGA_USER  # noqa: E402
from bench.icinga2 import Icinga2, icinga2_binary  # noqa: E402

HOSTS, SERVICES = 1000, 10  # the op5 script's objects (http_bench.SINGLE)
TOKEN = "bench-nrdp-token"

# wrk's Lua as wrk runs it; @NAME@ is filled in by _script (wrk() itself fills in the auth header).
NRDP = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local n = 0
local each = @EACH@
request = function()
  n = n + 1
  local parts = {}
  for i = 1, each do
    local k = n * each + i
    parts[i] = "%3Ccheckresult+type%3D%27service%27%3E%3Chostname%3E" ..
      string.format("host-%04d", k % @HOSTS@) .. "%3C%2Fhostname%3E%3Cservicename%3E" ..
      string.format("svc-%02d", k % @SERVICES@) .. "%3C%2Fservicename%3E%3Cstate%3E" .. (k % 4) ..
      "%3C%2Fstate%3E%3Coutput%3EOK+-+result+" .. k .. "%7Ctime%3D0.01s%3B1%3B2%3C%2Foutput%3E%3C%2Fcheckresult%3E"
  end
  local body = "token=@TOKEN@&cmd=submitcheck&xml=%3Ccheckresults%3E" .. table.concat(parts) ..
    "%3C%2Fcheckresults%3E"
  return wrk.format(nil, "/nrdp/", nil, body)
end
"""

ICINGA = """
wrk.method = "POST"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = "@AUTH@"
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"exit_status":%d,"plugin_output":"OK - result %d","performance_data":' ..
    '["time=0.01s;1;2"]}', n % 4, n)
  return wrk.format(nil, string.format("/v1/actions/process-check-result?service=host-%04d!svc-%02d",
    n % @HOSTS@, n % @SERVICES@), nil, body)
end
"""


def _script(template: str, *, auth: str = "", each: int = 1) -> str:
    """``template`` filled in, then escaped for wrk()'s own %-formatting (which fills in ``%(auth)s``)."""
    text = template.replace("@EACH@", str(each)).replace("@HOSTS@", str(HOSTS))
    text = text.replace("@SERVICES@", str(SERVICES)).replace("@TOKEN@", TOKEN)
    return text.replace("%", "%%").replace("@AUTH@", auth or "%(auth)s")


def _basic(user: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(user).encode()).decode()


def _objects() -> list[tuple[str, list[str]]]:
    return [(f"host-{h:04d}", [f"svc-{s:02d}" for s in range(SERVICES)]) for h in range(HOSTS)]


def _objects_cache(path: Path) -> None:
    blocks = []
    for host, services in _objects():
        blocks.append(f"define host {{\n\thost_name\t{host}\n\t}}\n")
        blocks += [f"define service {{\n\thost_name\t{host}\n\tservice_description\t{s}\n\t}}\n" for s in services]
    path.write_text("\n".join(blocks))


def _certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "bridge.crt", directory / "bridge.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-subj", "/CN=localhost", "-days", "2"], check=True, capture_output=True)
    return cert, key


def rows(directory: Path, seconds: float, connections: int) -> list[Row]:
    for tool in ("wrk", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed: apt-get install {tool}")
    if icinga2_binary() is None:
        raise SystemExit("icinga2 is needed: apt-get install --no-install-recommends icinga2")
    fifo = directory / "engine.cmd"
    os.mkfifo(fifo)
    reader = cat_reader(fifo)
    cert, key = _certificate(directory)
    _objects_cache(directory / "objects.cache")
    bridge: Bridge | None = None
    peer: Icinga2 | None = None
    try:
        bridge = Bridge(directory / "bridge", fifo, f'tls_cert = "{cert}"\ntls_key = "{key}"',
                        engine=f'objects_cache = "{directory / "objects.cache"}"',
                        users=f'[[users]]\ntoken = "{TOKEN}"\nname = "nrdp-bench"\n')
        _wait_answering(bridge)  # the port opens before the objects cache of 10,000 objects is read
        peer = Icinga2(_objects())
        nrdp1, nrdp100 = _script(NRDP, each=1), _script(NRDP, each=100)
        icinga, theirs_script = _script(ICINGA), _script(ICINGA, auth=_basic(ICINGA_USER))
        for url, script in ((bridge.url, SINGLE), (bridge.url, nrdp1), (bridge.url, icinga),
                            (peer.url, theirs_script)):
            wrk(url, script, 1, connections, directory)  # warm up: caches, the objects cache read
        op5 = wrk(bridge.url, SINGLE, seconds, connections, directory)
        one = wrk(bridge.url, nrdp1, seconds, connections, directory)
        hundred = wrk(bridge.url, nrdp100, seconds, connections, directory)
        # The ratio the goal is about: Icinga 2 and the bridge take turns, PAIRS times, and each side's median run
        # counts (both are up the whole time, each idle while the other is measured).
        # Each run's CPU time per request too: on a loaded machine a multi-threaded server takes more of the cores
        # than a one-process daemon, and CPU per request says what each costs.
        ours_runs: list[Load] = []
        theirs_runs: list[Load] = []
        ours_cpu: list[float] = []
        theirs_cpu: list[float] = []
        for _ in range(PAIRS):
            for url, script, pid, runs, cpu in ((peer.url, theirs_script, peer.process.pid, theirs_runs, theirs_cpu),
                                                (bridge.url, icinga, bridge.process.pid, ours_runs, ours_cpu)):
                before = cpu_seconds(pid)
                runs.append(wrk(url, script, seconds, connections, directory))
                cpu.append((cpu_seconds(pid) - before) / (runs[-1].requests * seconds) * 1e6)
        ours, theirs = _median(ours_runs), _median(theirs_runs)
        ours_us, theirs_us = sorted(ours_cpu)[PAIRS // 2], sorted(theirs_cpu)[PAIRS // 2]
        _none_refused(bridge)
        for name, load in (("op5", op5), ("NRDP", one), ("NRDP 100", hundred), ("bridge", ours), ("Icinga 2", theirs)):
            if not load.requests:  # wrk reports no error when no answer came at all
                raise SystemExit(f"the {name} row got no answer at all")
    finally:
        if bridge is not None:
            bridge.stop()
        if peer is not None:
            peer.stop()
        reader.kill()
        reader.wait()
    return [
        Row("op5 single result over TLS", requests=op5.requests, results=op5.requests, p50=op5.p50, p99=op5.p99),
        _row("NRDP submitcheck, 1 result a request, TLS", one, 1, f"{one.requests / op5.requests:.2f}x op5 single"),
        _row("NRDP submitcheck, 100 results a request, TLS", hundred, 100,
             f"{hundred.requests * 100 / op5.requests:.1f}x op5 single"),
        _row("Icinga 2 r2.13 process-check-result (peer), TLS", theirs, 1, f"peer; {theirs_us:.0f} us CPU a request"),
        _row("bridge process-check-result, TLS", ours, 1,
             f"{ours.requests / theirs.requests:.2f}x Icinga 2 (medians of {PAIRS} turns each); {ours_us:.0f} us "
             f"CPU a request"),
    ]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and of every process under it (Icinga 2 runs two)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # gone meanwhile
    return total


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def _wait_answering(bridge: Bridge, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{bridge.url}/health", context=_unverified(), timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers (503 while the engine is not read yet is an answer too)
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("the bridge does not answer /health") from None
            time.sleep(0.1)


def _none_refused(bridge: Bridge) -> None:
    """NRDP answers a refusal with HTTP 200, which wrk counts as a success: the bridge's own count must be 0."""
    with urllib.request.urlopen(f"{bridge.url}/metrics", context=_unverified(), timeout=30) as answer:
        text = answer.read().decode()
    refused = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith("naemon_bridge_results_refused_total"))
    if refused:
        raise SystemExit(f"the bridge refused {refused:.0f} requests of the bench: its requests are wrong")


def _row(label: str, load: Load, each: int, versus: str) -> Row:
    return Row(label, requests=load.requests, results=load.requests * each, p50=load.p50, p99=load.p99,
               versus=versus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dialects-bench-") as tmp:
        table = rows(Path(tmp), args.seconds, args.connections)
    print_table(f"wrk: 2 threads, {args.connections} connections, {args.seconds:g} s a row, keep-alive, TLS; the "
                "daemon writes into a drained FIFO", table)


if __name__ == "__main__":
    main()
