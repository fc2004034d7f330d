"""The cluster ([cluster]) against one process, into a drained FIFO: results/s until the FIFO's reader has the last
of N, edge -> JetStream -> sink -> pipe with one nats-server (1 replica) and with three (3 replicas), beside today's
single process in the same run (the baseline). Batches (POST /api/results, 1,000 a request, 4 clients: one message
each) and single results (op5 POST /api/command from hey, 8 connections: a message each); all on this machine.

    python bench/cluster_bench.py [--results 100000]
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
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout, for bridge and bench

from bench.common import (  # noqa: E402
    AUTH,
    BENCH_USER,
    ROOT,
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
from bridge.daemon.nats_sandbox import NatsCluster, nats_binary  # noqa: E402

HOSTS, SERVICES = 1000, 10  # workload()'s objects, all in the one engine
SINGLE_CLIENTS = 8


def post_singles(port: int, count: int, clients: int = SINGLE_CLIENTS) -> None:
    """``count`` op5 POST /api/command requests from hey (Debian's; keep-alive, ``clients`` workers), one result
    each: the same result every time, which is all the FIFO's line count needs."""
    if shutil.which("hey") is None:
        raise SystemExit("hey is needed: apt-get install --no-install-recommends hey")
    body = json.dumps(workload(1, "single", hosts=HOSTS, services=SERVICES)[0])
    done = subprocess.run(["hey", "-n", str(count), "-c", str(clients), "-m", "POST", "-T", "application/json",
                           "-H", f"Authorization: {AUTH}", "-d", body,
                           f"http://127.0.0.1:{port}/api/command/PROCESS_SERVICE_CHECK_RESULT"],
                          capture_output=True, text=True)
    codes = re.findall(r"\[(\d+)\]\s+\d+ responses", done.stdout)
    if done.returncode != 0 or codes != ["200"]:  # else the FIFO would wait for lines that never come
        raise SystemExit(f"hey failed or saw errors:\n{done.stdout}{done.stderr}")


def _rates(port: int, counter: FifoCounter, count: int, singles: int, tag: str) -> tuple[float, float]:
    """(batched results/s, single results/s) through whatever listens on ``port``, until the FIFO has them."""
    bodies = batch_bodies(workload(count, f"{tag}-batch", hosts=HOSTS, services=SERVICES))
    counter.expect(1000)
    post_batches(port, bodies[:1], clients=1)  # warm up: every connection made, the first ack seen
    counter.arrived()
    counter.expect(count)
    started = time.monotonic()
    post_batches(port, bodies, clients=4)
    batched = count / (counter.arrived() - started)
    counter.expect(singles)
    started = time.monotonic()
    post_singles(port, singles)
    return batched, singles / (counter.arrived() - started)


def _objects_cache(path: Path) -> None:
    """What the sink publishes for the edge to route by: workload()'s hosts and services."""
    blocks = []
    for h in range(HOSTS):
        blocks.append(f"define host {{\n\thost_name\thost-{h:04d}\n\t}}\n")
        blocks += [f"define service {{\n\thost_name\thost-{h:04d}\n\tservice_description\tsvc-{s:02d}\n\t}}\n"
                   for s in range(SERVICES)]
    path.write_text("".join(blocks))


class Role:
    """``python -m bridge serve`` in one cluster role."""

    def __init__(self, directory: Path, role: str, nats: NatsCluster, replicas: int, fifo: Path,
                 objects: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        servers = ", ".join(f'"{url}"' for url in nats.urls)
        engine = f'command_file = "{fifo}"\nobjects_cache = "{objects}"\n' if role == "sink" else ""
        config = directory / "bridge.toml"
        config.write_text(f'[server]\nlisten = "127.0.0.1:{self.port}"\n[engine]\nkind = "nagios"\n{engine}'
                          f'[spool]\ndirectory = "{directory / "spool"}"\n[log]\nlevel = "error"\n'
                          f'[cluster]\nrole = "{role}"\nservers = [{servers}]\nreplicas = {replicas}\n'
                          + ('engine = "bench"\n' if role == "sink" else "")
                          + f'[[users]]\nname = "{BENCH_USER[0]}"\npassword = "{BENCH_USER[1]}"\n')
        self.process = subprocess.Popen([sys.executable, "-m", "bridge", "serve", "--config", str(config)],
                                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def health(self) -> dict[str, object]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as error:
            return dict(json.loads(error.read()))
        except (urllib.error.URLError, TimeoutError):  # a busy machine: asked again
            return {}

    def engines(self) -> object:
        cluster = self.health().get("cluster")
        return cluster.get("engines") if isinstance(cluster, dict) else None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def _cluster_rates(directory: Path, nodes: int, counter: FifoCounter, fifo: Path, objects: Path, count: int,
                   singles: int) -> tuple[float, float]:
    nats = NatsCluster(directory / "nats", nodes)
    roles: list[Role] = []
    try:
        nats.start()
        roles.append(Role(directory / "sink", "sink", nats, nodes, fifo, objects))
        edge = Role(directory / "edge", "edge", nats, nodes, fifo, objects)
        roles.append(edge)
        deadline = time.monotonic() + 60
        while edge.engines() != ["bench"]:
            if time.monotonic() > deadline:
                raise SystemExit("the edge never learnt the sink's engine")
            time.sleep(0.1)
        return _rates(edge.port, counter, count, singles, f"cluster{nodes}")
    finally:
        for role in roles:
            role.stop()
        nats.stop()


def rows(directory: Path, count: int) -> list[Row]:
    if nats_binary() is None:
        raise SystemExit("nats-server is needed: apt-get install --no-install-recommends nats-server")
    fifo = directory / "engine.cmd"
    os.mkfifo(fifo)
    objects = directory / "objects.cache"
    _objects_cache(objects)
    counter = FifoCounter(fifo)
    singles = max(1000, count // 10)
    measured: list[tuple[str, float, float]] = []
    try:
        bridge = Bridge(directory / "single", fifo)
        try:
            measured.append(("one process", *_rates(bridge.port, counter, count, singles, "single")))
        finally:
            bridge.stop()
        for nodes in (1, 3):
            rates = _cluster_rates(directory / f"cluster-{nodes}", nodes, counter, fifo, objects, count, singles)
            measured.append((f"edge -> stream -> sink, {nodes} replica{'s' if nodes > 1 else ''}", *rates))
    finally:
        counter.stop()
    batch_base, single_base = measured[0][1], measured[0][2]
    table: list[Row] = []
    for label, batched, single in measured:
        base = label == "one process"
        table.append(Row(f"{label}, batches" + (" (baseline)" if base else ""), results=batched,
                         versus="" if base else f"{batched / batch_base:.0%} of one process"))
        table.append(Row(f"{label}, single results" + (" (baseline)" if base else ""),
                         results=single, versus="" if base else f"{single / single_base:.0%} of one process"))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, default=100_000)
    args = parser.parse_args()
    count = max(2000, args.results // 1000 * 1000)
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        table = rows(Path(tmp), count)
    singles = max(1000, count // 10)
    print_table(f"{count:,} results in batches (POST /api/results, 1,000 a request, 4 clients) and {singles:,} "
                f"single ones (op5, hey, {SINGLE_CLIENTS} connections), each until a drained FIFO has the last", table)


if __name__ == "__main__":
    main()
