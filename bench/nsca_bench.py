"""The peer: NSCA-ng (Debian's ``nsca-ng-server`` / ``nsca-ng-client``) on the same workload into the same kind of
FIFO, with one ``send_nsca`` and with 4 in parallel — beside the bridge taking the same results in batches.

Every row is timed from the first byte sent until a reader draining the FIFO has the last line, so both sides are
measured end to end into the pipe. send_nsca reads one result per line (``-e '\\n'``, tab-separated fields).

    apt-get install nsca-ng-server nsca-ng-client && python bench/nsca_bench.py [--results 100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench.common import (  # noqa: E402
    Bridge,
    FifoCounter,
    Row,
    batch_bodies,
    free_port,
    post_batches,
    print_table,
    wait_port,
    workload,
)

PASSWORD = "bench-secret"


def nsca_binaries() -> tuple[str, str] | None:
    server = shutil.which("nsca-ng") or ("/usr/sbin/nsca-ng" if os.path.exists("/usr/sbin/nsca-ng") else None)
    client = shutil.which("send_nsca") or ("/usr/sbin/send_nsca" if os.path.exists("/usr/sbin/send_nsca") else None)
    return (server, client) if server and client else None


def send_nsca(client: str, port: int, config: Path, inputs: list[Path]) -> None:
    """One send_nsca per input file, all at once (each reads its file as stdin, so none waits for another)."""
    processes = []
    for path in inputs:
        with path.open("rb") as stdin:
            processes.append(subprocess.Popen([client, "-H", "127.0.0.1", "-p", str(port), "-c", str(config), "-e",
                                               "\\n"], stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for process in processes:
        _, errors = process.communicate(timeout=600)
        if process.returncode != 0:
            raise SystemExit(f"send_nsca failed: {errors.decode(errors='replace')}")


def rows(directory: Path, results: int) -> list[Row]:
    binaries = nsca_binaries()
    if binaries is None:
        raise SystemExit("NSCA-ng is needed: apt-get install nsca-ng-server nsca-ng-client")
    server, client = binaries
    fifo = directory / "engine.cmd"
    os.mkfifo(fifo)
    counter = FifoCounter(fifo)
    port = free_port()
    server_config, client_config = directory / "nsca-ng.cfg", directory / "send_nsca.cfg"
    # log_level 1: errors only (3, the default, logs every result).
    server_config.write_text(f'command_file = "{fifo}"\nlisten = "127.0.0.1:{port}"\nlog_level = 1\n'
                             f'authorize "*" {{\n  password = "{PASSWORD}"\n  hosts = ".*"\n  services = ".*"\n'
                             '  commands = ".*"\n}\n')
    client_config.write_text(f'password = "{PASSWORD}"\n')
    items = workload(results, "peer")
    lines = [f"{r['host_name']}\t{r['service_description']}\t{r['status_code']}\t{r['plugin_output']}\n"
             for r in items]
    inputs: dict[int, list[Path]] = {}
    for clients in (1, 4):
        inputs[clients] = [directory / f"input-{clients}-{k}.txt" for k in range(clients)]
        for k, path in enumerate(inputs[clients]):
            path.write_text("".join(lines[k::clients]))
    measured: dict[str, float] = {}
    lost: dict[str, bool] = {}
    nsca = subprocess.Popen([server, "-F", "-c", str(server_config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    bridge: Bridge | None = None
    try:
        wait_port(port)
        for clients in (1, 4):
            counter.expect(results)
            started = time.monotonic()
            send_nsca(client, port, client_config, inputs[clients])
            try:
                measured[f"nsca{clients}"] = results / (counter.arrived(LATE) - started)
            except TimeoutError:  # seen on a loaded machine: NSCA-ng lost some; the row says so, the bench goes on
                lost[f"nsca{clients}"] = True
                counter.stop()
                counter = FifoCounter(fifo)
        nsca.terminate()
        nsca.wait(30)
        bridge = Bridge(directory / "bridge", fifo)
        bodies = batch_bodies(items)
        post_batches(bridge.port, bodies[:1], clients=1)  # warm up (and its lines are not counted)
        time.sleep(0.2)
        counter.expect(results)
        started = time.monotonic()
        post_batches(bridge.port, bodies, clients=4)
        measured["bridge"] = results / (counter.arrived() - started)
    finally:
        if nsca.poll() is None:
            nsca.terminate()
            nsca.wait(30)
        if bridge is not None:
            bridge.stop()
        counter.stop()
    best = max([measured.get("nsca1", 0.0), measured.get("nsca4", 0.0)])
    missing = f"not every line arrived within {LATE:g} s of the last send_nsca"
    return [
        Row("NSCA-ng 1.6, one send_nsca", results=measured.get("nsca1"), versus=missing if "nsca1" in lost else ""),
        Row("NSCA-ng 1.6, 4 send_nsca in parallel", results=measured.get("nsca4"),
            versus=missing if "nsca4" in lost else ""),
        Row("bridge, same results, 1,000 a request, 4 clients", results=measured["bridge"],
            versus=f"{measured['bridge'] / best:.1f}x NSCA-ng at its best" if best else "NSCA-ng lost lines"),
    ]


LATE = 60.0  # seconds after the last send_nsca returned by which every line must have reached the FIFO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=100_000)
    args = parser.parse_args()
    results = max(1000, args.results // 1000 * 1000)
    with tempfile.TemporaryDirectory(prefix="nsca-bench-") as tmp:
        table = rows(Path(tmp), results)
    print_table(f"{results:,} results into a drained FIFO, until its reader has the last line", table)


if __name__ == "__main__":
    main()
