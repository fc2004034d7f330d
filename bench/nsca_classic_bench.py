"""The peer for the NSCA listener: the classic nsca 2.10.2 daemon (Debian's ``nsca``, in its single-process mode:
its forking ``--daemon`` mode lost results under load) against the bridge's ``[nsca]`` listener, each taking the
same results from many Debian ``send_nsca`` 2.10.2 processes (``nsca-client``), into the same kind of drained FIFO.

Both packages are unpacked, not installed (nsca-client's send_nsca conflicts with nsca-ng-client's): ``.ci/run``
puts them in /opt/nsca-classic, or the folder ``NSCA_CLASSIC`` names. Each row: ``results`` results, sent by
send_nsca processes of ``PER_PROCESS`` results each (ETB-separated, as 2.10 reads them), ``PARALLEL`` running at
once, timed from the first process started until the FIFO's reader has the last line; and the CPU time the
server used meanwhile, a result (send_nsca itself costs about 0.16 ms a packet with XOR and far more with the mcrypt
methods, so on a small machine the clients, not the server, set the pace of the first figure).

    python bench/nsca_classic_bench.py [--results 20000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench.common import BENCH_USER, Bridge, Row, free_port, print_table, wait_port, workload  # noqa: E402

PASSWORD = "bench-secret"
PER_PROCESS = 100  # results a send_nsca process sends (one connection)
PARALLEL = 8  # send_nsca processes at once
METHODS = ((1, "XOR"), (14, "RIJNDAEL-128"))


def classic_binaries() -> tuple[Path, Path]:
    folder = Path(os.environ.get("NSCA_CLASSIC", "/opt/nsca-classic"))
    server, client = folder / "usr/sbin/nsca", folder / "usr/sbin/send_nsca"
    if not (server.exists() and client.exists()):
        raise SystemExit(f"classic nsca is needed in {folder}: apt-get download nsca nsca-client, then dpkg-deb -x "
                         f"each into {folder} (and apt-get install libmcrypt4)")
    return server, client


def send_all(client: Path, port: int, config: Path, inputs: list[bytes]) -> None:
    def one(data: bytes) -> None:
        done = subprocess.run([str(client), "-H", "127.0.0.1", "-p", str(port), "-c", str(config)], input=data,
                              capture_output=True, timeout=300)
        if done.returncode != 0 or b"sent to host successfully" not in done.stdout:
            raise SystemExit(f"send_nsca failed: {done.stdout.decode(errors='replace')}")

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(one, inputs))


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LineCounter:
    """The engine's stand-in: drains the FIFO in a thread and counts its lines, so that a server that loses
    results is seen (and reported) instead of waited for forever."""

    def __init__(self, fifo: Path) -> None:
        self.fd = os.open(fifo, os.O_RDWR)  # as the engine opens it
        self.lines = 0
        self.last = time.monotonic()
        self.changed = threading.Condition()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 1 << 20)
            except OSError:
                return
            with self.changed:
                self.lines += chunk.count(b"\n")
                self.last = time.monotonic()
                self.changed.notify_all()

    def wait(self, lines: int, quiet: float = 10.0) -> tuple[int, float]:
        """(lines counted, when the last arrived) once ``lines`` have arrived or none came for ``quiet`` s."""
        with self.changed:
            while self.lines < lines:
                if not self.changed.wait(quiet) and time.monotonic() - self.last >= quiet:
                    break
            return self.lines, self.last

    def stop(self) -> None:
        os.close(self.fd)


def timed(counter: LineCounter, results: int, pid: int, send: Callable[[], None]) -> tuple[float, float, int]:
    """(results/s end to end, the server's CPU microseconds a result, results lost)."""
    base = counter.wait(0)[0]
    cpu = cpu_seconds(pid)
    started = time.monotonic()
    send()
    arrived, last = counter.wait(base + results)
    got = arrived - base
    return got / (last - started), (cpu_seconds(pid) - cpu) / max(got, 1) * 1e6, results - got


def rows(directory: Path, results: int) -> list[Row]:
    server, client = classic_binaries()
    fifo = directory / "engine.cmd"
    os.mkfifo(fifo)
    counter = LineCounter(fifo)
    items = workload(results, "classic")
    blocks = [f"{r['host_name']}\t{r['service_description']}\t{r['status_code']}\t{r['plugin_output']}\x17"
              for r in items]
    inputs = ["".join(blocks[start:start + PER_PROCESS]).encode() for start in range(0, results, PER_PROCESS)]
    measured: dict[tuple[str, int], tuple[float, float, int]] = {}
    try:
        for method, _ in METHODS:
            client_config = directory / f"send_nsca-{method}.cfg"
            client_config.write_text(f"password={PASSWORD}\nencryption_method={method}\n")
            port = free_port()
            server_config = directory / f"nsca-{method}.cfg"
            server_config.write_text(f"server_port={port}\nserver_address=127.0.0.1\ncommand_file={fifo}\n"
                                     f"password={PASSWORD}\ndecryption_method={method}\ndebug=0\n"
                                     "aggregate_writes=0\nappend_to_file=0\nmax_packet_age=30\n")
            nsca = subprocess.Popen([str(server), "-f", "-c", str(server_config), "--single"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_port(port)
                measured[("nsca", method)] = timed(counter, results, nsca.pid,
                                                   partial(send_all, client, port, client_config, inputs))
            finally:
                nsca.terminate()
                nsca.wait(30)
            port = free_port()
            bridge = Bridge(directory / f"bridge-{method}", fifo,
                            extra=f'\n[nsca]\nlisten = "127.0.0.1:{port}"\npassword = "{PASSWORD}"\n'
                                  f'encryption_method = {method}\nuser = "{BENCH_USER[0]}"\n')
            try:
                wait_port(port)
                measured[("bridge", method)] = timed(counter, results, bridge.process.pid,
                                                     partial(send_all, client, port, client_config, inputs))
            finally:
                bridge.stop()
    finally:
        counter.stop()
    table = []
    for method, name in METHODS:
        (nsca_rate, nsca_cpu, nsca_lost) = measured[("nsca", method)]
        (bridge_rate, bridge_cpu, bridge_lost) = measured[("bridge", method)]
        table += [Row(f"nsca 2.10 --single, {name}, {PARALLEL} send_nsca at once", results=nsca_rate,
                      versus=f"server CPU {nsca_cpu:.0f} us a result" + _lost(nsca_lost, results)),
                  Row(f"bridge [nsca], {name}, same send_nsca", results=bridge_rate,
                      versus=f"{bridge_rate / nsca_rate:.1f}x nsca 2.10; server CPU {bridge_cpu:.0f} us a result"
                             + _lost(bridge_lost, results))]
    return table


def _lost(lost: int, results: int) -> str:
    return f"; LOST {lost:,} of {results:,}" if lost else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=20_000)
    args = parser.parse_args()
    results = max(PER_PROCESS, args.results // PER_PROCESS * PER_PROCESS)
    with tempfile.TemporaryDirectory(prefix="nsca-classic-bench-") as tmp:
        table = rows(Path(tmp), results)
    print_table(f"{results:,} results from send_nsca 2.10.2 processes of {PER_PROCESS}, {PARALLEL} at once, "
                "into a drained FIFO", table)


if __name__ == "__main__":
    main()
