"""What the benchmarks share: engine stand-ins that drain a FIFO, ports, the daemon as a subprocess, the workload,
the client for batches and the table."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Return once something listens on ``port`` on loopback."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port}")


async def drain(path: Path, stop: asyncio.Event) -> None:
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(fd, readable.set)
    try:
        while not stop.is_set():
            await readable.wait()
            readable.clear()
            try:
                while os.read(fd, 1 << 20):
                    pass
            except BlockingIOError:
                pass
    finally:
        loop.remove_reader(fd)
        os.close(fd)


# -- what the table-printing benchmarks (python -m bench) share --------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
BENCH_USER = ("bench", "bench")
AUTH = "Basic " + base64.b64encode(":".join(BENCH_USER).encode()).decode()


@dataclass
class Row:
    """One line of the table: whichever figures the row has, and how it compares (the baseline or the peer)."""

    label: str
    requests: float | None = None  # requests/s
    results: float | None = None  # results/s
    p50: float | None = None  # ms
    p99: float | None = None  # ms
    versus: str = ""
    figures: dict[str, float] = field(default_factory=dict)  # what the row measured beyond the columns (--json)


def ratio(part: float, whole: float, spec: str) -> str:
    """``part / whole`` formatted by ``spec``; a run too short (or a machine too busy) to complete one request of
    the peer has no ratio, and the row says so instead of failing the whole bench."""
    if not whole:
        return "n/a (the peer completed no request)"
    return format(part / whole, spec)


def print_table(title: str, rows: list[Row], notes: list[str] = ()) -> None:  # type: ignore[assignment]
    def cell(value: float | None, width: int, form: str) -> str:
        return f"{'' if value is None else format(value, form):>{width}}"

    print(title)
    print(f"{'row':<56}{'requests/s':>11}{'results/s':>11}{'p50 ms':>8}{'p99 ms':>8}  vs")
    for row in rows:
        print(f"{row.label:<56}{cell(row.requests, 11, ',.0f')}{cell(row.results, 11, ',.0f')}"
              f"{cell(row.p50, 8, '.2f')}{cell(row.p99, 8, '.2f')}  {row.versus}".rstrip())
    for note in notes:
        print(note)


def workload(count: int, tag: str, hosts: int = 1000, services: int = 10) -> list[dict[str, object]]:
    """``count`` service results, the same for every row and peer: host-NNNN/svc-NN, a state, output with perfdata."""
    return [{"host_name": f"host-{n % hosts:04d}", "service_description": f"svc-{n // hosts % services:02d}",
             "status_code": n % 4, "plugin_output": f"{tag} {n}|time=0.01s;1;2"} for n in range(count)]


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system, all threads) a process has used so far, from /proc: comparable between runs
    on a busy machine where wall-clock rates are not."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Bridge:
    """The daemon as a user runs it (``python -m bridge serve``) with a config written for the bench."""

    def __init__(self, directory: Path, command_file: Path, extra: str = "", *, engine: str = "",
                 users: str = "") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = directory / "bridge.toml"
        config.write_text(f'[server]\nlisten = "127.0.0.1:{self.port}"\n{extra}\n[engine]\nkind = "nagios"\n'
                          f'command_file = "{command_file}"\n{engine}\n[spool]\ndirectory = "{directory / "spool"}"\n'
                          f'[log]\nlevel = "error"\n[[users]]\nname = "{BENCH_USER[0]}"\n'
                          f'password = "{BENCH_USER[1]}"\n{users}')
        self.process = subprocess.Popen([sys.executable, "-m", "bridge", "serve", "--config", str(config)],
                                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.scheme = "https" if "tls_cert" in extra else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def rss_mib(self) -> float:
        """The daemon's RSS, its worker processes' included."""
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:  # a kernel without CONFIG_PROC_CHILDREN: the daemon alone
            children = []
        return rss_mib(self.process.pid) + sum(rss_mib(int(child)) for child in children)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def post_batches(port: int, bodies: list[bytes], clients: int = 4) -> None:
    """POST each body to /api/results over ``clients`` keep-alive connections; each client's bodies go in order,
    and the last body is sent alone after all others are answered (it carries the marker a row waits for)."""

    def client(mine: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        for body in mine:
            connection.request("POST", "/api/results", body, {"Content-Type": "application/json",
                                                               "Authorization": AUTH})
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise SystemExit(f"the bridge answered {response.status}: {answer[:300]!r}")
        connection.close()

    threads = [threading.Thread(target=client, args=(bodies[:-1][k::clients],)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client(bodies[-1:])


def batch_bodies(results: list[dict[str, object]], size: int = 1000) -> list[bytes]:
    return [json.dumps(results[i:i + size]).encode() for i in range(0, len(results), size)]


def cat_reader(fifo: Path) -> subprocess.Popen[bytes]:
    """The cheapest engine stand-in: holds the FIFO open read-write, as the engine does, and reads everything.
    Returns once the FIFO has its reader (writers started earlier would take the engine for down)."""
    reader = subprocess.Popen(["bash", "-c", f"exec 3<>'{fifo}'; echo open; exec cat <&3 > /dev/null"],
                              stdout=subprocess.PIPE)
    assert reader.stdout is not None
    if reader.stdout.readline().strip() != b"open":
        raise SystemExit("the FIFO reader failed to start")
    return reader


class FifoCounter:
    """An engine stand-in in its own process: holds a FIFO open read-write (as the engine does), drains it as fast
    as it can, and tells when the lines it was told to expect have all arrived (by newline count)."""

    SCRIPT = r"""
import os, sys, threading, time
fd = os.open(sys.argv[1], os.O_RDWR)
print("open", flush=True)
lock = threading.Lock()
state = {"count": 0, "target": None}
def commands():
    for line in sys.stdin:
        with lock:
            state["count"], state["target"] = 0, int(line)
        print("ready", flush=True)
threading.Thread(target=commands, daemon=True).start()
while True:
    chunk = os.read(fd, 1 << 20)
    with lock:
        state["count"] += chunk.count(b"\n")
        if state["target"] is not None and state["count"] >= state["target"]:
            state["target"] = None
            print(time.monotonic(), flush=True)
"""

    def __init__(self, fifo: Path) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", self.SCRIPT, str(fifo)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        # Writers started before the FIFO has a reader would take the engine for down (and spool, or back off).
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "open":
            raise SystemExit("the FIFO reader failed to start")

    def expect(self, lines: int) -> None:
        """Count from zero from now on; ``arrived`` then returns when ``lines`` lines have arrived."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{lines}\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "ready":
            raise SystemExit("the FIFO reader failed")

    def arrived(self, timeout: float | None = None) -> float:
        """The monotonic time (the same clock in every process) when the expected lines had all arrived; raises
        TimeoutError when they have not within ``timeout`` s (a sender that lost some)."""
        assert self.process.stdout is not None
        if timeout is not None and not select.select([self.process.stdout], [], [], timeout)[0]:
            raise TimeoutError(f"the expected lines did not all arrive within {timeout:g} s")
        return float(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
